"""The model refresh: training, evaluation and fairness, energy footprint."""
