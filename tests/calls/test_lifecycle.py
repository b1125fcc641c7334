"""The lifecycle table: every allowed step works for the right person, everything else is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from challenges.calls import services
from challenges.calls.events import TRANSITION_EVENTS
from challenges.calls.models import TRANSITIONS, Actor, Challenge, ChallengeStatus
from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from tests.factories import make_challenge

ACTIONS = sorted({t.action for t in TRANSITIONS})


def take(challenge: Challenge, action: str, by) -> bool:
    """Run *action* through its public service; False when the service declined without raising."""
    if action == "close":
        challenge.deadline = utcnow() - timedelta(seconds=1)
        return services.close_challenge(challenge)
    if action == "return":
        services.return_challenge(challenge, "Please say more about the data.", by=by)
    else:
        services.ACTIONS[action](challenge, by=by)
    return True


def actor_for(action: str, people):
    actor = next(t.actor for t in TRANSITIONS if t.action == action)
    return {Actor.owner: people["owner"], Actor.manager: people["manager"], Actor.system: None}[actor]


@pytest.mark.parametrize("status", list(ChallengeStatus), ids=lambda s: s.value)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_step_in_the_table_is_allowed_and_every_other_refused(people, status, action):
    challenge = make_challenge(people["owner"], status)
    db.session.commit()
    transition = next((t for t in TRANSITIONS if t.action == action and t.source is status), None)
    events_before = db.session.scalar(sa.select(sa.func.count()).select_from(Event))

    if transition is None:
        try:
            done = take(challenge, action, actor_for(action, people))
        except ServiceError as exc:
            assert "cannot go from" in exc.message
            done = False
        assert not done
        db.session.rollback()
        assert db.session.get(Challenge, challenge.id).status is status
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Event)) == events_before
        return

    assert take(challenge, action, actor_for(action, people))
    db.session.commit()
    challenge = db.session.get(Challenge, challenge.id)
    assert challenge.status is transition.target
    step = challenge.transitions[-1]
    assert (step.action, step.from_status, step.to_status) == (action, status, transition.target)
    event = db.session.get(Event, step.event_id)
    assert event.type == TRANSITION_EVENTS[action].type_name
    assert event.payload["challenge_id"] == challenge.id
    actor = actor_for(action, people)
    assert event.actor_id == (actor.id if actor else None) == step.actor_id


@pytest.mark.parametrize(
    "transition", [t for t in TRANSITIONS if t.actor is not Actor.system], ids=lambda t: t.action
)
@pytest.mark.parametrize("who", ["colleague", "other_owner", "sme", "evaluator", "manager", "owner"])
def test_only_the_owner_or_a_manager_may_take_their_steps(people, transition, who):
    challenge = make_challenge(people["owner"], transition.source)
    db.session.commit()
    allowed = who == ("manager" if transition.actor is Actor.manager else "owner") or (
        who == "colleague" and transition.actor is Actor.owner
    )
    if allowed:
        take(challenge, transition.action, people[who])
        assert challenge.status is transition.target
        return
    with pytest.raises(PermissionDenied):
        take(challenge, transition.action, people[who])
    db.session.rollback()
    assert db.session.get(Challenge, challenge.id).status is transition.source


def test_return_needs_a_comment_and_keeps_it_on_the_timeline(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.submitted)
    with pytest.raises(ServiceError) as refused:
        services.return_challenge(challenge, "   ", by=people["manager"])
    assert refused.value.field == "comment"
    services.return_challenge(challenge, "Add the size of the data set.", by=people["manager"])
    assert challenge.status is ChallengeStatus.draft
    assert challenge.transitions[-1].comment == "Add the size of the data set."


def test_approval_is_refused_when_the_deadline_came_too_close(people):
    challenge = make_challenge(people["owner"], ChallengeStatus.submitted)
    challenge.deadline = utcnow() + timedelta(hours=23)
    with pytest.raises(ServiceError) as refused:
        services.approve_challenge(challenge, by=people["manager"])
    assert "24 hours" in refused.value.message
    assert challenge.status is ChallengeStatus.submitted


def test_a_draft_can_be_edited_but_a_submitted_one_cannot(people):
    from tests.factories import challenge_content

    challenge = make_challenge(people["owner"], ChallengeStatus.draft)
    services.update_challenge(challenge, challenge_content(title="A better title"), by=people["colleague"])
    assert challenge.title == "A better title"
    services.submit_challenge(challenge, by=people["owner"])
    with pytest.raises(ServiceError):
        services.update_challenge(challenge, challenge_content(title="Sneaky"), by=people["owner"])
    with pytest.raises(PermissionDenied):
        services.update_challenge(challenge, challenge_content(), by=people["other_owner"])
