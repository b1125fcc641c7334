"""The health report: what it finds with no workers, a migration behind, handlers that failed; the
manager's page in both languages."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import current_app

from challenges.core import health
from challenges.core.models import Event, EventHandling, HandlingState, utcnow
from challenges.extensions import db


def _event_with(*handlings: tuple[HandlingState, int]) -> Event:
    """A ChallengePublished event whose handlers (in the bus's order) are in these states."""
    event = Event(
        id=str(uuid.uuid4()), type="ChallengePublished", version=1, payload={}, occurred_at=utcnow()
    )
    db.session.add(event)
    handlers = current_app.extensions["event_bus"].handlers["ChallengePublished"]
    for handler, (state, attempts) in zip(handlers, handlings, strict=False):
        db.session.add(
            EventHandling(
                event_id=event.id,
                handler=handler.name,
                queue=handler.queue,
                state=state,
                attempts=attempts,
                last_error="Boom" if attempts else None,
            )
        )
    db.session.commit()
    return event


def test_with_no_worker_and_no_scheduler_the_report_says_so(app, ctx):
    found = health.report()
    assert not found.healthy
    assert {str(p) for p in found.problems} == {
        *(
            f"No worker takes jobs from the {q} queue."
            for q in ("ledger", "periodic", "workflow", "notifications")
        ),
        "The scheduler is not running: no deadline, reminder or sweep is started.",
    }
    assert [q.name for q in found.queues] == ["ledger", "periodic", "workflow", "notifications"]
    assert found.database == found.redis == found.migrations == "ok"


def test_handlers_that_failed_or_wait_for_a_retry_are_counted(app, ctx):
    _event_with(
        (HandlingState.dead, 6),
        (HandlingState.pending, 2),
        (HandlingState.pending, 0),
        (HandlingState.done, 1),
    )
    found = health.report()
    assert found.handlers == health.HandlerCounts(
        failed=1, retrying=1, pending=2, oldest_pending_seconds=found.handlers.oldest_pending_seconds
    )
    assert found.handlers.oldest_pending_seconds is not None
    assert "Event handlers that failed every retry, waiting for a programme manager: 1." in map(
        str, found.notes
    )
    as_json = found.as_dict()
    assert as_json["healthy"] is False and as_json["handlers"]["failed"] == 1
    assert {"key": "no_scheduler", "values": {}, "text": str(health.Finding("no_scheduler"))} in as_json[
        "problems"
    ]


def test_a_database_behind_the_migrations_is_not_ready(app, ctx, client, owner):
    current = db.session.scalar(sa.text("SELECT version_num FROM alembic_version"))
    db.session.commit()
    with owner.begin() as conn:  # the platform's own role may not touch the migrations' record
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'an_older_one'"))
    try:
        found = health.readiness()
        assert found.migrations.startswith("at an_older_one, not at ")
        assert "run flask --app wsgi db upgrade" in str(found.problems[0])
        response = client.get("/readyz")
        assert response.status_code == 503 and response.get_json()["status"] == "unavailable"
    finally:
        with owner.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": current})
    assert client.get("/readyz").status_code == 200


def test_the_manager_sees_the_health_page_in_swedish_and_english(people, make_browser):
    event = _event_with((HandlingState.dead, 6))
    handler = current_app.extensions["event_bus"].handlers["ChallengePublished"][0].name
    lena = make_browser()
    lena.login("manager@agency.example.com")
    page = lena.get("/admin/health").get_data(as_text=True)
    assert "No worker takes jobs from the ledger queue." in page and "Boom" in page
    assert (
        "does not answer" not in page
    )  # read on the request's own connection, which holds the login's write
    assert 'href="/admin/health"' in page  # in the navigation
    assert f'action="/admin/events/{event.id}/{handler}/rerun"' in page
    response = lena.submit(
        f"/admin/events/{event.id}/{handler}/rerun", {"back": "health"}, page_url="/admin/health"
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/health")
    db.session.rollback()
    assert db.session.get(EventHandling, (event.id, handler)).state is HandlingState.pending
    lena.submit("/language", {"language": "sv", "next": "/admin/health"}, page_url="/admin/health")
    page = lena.get("/admin/health").get_data(as_text=True)
    assert "Ingen arbetare tar jobb från kön ledger." in page and "Driftläge" in page


def test_only_programme_managers_see_the_health_page(people, make_browser):
    sara = make_browser()
    sara.login("sara@sensors.example.com")
    assert sara.get("/admin/health").status_code in (403, 404)
