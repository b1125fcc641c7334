"""Review of proposals: conflicts of interest, assignment, scoring, ranking and decisions."""
