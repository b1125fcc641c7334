"""SME proposals to challenges."""
