"""Training data sets the shipped cards were trained on (see SOURCE.md)."""
