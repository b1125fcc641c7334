"""The deadline closes a challenge by itself, to the second, even when Redis forgets everything."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from rq import Queue

from challenges.calls import jobs, questions, services
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.jobs import periodic
from challenges.core.models import Event, utcnow
from challenges.extensions import db, get_redis
from tests.factories import make_challenge


def test_open_until_the_second_of_the_deadline(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    deadline = challenge.deadline
    assert challenge.is_open(deadline - timedelta(microseconds=1))
    assert not challenge.is_open(deadline)
    assert challenge.shown_status(deadline) is ChallengeStatus.closed
    assert jobs.close_due_challenges(now=deadline - timedelta(seconds=1)) == 0
    assert jobs.close_due_challenges(now=deadline) == 1
    db.session.rollback()
    assert db.session.get(Challenge, challenge.id).status is ChallengeStatus.closed


def test_questions_are_refused_once_the_deadline_has_passed_even_before_the_sweep(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert challenge.status is ChallengeStatus.published  # not swept yet
    try:
        questions.ask_question(challenge, "Too late?", by=people["sme"])
    except services.ServiceError as exc:
        assert "closed" in exc.message
    else:
        raise AssertionError("a question after the deadline was accepted")


def test_deadline_sweep_is_a_periodic_job(app):
    assert jobs.close_due_challenges in [each.func for each in periodic(app)]


def test_the_close_survives_a_redis_restart(people, redis_server, drain):
    """Publication schedules a close job in Redis; Redis restarts empty; the sweep still closes it."""
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    drain()  # runs the publication handlers: emails and the close job scheduled at the deadline
    assert Queue("workflow", connection=get_redis()).scheduled_job_registry.get_job_ids()

    redis_server.stop()
    redis_server.start()  # empty: the scheduled close is gone
    assert Queue("workflow", connection=get_redis()).scheduled_job_registry.get_job_ids() == []

    challenge.deadline = utcnow() - timedelta(seconds=1)  # time passes
    db.session.commit()
    Queue("workflow", connection=get_redis()).enqueue(jobs.close_due_challenges)  # the scheduler's tick
    drain()
    db.session.rollback()
    challenge = db.session.get(Challenge, challenge.id)
    assert challenge.status is ChallengeStatus.in_review  # closed, then the worker opened its review
    assert challenge.closed_at is not None
    closed = db.session.scalars(sa.select(Event).where(Event.type == "ChallengeClosed")).all()
    assert len(closed) == 1 and closed[0].actor_id is None
    assert [t.label for t in challenge.transitions[-2:]] == ["Closed at the deadline", "Review started"]


def test_the_scheduled_close_job_closes_only_when_due(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    db.session.commit()
    assert jobs.close_if_due(challenge.id) is False  # an extension moved the deadline: no-op
    challenge = db.session.get(Challenge, challenge.id)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert jobs.close_if_due(challenge.id) is True
    assert jobs.close_if_due(challenge.id) is False  # a second delivery changes nothing


def test_extension_after_the_deadline_is_refused(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    try:
        services.extend_deadline(challenge, utcnow() + timedelta(days=3), "", by=people["owner"])
    except services.ServiceError as exc:
        assert "no longer open" in exc.message
    else:
        raise AssertionError("a closed challenge was extended")


def test_a_closing_job_that_redis_cannot_take_is_left_to_the_sweep(people, monkeypatch, caplog):
    from redis import Redis

    from challenges.calls import events, handlers
    from challenges.core import jobs as job_registry

    monkeypatch.setattr(
        job_registry, "get_redis", lambda: Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    )
    deadline = utcnow() + timedelta(days=3)
    handlers.schedule_close(events.ChallengePublished(challenge_id=1, deadline=deadline.isoformat()), None)
    assert "the periodic sweep will close it" in caplog.text
