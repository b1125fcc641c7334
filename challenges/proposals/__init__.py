"""SME proposals to challenges."""

from flask import Blueprint

# The package's pages, on one blueprint (views.py and the other *_views.py modules).
bp = Blueprint("proposals", __name__)
