"""What the governance team reads: engagements, governance read models, the charter report, model cards."""
