"""People, organisations, roles, login sessions and emailed single-use links."""

from flask import Blueprint

# The accounts' pages, registered by views.py, organisation_views.py and admin_views.py.
bp = Blueprint("accounts", __name__)
