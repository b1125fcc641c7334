"""A notice to a challenge's followers is written in parts: each part is committed and put on the
queue while the rest is written, a run stopped between parts writes only what is missing when it runs
again, and a run that finds its handling finished by another stops without writing more."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from challenges.accounts.models import OrganisationKind
from challenges.calls import following
from challenges.calls.models import ChallengeStatus
from challenges.calls.services import approve_challenge
from challenges.core import transaction
from challenges.core.events import run_handler
from challenges.core.models import Event, EventHandling, HandlingState
from challenges.extensions import db
from challenges.notifications import jobs, services
from challenges.notifications.models import MailMessage, MessageState
from tests.factories import make_challenge, make_manager, make_org, make_user, topics

FOLLOWERS = 8
PART = 3  # so that the followers make three parts: 3, 3 and 2


@pytest.fixture
def published(app, ctx, monkeypatch) -> str:
    """A challenge published to FOLLOWERS followers of its theme; returns the publication's event id,
    its handlers not yet run."""
    monkeypatch.setattr(services, "PART", PART)
    sensors = topics()["Sensors"].id
    for n in range(FOLLOWERS):
        member = make_user(f"follower{n}@example.com", org=make_org(OrganisationKind.sme))
        following.set_followed_topics([sensors], by=member)
    owner = make_user("owner@industry.example.com", org=make_org(OrganisationKind.industrial))
    challenge = make_challenge(owner, status=ChallengeStatus.submitted)
    approve_challenge(challenge, by=make_manager())
    db.session.commit()
    return db.session.scalars(sa.select(Event.id).where(Event.type == "ChallengePublished")).one()


def _matches() -> list[MailMessage]:
    db.session.rollback()  # a fresh look: what was committed
    return list(db.session.scalars(sa.select(MailMessage).where(MailMessage.notice == "challenge_match")))


def _followers_mailed(smtp) -> list[str]:
    return sorted(m["To"] for m in smtp.messages if m["To"].startswith("follower"))


def _queued(monkeypatch) -> list[list[int]]:
    """The send jobs put on the queue, as the lists of their messages' ids."""
    batches: list[list[int]] = []
    real = jobs.enqueue_send

    def spy(ids: list[int], delay: float = 0) -> None:
        batches.append(list(ids))
        real(ids, delay)

    monkeypatch.setattr(jobs, "enqueue_send", spy)
    return batches


def test_each_part_is_committed_and_queued_while_the_rest_is_written(published, monkeypatch, smtp, drain):
    batches = _queued(monkeypatch)
    kept_before_each_part: list[int] = []
    real_commit = transaction.commit

    def commit() -> None:
        real_commit()
        with db.engine.connect() as other:  # what another process (a sending worker) can see now
            kept_before_each_part.append(
                other.scalar(
                    sa.select(sa.func.count())
                    .select_from(MailMessage)
                    .where(MailMessage.notice == "challenge_match")
                )
            )

    monkeypatch.setattr(transaction, "commit", commit)
    assert run_handler(published, "calls_send_match") == "handled"
    # Two parts were kept (and queued) before the last one was written; the last with the handling.
    assert kept_before_each_part == [3, 6]
    assert sorted(len(batch) for batch in batches) == [2, 3, 3]
    assert sorted(i for batch in batches for i in batch) == sorted(m.id for m in _matches())
    drain()
    assert _followers_mailed(smtp) == [f"follower{n}@example.com" for n in range(FOLLOWERS)]


def test_a_run_stopped_between_parts_writes_only_what_is_missing(published, monkeypatch, smtp, drain):
    real = transaction.commit_part
    calls = 0

    def stopped_after_two_parts() -> None:
        nonlocal calls
        calls += 1
        real()
        if calls == 2:
            raise RuntimeError("the worker stopped")

    monkeypatch.setattr(services, "commit_part", stopped_after_two_parts)
    with pytest.raises(RuntimeError):
        run_handler(published, "calls_send_match")
    assert len(_matches()) == 6  # two parts kept
    handling = db.session.get(EventHandling, (published, "calls_send_match"))
    assert handling is not None and handling.state is HandlingState.pending  # to be run again

    monkeypatch.setattr(services, "commit_part", real)
    assert run_handler(published, "calls_send_match") == "handled"
    messages = _matches()
    assert sorted(m.recipient for m in messages) == [f"follower{n}@example.com" for n in range(FOLLOWERS)]
    drain()
    assert _followers_mailed(smtp) == [f"follower{n}@example.com" for n in range(FOLLOWERS)]  # each once
    assert {m.state for m in _matches()} == {MessageState.sent}


def test_a_run_that_finds_its_handling_finished_elsewhere_stops(published, monkeypatch):
    real_commit = transaction.commit
    commits = 0

    def commit() -> None:
        nonlocal commits
        real_commit()
        commits += 1
        if commits == 1:  # another run finishes the handling while this one had let go of it
            with db.engine.begin() as other:
                other.execute(
                    sa.update(EventHandling)
                    .where(EventHandling.event_id == published, EventHandling.handler == "calls_send_match")
                    .values(state=HandlingState.done)
                )

    monkeypatch.setattr(transaction, "commit", commit)
    assert run_handler(published, "calls_send_match") == "already handled"
    assert len(_matches()) == PART  # the first part only: nothing after the handling was found done
    handling = db.session.get(EventHandling, (published, "calls_send_match"))
    assert handling is not None and (handling.state, handling.attempts) == (HandlingState.done, 0)


def test_outside_a_handler_a_notice_is_one_transaction(published):
    """Run by hand (a request, a script), the parts are not committed: a rollback keeps none."""
    from challenges.core.bus import get_bus
    from challenges.notifications.about_challenges import send_match

    record = db.session.get(Event, published)
    assert record is not None
    send_match(get_bus().load(record), record)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MailMessage)) >= FOLLOWERS
    db.session.rollback()
    assert _matches() == []
