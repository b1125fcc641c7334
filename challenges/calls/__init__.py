"""Challenges: their lifecycle, the catalogue and its search, questions and answers, follows and topics."""

from flask import Blueprint

# The package's pages, on one blueprint (views.py and the other *_views.py modules).
bp = Blueprint("calls", __name__)
