"""The front page, the language switch and the health checks."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_login import current_user

from challenges.core import health
from challenges.core.errors import PermissionDenied
from challenges.core.security import from_this_site, local_target
from challenges.extensions import csrf

bp = Blueprint("core", __name__)


MAX_PAGE = 10_000


def page_arg() -> int:
    """The ?page= number, between 1 and a bound that keeps the OFFSET in range."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


@bp.get("/")
def home():
    return render_template("core/home.html")


@bp.post("/language")
@csrf.exempt
def set_language():
    """Switch the language.

    A visitor's choice changes only their own cookie, so it needs no CSRF token (the public
    pages carry none and read the same for every visitor), but it must come from this site:
    a browser leaves the Lax session cookie off another site's POST, and answering it would
    replace the cookie of someone logged in. The choice of someone logged in is saved to
    their account, and their request must carry a token.
    """
    if current_user.is_authenticated:
        csrf.protect()
    elif not from_this_site():
        raise PermissionDenied(_("The language can only be changed from this site's own pages."))
    language = request.form.get("language", "")
    if language in current_app.config["LANGUAGES"]:
        session["language"] = language
        if current_user.is_authenticated:
            current_user.language = language
    return redirect(local_target(request.form.get("next")), 303)


@bp.get("/healthz")
def healthz():
    """Liveness: the process answers requests. It asks nothing of the database or Redis (a web process
    restarted for their sake would not bring them back); /readyz does."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Readiness: the database answers at the newest migration and Redis answers; 503 when not."""
    found = health.readiness()
    return jsonify(
        status="ready" if found.healthy else "unavailable",
        database=found.database,
        redis=found.redis,
        migrations=found.migrations,
    ), 200 if found.healthy else 503
