"""What happens with the verdicts: the gate, the human review, the model registry and kill switch."""
