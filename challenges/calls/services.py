"""Every change to challenges: drafting, the lifecycle, amendments, questions and follows.

Services take the acting user (``by=``), check permission, change state, record the
event, flush and never commit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from challenges.accounts.models import User
from challenges.accounts.permissions import require_manager
from challenges.calls import events
from challenges.calls.models import (
    STATUS_LABELS,
    TRANSITION_BY_ACTION,
    Challenge,
    ChallengeStatus,
    ChallengeTransition,
    ChangeNote,
    Criterion,
    NoteKind,
    OfferKind,
    Topic,
    TopicKind,
    may_take,
)
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.formatting import local_datetime, sek
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.programmes.models import ProgrammeYear

MIN_LEAD_TIME = timedelta(hours=24)
MAX_TITLE = 200


@dataclass
class ChallengeContent:
    """Everything an owner writes in a challenge; checked as a whole by ``check_content``."""

    programme_year_id: int
    title: str
    summary: str
    description: str
    area_id: int
    theme_ids: list[int]
    must_demonstrate: str
    max_funding_ore: int
    awards_planned: int
    deadline: datetime
    agreement: str
    contact_name: str
    contact_email: str
    criteria: list[tuple[str, int]] = field(default_factory=list)
    offers: list[str] = field(default_factory=list)
    offers_details: str = ""

    @classmethod
    def of(cls, challenge: Challenge) -> ChallengeContent:
        return cls(
            programme_year_id=challenge.programme_year_id,
            title=challenge.title,
            summary=challenge.summary,
            description=challenge.description,
            area_id=challenge.area_id,
            theme_ids=[t.id for t in challenge.themes],
            must_demonstrate=challenge.must_demonstrate,
            max_funding_ore=challenge.max_funding_ore,
            awards_planned=challenge.awards_planned,
            deadline=challenge.deadline,
            agreement=challenge.agreement,
            contact_name=challenge.contact_name,
            contact_email=challenge.contact_email,
            criteria=[(c.name, c.weight) for c in challenge.criteria],
            offers=list(challenge.offers),
            offers_details=challenge.offers_details,
        )


def check_deadline(deadline: datetime, now: datetime | None = None) -> str | None:
    """Why *deadline* cannot be used, or None."""
    now = now or utcnow()
    if deadline <= now:
        return _("The deadline has already passed. Choose a date in the future.")
    if deadline < now + MIN_LEAD_TIME:
        return _("The deadline must be at least 24 hours from now, so that companies have time to respond.")
    return None


def check_content(content: ChallengeContent, current: Challenge | None = None) -> None:
    """Raise InvalidInput naming every field that breaks a rule; return when all is well."""
    errors: dict[str, str] = {}
    title = content.title.strip()
    if not title:
        errors["title"] = _("Enter a title.")
    elif len(title) > MAX_TITLE:
        errors["title"] = _("Use at most %(n)s characters for the title.", n=MAX_TITLE)
    if (problem := check_deadline(content.deadline)) is not None:
        errors["deadline_date"] = problem
    year = db.session.get(ProgrammeYear, content.programme_year_id)
    if year is None:
        errors["programme_year"] = _("Choose a programme year.")
    if content.max_funding_ore <= 0:
        errors["max_funding"] = _("Enter an amount greater than zero.")
    elif year is not None and content.max_funding_ore > year.allocation_ore:
        errors["max_funding"] = _(
            "The maximum funding cannot be more than the programme's allocation for %(year)s (%(amount)s).",
            year=year.year,
            amount=sek(year.allocation_ore),
        )
    if not 1 <= content.awards_planned <= 100:
        errors["awards_planned"] = _("Enter a number of awards from 1 to 100.")
    area = db.session.get(Topic, content.area_id)
    keeps_area = current is not None and current.area_id == content.area_id
    if area is None or area.kind is not TopicKind.area or not (area.active or keeps_area):
        errors["area"] = _("Choose one of the programme's priority areas.")
    themes = _topics(content.theme_ids, TopicKind.theme)
    kept = {t.id for t in current.themes} if current is not None else set()
    if not content.theme_ids:
        errors["themes"] = _("Choose at least one technology theme.")
    elif len(themes) != len(set(content.theme_ids)) or any(not t.active and t.id not in kept for t in themes):
        errors["themes"] = _("Choose technology themes from the list.")
    if (problem := _criteria_problem(content.criteria)) is not None:
        errors["criteria"] = problem
    if not set(content.offers) <= {o.value for o in OfferKind}:
        errors["offers"] = _("Choose what you offer from the list.")
    for name, message in (
        ("summary", _("Enter a one-line summary.")),
        ("description", _("Describe the challenge.")),
        ("must_demonstrate", _("Say what a solution must demonstrate.")),
        ("agreement", _("Enter the challenge agreement that applicants accept.")),
        ("contact_name", _("Enter the contact person's name.")),
        ("contact_email", _("Enter the contact person's email address.")),
    ):
        if not str(getattr(content, name)).strip():
            errors[name] = message
    if errors:
        raise InvalidInput(errors)


def _criteria_problem(criteria: list[tuple[str, int]]) -> str | None:
    if not criteria:
        return _("Give at least one evaluation criterion.")
    for name, weight in criteria:
        if not name.strip() or len(name) > 200:
            return _("Give every criterion a name of at most 200 characters.")
        if weight < 0 or weight > 100:
            return _("Weights must be whole numbers from 0 to 100.")
    if not any(weight for _name, weight in criteria):
        return _("At least one criterion must have a weight above zero.")
    return None


def _topics(ids: Iterable[int], kind: TopicKind) -> list[Topic]:
    ids = list(set(ids))
    if not ids:
        return []
    return list(db.session.scalars(sa.select(Topic).where(Topic.id.in_(ids), Topic.kind == kind)))


def _apply(challenge: Challenge, content: ChallengeContent) -> None:
    themes = sorted(_topics(content.theme_ids, TopicKind.theme), key=lambda t: t.position)
    challenge.programme_year_id = content.programme_year_id
    challenge.title = content.title.strip()
    challenge.summary = content.summary.strip()
    challenge.description = content.description
    challenge.area_id = content.area_id
    challenge.themes = themes
    challenge.must_demonstrate = content.must_demonstrate
    challenge.max_funding_ore = content.max_funding_ore
    challenge.awards_planned = content.awards_planned
    challenge.deadline = content.deadline
    challenge.agreement = content.agreement
    challenge.offers = [o.value for o in OfferKind if o.value in content.offers]
    challenge.offers_details = content.offers_details.strip()
    challenge.contact_name = content.contact_name.strip()
    challenge.contact_email = content.contact_email.strip()
    if challenge.criteria:
        # Replaced as a whole: flush the removals before their positions are reused.
        challenge.criteria.clear()
        db.session.flush()
    challenge.criteria.extend(
        Criterion(position=i, name=name.strip(), weight=weight)
        for i, (name, weight) in enumerate(content.criteria)
    )


# --- drafting ------------------------------------------------------------------------------


def create_challenge(content: ChallengeContent, *, by: User) -> Challenge:
    """A new draft owned by the organisation of *by*, who must be in an industrial company."""
    if not (by.active and by.is_challenge_owner):
        raise PermissionDenied(_("Only members of an industrial company can draft challenges."))
    check_content(content)
    org = by.organisation
    assert org is not None
    challenge = Challenge(organisation_id=org.id, created_by_id=by.id, status=ChallengeStatus.draft)
    _apply(challenge, content)
    db.session.add(challenge)
    db.session.flush()
    row = record(events.ChallengeDrafted(challenge_id=challenge.id), by=by)
    challenge.transitions.append(
        ChallengeTransition(
            action="create",
            from_status=None,
            to_status=ChallengeStatus.draft,
            actor_id=by.id,
            event_id=row.id,
        )
    )
    db.session.flush()
    return challenge


def update_challenge(challenge: Challenge, content: ChallengeContent, *, by: User) -> None:
    """Change a draft; once submitted it is locked until withdrawn or returned."""
    if not challenge.is_owned_by(by):
        raise PermissionDenied(_("Only the organisation that owns this challenge can change it."))
    if challenge.status is not ChallengeStatus.draft:
        raise ServiceError(_("Only a draft can be edited. Withdraw it from approval first."))
    check_content(content, current=challenge)
    _apply(challenge, content)
    db.session.flush()


# --- the lifecycle -------------------------------------------------------------------------


def _transition(
    challenge: Challenge, action: str, *, by: User | None, comment: str | None = None, **facts
) -> None:
    """Take one step of the lifecycle table, recording the event and the timeline entry."""
    transition = TRANSITION_BY_ACTION.get(action)
    if transition is None or transition.source is not challenge.status:
        raise ServiceError(
            _("This challenge cannot go from “%(status)s” that way.", status=STATUS_LABELS[challenge.status])
        )
    if by is not None and not may_take(transition, challenge, by):
        raise PermissionDenied(_("You may not do this to this challenge."))
    challenge.status = transition.target
    now = utcnow()
    if transition.target is ChallengeStatus.published:
        challenge.published_at = now
    if transition.target is ChallengeStatus.closed:
        challenge.closed_at = now
    db.session.flush()
    event_cls = events.TRANSITION_EVENTS[action]
    payload: dict = {"challenge_id": challenge.id, **facts}
    if comment is not None and "comment" in event_cls.__dataclass_fields__:
        payload["comment"] = comment
    row = record(event_cls(**payload), by=by)
    challenge.transitions.append(
        ChallengeTransition(
            action=action,
            from_status=transition.source,
            to_status=transition.target,
            actor_id=by.id if by is not None else None,
            comment=comment,
            event_id=row.id,
            at=now,
        )
    )
    db.session.flush()


def submit_challenge(challenge: Challenge, *, by: User) -> None:
    """The owner asks the programme to approve and publish the draft."""
    if challenge.status is ChallengeStatus.draft and challenge.is_owned_by(by):
        check_content(ChallengeContent.of(challenge), current=challenge)
    _transition(challenge, "submit", by=by)


def withdraw_challenge(challenge: Challenge, *, by: User) -> None:
    _transition(challenge, "withdraw", by=by)


def return_challenge(challenge: Challenge, comment: str, *, by: User) -> None:
    """A programme manager sends the draft back with a comment saying what to change."""
    if not comment.strip():
        raise ServiceError(_("Say what the owner should change."), "comment")
    _transition(challenge, "return", by=by, comment=comment.strip())


def approve_challenge(challenge: Challenge, *, by: User) -> None:
    """A programme manager publishes the challenge; its deadline must still be 24 hours away."""
    require_manager(by, _("Only a programme manager can approve a challenge."))
    if challenge.status is ChallengeStatus.submitted and check_deadline(challenge.deadline) is not None:
        raise ServiceError(
            _(
                "The deadline is less than 24 hours away. Return the challenge so that "
                "the owner can choose a later deadline."
            )
        )
    _transition(challenge, "approve", by=by, deadline=challenge.deadline.isoformat())


def close_challenge(challenge: Challenge, *, now: datetime | None = None) -> bool:
    """The deadline has passed: close the challenge (the system acts, no person). False if not due."""
    if challenge.status is not ChallengeStatus.published or challenge.is_open(now):
        return False
    _transition(challenge, "close", by=None)
    return True


def start_review(challenge: Challenge, *, by: User | None) -> None:
    """A programme manager, or the worker (``by=None``) when it opens the review at the close."""
    _transition(challenge, "start_review", by=by)


def mark_decided(challenge: Challenge, *, by: User) -> None:
    _transition(challenge, "decide", by=by)


def archive_challenge(challenge: Challenge, *, by: User) -> None:
    _transition(challenge, "archive", by=by)


ACTIONS = {
    "submit": submit_challenge,
    "withdraw": withdraw_challenge,
    "approve": approve_challenge,
    "start_review": start_review,
    "decide": mark_decided,
    "archive": archive_challenge,
}


# --- amendments after publication --------------------------------------------------------


def _require_amendable(challenge: Challenge, by: User) -> None:
    if not challenge.is_owned_by(by):
        raise PermissionDenied(_("Only the organisation that owns this challenge can change it."))
    if not challenge.is_open():
        raise ServiceError(_("The challenge is no longer open, so it cannot be changed."))


def add_clarification(challenge: Challenge, text: str, *, by: User) -> ChangeNote:
    """Append a dated clarification; the published text itself never changes."""
    _require_amendable(challenge, by)
    if not text.strip():
        raise ServiceError(_("Write the clarification."), "text")
    note = ChangeNote(kind=NoteKind.clarification, text=text.strip(), author_id=by.id)
    challenge.notes.append(note)
    db.session.flush()
    record(events.ChallengeClarified(challenge_id=challenge.id, note_id=note.id), by=by)
    return note


def extend_deadline(challenge: Challenge, new_deadline: datetime, reason: str, *, by: User) -> ChangeNote:
    """Move the deadline later (never earlier); followers are told."""
    _require_amendable(challenge, by)
    if new_deadline <= challenge.deadline:
        raise ServiceError(
            _(
                "The new deadline must be later than the current one (%(when)s). "
                "A deadline can be extended but never shortened.",
                when=local_datetime(challenge.deadline),
            ),
            "deadline_date",
        )
    old = challenge.deadline
    challenge.deadline = new_deadline
    note = ChangeNote(
        kind=NoteKind.deadline_extended,
        text=reason.strip(),
        author_id=by.id,
        old_deadline=old,
        new_deadline=new_deadline,
    )
    challenge.notes.append(note)
    db.session.flush()
    record(
        events.DeadlineExtended(
            challenge_id=challenge.id,
            note_id=note.id,
            old_deadline=old.isoformat(),
            new_deadline=new_deadline.isoformat(),
        ),
        by=by,
    )
    return note
