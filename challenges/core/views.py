"""The front page and the health checks."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template, request

from challenges.core import health

bp = Blueprint("core", __name__)


MAX_PAGE = 10_000


def page_arg() -> int:
    """The ?page= number, between 1 and a bound that keeps the OFFSET in range."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


@bp.get("/")
def home():
    return render_template("core/home.html")


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
