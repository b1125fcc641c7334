"""Following: an SME follows a challenge (or is made to, by asking a question) and the themes and
areas it cares about; who follows a challenge, and the people of the organisation that owns it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from flask_babel import gettext as _

from challenges.accounts.models import Membership, MembershipState, Organisation, User
from challenges.calls.models import (
    Challenge,
    ChallengeStatus,
    Follow,
    Topic,
)
from challenges.core.errors import PermissionDenied
from challenges.extensions import db


def ensure_following(
    org: Organisation | None, *, topic_id: int | None = None, challenge_id: int | None = None
) -> None:
    assert org is not None
    target = Follow.topic_id == topic_id if topic_id else Follow.challenge_id == challenge_id
    if db.session.scalar(sa.select(Follow.id).where(Follow.organisation_id == org.id, target)) is None:
        db.session.add(Follow(organisation_id=org.id, topic_id=topic_id, challenge_id=challenge_id))


def _require_sme(by: User) -> Organisation:
    org = by.organisation
    if not (by.active and by.is_sme_member) or org is None:
        raise PermissionDenied(_("Only members of a small or medium-sized enterprise can follow challenges."))
    return org


def follow_challenge(challenge: Challenge, *, by: User) -> None:
    if not challenge.is_public:
        raise PermissionDenied(_("This challenge is not published."))
    ensure_following(_require_sme(by), challenge_id=challenge.id)
    db.session.flush()


def unfollow_challenge(challenge: Challenge, *, by: User) -> None:
    org = _require_sme(by)
    db.session.execute(
        sa.delete(Follow).where(Follow.organisation_id == org.id, Follow.challenge_id == challenge.id)
    )


def next_deadline(now: datetime) -> datetime | None:
    """When the next published challenge closes: what the catalogue shows changes then."""
    return db.session.scalar(
        sa.select(sa.func.min(Challenge.deadline)).where(
            Challenge.status == ChallengeStatus.published, Challenge.deadline > now
        )
    )


def is_following(org: Organisation | None, challenge: Challenge) -> bool:
    if org is None:
        return False
    return (
        db.session.scalar(
            sa.select(Follow.id).where(Follow.organisation_id == org.id, Follow.challenge_id == challenge.id)
        )
        is not None
    )


def followed_topic_ids(org: Organisation) -> set[int]:
    return set(
        db.session.scalars(
            sa.select(Follow.topic_id).where(Follow.organisation_id == org.id, Follow.topic_id.is_not(None))
        )
    )


def set_followed_topics(topic_ids: Iterable[int], *, by: User) -> None:
    """Replace the areas and themes the organisation of *by* follows."""
    org = _require_sme(by)
    wanted = {
        t.id
        for t in db.session.scalars(
            sa.select(Topic).where(Topic.id.in_(set(topic_ids)), Topic.active.is_(True))
        )
    }
    current = followed_topic_ids(org)
    if current - wanted:
        db.session.execute(
            sa.delete(Follow).where(Follow.organisation_id == org.id, Follow.topic_id.in_(current - wanted))
        )
    for topic_id in sorted(wanted - current):
        db.session.add(Follow(organisation_id=org.id, topic_id=topic_id))
    db.session.flush()


def followers(challenge: Challenge, *, of_challenge: bool = True) -> sa.Select[int]:
    """The ids of active members of SMEs that follow the challenge's area or one of its themes, and
    (with *of_challenge*) of those that follow the challenge itself: a statement, so that a notice to
    thousands reads only the columns it needs (:func:`~challenges.notifications.services.recipients_of`)."""
    conditions: list[sa.ColumnElement[bool]] = [
        Follow.topic_id.in_([challenge.area_id, *(t.id for t in challenge.themes)])
    ]
    if of_challenge:
        conditions.append(Follow.challenge_id == challenge.id)
    orgs = sa.select(Follow.organisation_id).where(sa.or_(*conditions))
    return (
        sa.select(User.id)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.organisation_id.in_(orgs),
            Membership.state == MembershipState.approved,
            User.active.is_(True),
        )
    )


def owner_members(challenge: Challenge) -> list[User]:
    return challenge.organisation.approved_members()
