"""Challenges, their lifecycle table, change notes, questions, topics and follows."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask_babel import get_locale
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import Model

if TYPE_CHECKING:
    from challenges.accounts.models import Organisation, User
    from challenges.programmes.models import ProgrammeYear


class TopicKind(enum.Enum):
    area = "area"  # a priority area of the programme
    theme = "theme"  # a technology theme


class Topic(Model):
    """A priority area or technology theme that challenges are filed under and SMEs follow.

    Configured by programme managers; a retired topic stays on the challenges that use
    it but is offered for nothing new.
    """

    __tablename__ = "topic"
    __table_args__ = (sa.UniqueConstraint("kind", "name_en", name="one_name_per_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[TopicKind] = mapped_column(enum_column(TopicKind, "topic_kind"))
    name_en: Mapped[str] = mapped_column(sa.String(120))
    name_sv: Mapped[str] = mapped_column(sa.String(120))
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    @property
    def label(self) -> str:
        return self.name_sv if str(get_locale() or "en") == "sv" else self.name_en


class ChallengeStatus(enum.Enum):
    draft = "draft"
    submitted = "submitted"  # submitted for approval
    published = "published"
    closed = "closed"
    in_review = "in_review"
    decided = "decided"
    archived = "archived"


STATUS_LABELS = {
    ChallengeStatus.draft: _l("Draft"),
    ChallengeStatus.submitted: _l("Awaiting approval"),
    ChallengeStatus.published: _l("Open"),
    ChallengeStatus.closed: _l("Closed"),
    ChallengeStatus.in_review: _l("In review"),
    ChallengeStatus.decided: _l("Decided"),
    ChallengeStatus.archived: _l("Archived"),
}

PUBLIC_STATUSES = frozenset(
    {
        ChallengeStatus.published,
        ChallengeStatus.closed,
        ChallengeStatus.in_review,
        ChallengeStatus.decided,
        ChallengeStatus.archived,
    }
)


class Actor(enum.Enum):
    owner = "owner"  # a member of the organisation that owns the challenge
    manager = "manager"  # a programme manager
    system = "system"  # the deadline


@dataclass(frozen=True)
class Transition:
    action: str
    source: ChallengeStatus
    target: ChallengeStatus
    actor: Actor
    label: object  # a lazy string for the button and the timeline


S = ChallengeStatus
# The whole lifecycle: anything not in this table is refused.
TRANSITIONS: tuple[Transition, ...] = (
    Transition("submit", S.draft, S.submitted, Actor.owner, _l("Submitted for approval")),
    Transition("withdraw", S.submitted, S.draft, Actor.owner, _l("Withdrawn for editing")),
    Transition("return", S.submitted, S.draft, Actor.manager, _l("Returned to the owner")),
    Transition("approve", S.submitted, S.published, Actor.manager, _l("Approved and published")),
    Transition("close", S.published, S.closed, Actor.system, _l("Closed at the deadline")),
    Transition("start_review", S.closed, S.in_review, Actor.manager, _l("Review started")),
    Transition("decide", S.in_review, S.decided, Actor.manager, _l("Decided")),
    Transition("archive", S.decided, S.archived, Actor.manager, _l("Archived")),
)
TRANSITION_BY_ACTION = {t.action: t for t in TRANSITIONS}
del S


class OfferKind(enum.Enum):
    data_sets = "data_sets"
    test_environment = "test_environment"
    equipment_time = "equipment_time"
    mentoring = "mentoring"


OFFER_LABELS = {
    OfferKind.data_sets: _l("Data sets"),
    OfferKind.test_environment: _l("Test environments"),
    OfferKind.equipment_time: _l("Equipment time"),
    OfferKind.mentoring: _l("Mentoring"),
}


challenge_theme = sa.Table(
    "challenge_theme",
    Model.metadata,
    sa.Column("challenge_id", sa.ForeignKey("challenge.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("topic_id", sa.ForeignKey("topic.id"), primary_key=True, index=True),
)


class Challenge(Model):
    """An open challenge published by an industrial company for SMEs to solve."""

    __tablename__ = "challenge"
    __table_args__ = (
        sa.CheckConstraint("max_funding_ore > 0", name="funding_positive"),
        sa.CheckConstraint("awards_planned >= 1", name="at_least_one_award"),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted') OR published_at IS NOT NULL", name="public_has_published_at"
        ),
        sa.Index("ix_challenge_status_deadline", "status", "deadline"),
        sa.Index("ix_challenge_status_published", "status", "published_at"),
        # The catalogue lists several statuses at once in either order; these let it read the first
        # page in order instead of sorting every match.
        sa.Index("ix_challenge_deadline_id", "deadline", "id"),
        sa.Index("ix_challenge_published_id", "published_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id"), index=True)
    programme_year_id: Mapped[int] = mapped_column(sa.ForeignKey("programme_year.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    status: Mapped[ChallengeStatus] = mapped_column(
        enum_column(ChallengeStatus, "challenge_status"), default=ChallengeStatus.draft
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    summary: Mapped[str] = mapped_column(sa.String(300))
    description: Mapped[str] = mapped_column(sa.Text)
    area_id: Mapped[int] = mapped_column(sa.ForeignKey("topic.id"), index=True)
    must_demonstrate: Mapped[str] = mapped_column(sa.Text)
    max_funding_ore: Mapped[int] = mapped_column(sa.BigInteger)
    awards_planned: Mapped[int] = mapped_column(sa.Integer)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    agreement: Mapped[str] = mapped_column(sa.Text)
    offers: Mapped[list] = mapped_column(sa.JSON, default=list)
    offers_details: Mapped[str] = mapped_column(sa.Text, default="")
    contact_name: Mapped[str] = mapped_column(sa.String(120))
    contact_email: Mapped[str] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    organisation: Mapped[Organisation] = relationship()
    programme_year: Mapped[ProgrammeYear] = relationship()
    area: Mapped[Topic] = relationship()
    themes: Mapped[list[Topic]] = relationship(secondary=challenge_theme, order_by="Topic.position")
    criteria: Mapped[list[Criterion]] = relationship(
        back_populates="challenge", cascade="all, delete-orphan", order_by="Criterion.position"
    )
    transitions: Mapped[list[ChallengeTransition]] = relationship(
        back_populates="challenge", cascade="all, delete-orphan", order_by="ChallengeTransition.id"
    )
    notes: Mapped[list[ChangeNote]] = relationship(
        back_populates="challenge", cascade="all, delete-orphan", order_by="ChangeNote.id"
    )

    # --- time ---------------------------------------------------------------------------

    def is_open(self, now: datetime | None = None) -> bool:
        """Published and before the deadline, to the second (whether or not the sweep has run)."""
        return self.status is ChallengeStatus.published and (now or utcnow()) < self.deadline

    def shown_status(self, now: datetime | None = None) -> ChallengeStatus:
        """The status a reader sees: past its deadline, a published challenge is closed."""
        if self.status is ChallengeStatus.published and not self.is_open(now):
            return ChallengeStatus.closed
        return self.status

    @property
    def is_public(self) -> bool:
        return self.status in PUBLIC_STATUSES

    # --- who may do what ----------------------------------------------------------------

    def is_owned_by(self, user: User) -> bool:
        """*user* is an active, approved member of the organisation that owns the challenge."""
        if not user.is_authenticated:  # an account turned off is not (flask-login reads is_active)
            return False
        org = user.organisation
        return org is not None and org.id == self.organisation_id

    def can_view(self, user: User) -> bool:
        return (
            self.is_public or self.is_owned_by(user) or (user.is_authenticated and user.is_programme_manager)
        )

    def can_see_history(self, user: User) -> bool:
        """Returns, comments and drafts are for the owner and the programme."""
        return self.is_owned_by(user) or (user.is_authenticated and user.is_programme_manager)

    def can_edit(self, user: User) -> bool:
        return self.status is ChallengeStatus.draft and self.is_owned_by(user)

    def can_amend(self, user: User) -> bool:
        """Add a clarification or extend the deadline: only while it is open."""
        return self.is_open() and self.is_owned_by(user)

    def can_ask(self, user: User) -> bool:
        return self.is_open() and user.is_authenticated and user.active and user.is_sme_member

    def can_answer(self, user: User) -> bool:
        return self.is_public and self.is_owned_by(user)

    def can_follow(self, user: User) -> bool:
        return self.is_public and user.is_authenticated and user.active and user.is_sme_member

    def allowed_actions(self, user: User) -> list[Transition]:
        """The transitions *user* may take from the current status (never the system's)."""
        return [t for t in TRANSITIONS if t.source is self.status and may_take(t, self, user)]


def may_take(transition: Transition, challenge: Challenge, user: User) -> bool:
    if transition.actor is Actor.owner:
        return challenge.is_owned_by(user)
    if transition.actor is Actor.manager:
        return user.is_authenticated and user.is_programme_manager
    return False


class Criterion(Model):
    """One evaluation criterion of a challenge with its weight (the weights need not sum to 100)."""

    __tablename__ = "challenge_criterion"
    __table_args__ = (
        sa.CheckConstraint("weight >= 0 AND weight <= 100", name="weight_range"),
        sa.UniqueConstraint("challenge_id", "position", name="one_per_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(200))
    weight: Mapped[int] = mapped_column(sa.Integer)

    challenge: Mapped[Challenge] = relationship(back_populates="criteria")


class ChallengeTransition(Model):
    """One step of the lifecycle, with who took it and when: the challenge's timeline."""

    __tablename__ = "challenge_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(sa.String(20))
    from_status: Mapped[ChallengeStatus | None] = mapped_column(enum_column(ChallengeStatus, "from_status"))
    to_status: Mapped[ChallengeStatus] = mapped_column(enum_column(ChallengeStatus, "to_status"))
    actor_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_id: Mapped[str | None] = mapped_column(sa.ForeignKey("event_log.id"))

    challenge: Mapped[Challenge] = relationship(back_populates="transitions")
    actor: Mapped[User | None] = relationship()

    @property
    def label(self):
        if self.action == "create":
            return _l("Draft created")
        return TRANSITION_BY_ACTION[self.action].label

    @property
    def is_public(self) -> bool:
        return self.to_status in PUBLIC_STATUSES


class NoteKind(enum.Enum):
    clarification = "clarification"
    deadline_extended = "deadline_extended"


class ChangeNote(Model):
    """A dated change to a published challenge: a clarification or a deadline extension."""

    __tablename__ = "challenge_change_note"
    __table_args__ = (
        sa.CheckConstraint(
            "kind <> 'deadline_extended' OR (old_deadline IS NOT NULL AND new_deadline > old_deadline)",
            name="extension_moves_later",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id", ondelete="CASCADE"), index=True)
    kind: Mapped[NoteKind] = mapped_column(enum_column(NoteKind, "note_kind"))
    text: Mapped[str] = mapped_column(sa.Text, default="")
    old_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    new_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    challenge: Mapped[Challenge] = relationship(back_populates="notes")


class Question(Model):
    """A question from an SME about a challenge; public once answered, never naming the asker."""

    __tablename__ = "challenge_question"
    __table_args__ = (
        sa.CheckConstraint("(answer IS NULL) = (answered_at IS NULL)", name="answer_has_time"),
        sa.Index("ix_challenge_question_challenge_answered", "challenge_id", "answered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id", ondelete="CASCADE"))
    asked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    text: Mapped[str] = mapped_column(sa.Text)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    answer: Mapped[str | None] = mapped_column(sa.Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))

    challenge: Mapped[Challenge] = relationship()


class Follow(Model):
    """An SME organisation follows a topic (to hear of new challenges) or one challenge."""

    __tablename__ = "follow"
    __table_args__ = (
        sa.CheckConstraint("(topic_id IS NULL) <> (challenge_id IS NULL)", name="topic_or_challenge"),
        sa.UniqueConstraint("organisation_id", "topic_id", name="once_per_topic"),
        sa.UniqueConstraint("organisation_id", "challenge_id", name="once_per_challenge"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisation.id", ondelete="CASCADE"))
    topic_id: Mapped[int | None] = mapped_column(sa.ForeignKey("topic.id", ondelete="CASCADE"), index=True)
    challenge_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("challenge.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClosingReminder(Model):
    """A closing-soon reminder that has gone out: one per challenge, lead time and deadline, so a
    moved deadline gets its own reminders and none goes twice."""

    __tablename__ = "closing_reminder"
    __table_args__ = (sa.UniqueConstraint("challenge_id", "days", "deadline", name="closing_reminder_once"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id", ondelete="CASCADE"))
    days: Mapped[int] = mapped_column(sa.Integer)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
