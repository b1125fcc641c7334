"""Who hears about proposals: receipts and withdrawal notices to the team, a digest to the owner; the
teams working on a challenge hear of its changes and of its closing.

Emails go out on the ``notifications`` queue. Subjects come from the catalogue and never carry a
title: user text stays in the body.
"""

from __future__ import annotations

from challenges.accounts.models import User
from challenges.calls import events as call_events
from challenges.calls import following
from challenges.calls.models import Challenge, ChangeNote
from challenges.core.bus import NOTIFICATIONS_QUEUE, EventBus
from challenges.core.models import Event, must_get
from challenges.extensions import db
from challenges.notifications.services import notify, recipients_for, recipients_of
from challenges.proposals import events, rules, services
from challenges.proposals.models import Proposal, ProposalVersion


def _team(proposal: Proposal, version: ProposalVersion) -> list:
    """The team of *version* (not of later edits), less anyone no longer in the organisation."""
    return recipients_for(rules.applicant_team(proposal, version))


def _version(proposal: Proposal, number: int) -> ProposalVersion:
    return next(v for v in proposal.versions if v.number == number)


def send_receipt(e: events.ProposalSubmitted, record: Event) -> None:
    proposal = must_get(Proposal, e.proposal_id)
    version = _version(proposal, e.number)
    notify(
        record,
        "proposal_receipt",
        _team(proposal, version),
        subject_args={"n": e.number},
        sealed_challenge_id=proposal.challenge_id,
        proposal=proposal,
        version=version,
        challenge=proposal.challenge,
    )


def send_withdrawn(e: events.ProposalWithdrawn, record: Event) -> None:
    proposal = must_get(Proposal, e.proposal_id)
    version = _version(proposal, e.number)
    notify(
        record,
        "proposal_withdrawn",
        _team(proposal, version),
        sealed_challenge_id=proposal.challenge_id,
        proposal=proposal,
        version=version,
        challenge=proposal.challenge,
        by=db.session.get(User, record.actor_id) if record.actor_id else None,
        at=record.occurred_at,
    )


def send_digest(e: call_events.ChallengeClosed, record: Event) -> None:
    """One message to the owner's members when the deadline passes, listing what came in."""
    challenge = must_get(Challenge, e.challenge_id)
    notify(
        record,
        "proposals_digest",
        recipients_for(following.owner_members(challenge)),
        challenge=challenge,
        proposals=services.submitted_proposals(challenge),
    )


def send_change(e: call_events.ChallengeClarified | call_events.DeadlineExtended, record: Event) -> None:
    """The teams working on a proposal (sealed: the outbox does not tell who applies), then the
    followers who are not among them."""
    challenge = must_get(Challenge, e.challenge_id)
    key = "deadline_extended" if isinstance(e, call_events.DeadlineExtended) else "challenge_clarified"
    note = must_get(ChangeNote, e.note_id)
    notify(
        record,
        key,
        recipients_for(rules.working_teams(challenge, unsubmitted_only=False)),
        sealed_challenge_id=challenge.id,
        challenge=challenge,
        note=note,
        applicant=True,
    )
    notify(
        record,
        key,
        recipients_of(following.followers(challenge)),
        challenge=challenge,
        note=note,
        applicant=False,
        in_parts=True,
    )


def send_closing_soon(e: call_events.ChallengeClosingSoon, record: Event) -> None:
    """The teams of drafts and of proposals with changes not yet submitted (sealed)."""
    challenge = must_get(Challenge, e.challenge_id)
    if challenge.deadline.isoformat() != e.deadline or not challenge.is_open():
        return  # the deadline has moved (its own reminders follow) or the challenge is closed
    notify(
        record,
        "closing_in_three_days" if e.days == 3 else "closing_tomorrow",
        recipients_for(rules.working_teams(challenge, unsubmitted_only=True)),
        sealed_challenge_id=challenge.id,
        challenge=challenge,
    )


def register(bus: EventBus) -> None:
    """Subscribe the proposal handlers."""
    bus.declare(*events.ALL)
    bus.subscribe(
        events.ProposalSubmitted, send_receipt, name="proposals_send_receipt", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ProposalWithdrawn, send_withdrawn, name="proposals_send_withdrawn", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        call_events.ChallengeClosed, send_digest, name="proposals_send_digest", queue=NOTIFICATIONS_QUEUE
    )
    # The teams working on proposals hear of a challenge's changes and its closing: subscribed here, where
    # the teams are known, under the names they were first stored with.
    for change in (call_events.ChallengeClarified, call_events.DeadlineExtended):
        bus.subscribe(change, send_change, name="calls_send_change", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(
        call_events.ChallengeClosingSoon,
        send_closing_soon,
        name="calls_send_closing_soon",
        queue=NOTIFICATIONS_QUEUE,
    )
