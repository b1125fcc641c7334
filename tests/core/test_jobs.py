"""Jobs: every path a job was ever stored under still leads to it (``job_paths.txt``), a job waiting in
Redis under a path its function has moved from runs the function where it is now, and the one enqueue
helper puts a job on its declared queue with its declared limits."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue

from challenges.calls import jobs as call_jobs
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core import jobs
from challenges.core.bus import WORKFLOW_QUEUE
from challenges.core.models import utcnow
from challenges.extensions import db, get_redis
from tests.factories import make_challenge

SNAPSHOT = Path(__file__).with_name("job_paths.txt")


def _snapshot() -> list[str]:
    return [line for line in SNAPSHOT.read_text().splitlines() if line and not line.startswith("#")]


def _in_use() -> set[str]:
    return {name for kind in jobs.kinds() for name in (kind.path, *kind.aliases)}


def test_every_path_a_job_was_stored_under_still_leads_to_a_declared_job(app):
    for path in _snapshot():
        func = jobs.resolve(path)
        assert getattr(func, "job", None) is not None, f"{path} no longer leads to a job"
        assert path in (func.job.path, *func.job.aliases)


def test_every_job_path_in_use_is_in_the_snapshot(app):
    new = _in_use() - set(_snapshot())
    assert not new, f"add to {SNAPSHOT.name}: {sorted(new)}"


def test_a_path_cannot_name_two_jobs(app):
    with pytest.raises(ValueError, match="already"):
        jobs.job(WORKFLOW_QUEUE, aliases=("challenges.calls.services.close_if_due",))(lambda: None)


def _closed(challenge_id: int) -> bool:
    """Closed at its deadline (and, the close's handlers having run, in review)."""
    status = db.session.get(Challenge, challenge_id).status
    return status in (ChallengeStatus.closed, ChallengeStatus.in_review)


def test_a_job_waiting_under_the_path_it_moved_from_runs_where_it_is_now(people, drain):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    # as a closing scheduled before the job moved to calls/jobs.py waits in Redis
    Queue(WORKFLOW_QUEUE, connection=get_redis()).enqueue(
        "challenges.calls.services.close_if_due", challenge.id
    )
    drain()
    db.session.rollback()
    assert _closed(challenge.id)


def test_enqueue_uses_the_declared_queue_and_time_limit_and_keeps_a_job_when_it_returns(people, drain):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    job = jobs.enqueue(call_jobs.close_if_due, challenge.id, job_id="close-test")
    assert (job.origin, job.timeout, job.func_name) == (
        WORKFLOW_QUEUE,
        120,
        "challenges.calls.jobs.close_if_due",
    )
    drain()  # close_if_due does not commit: the worker's job runner does, when it returns
    db.session.rollback()
    assert _closed(challenge.id)


def test_a_job_that_names_no_queue_must_be_given_one(app):
    from challenges.core.events import run_handler

    with pytest.raises(ValueError, match="queue"):
        jobs.enqueue(run_handler, "event", "handler")
