"""The front page, the language switch and the health check."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_login import current_user
from redis.exceptions import RedisError

from challenges.core.errors import PermissionDenied
from challenges.core.security import from_this_site, local_target
from challenges.extensions import csrf, db, get_redis

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
            db.session.commit()
    return redirect(local_target(request.form.get("next")), 303)


@bp.get("/healthz")
def healthz():
    """Report whether the database and Redis answer; 503 when either does not."""
    checks = {}
    try:
        db.session.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "not healthy"
        checks["database"] = f"error: {type(exc).__name__}"
    finally:
        db.session.rollback()
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    healthy = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if healthy else "unavailable", **checks), 200 if healthy else 503
