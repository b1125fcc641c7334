"""Review of proposals: conflicts of interest, assignment, scoring, ranking and decisions."""

from flask import Blueprint

# The package's pages, on one blueprint (views.py and the other *_views.py modules).
bp = Blueprint("reviews", __name__)
