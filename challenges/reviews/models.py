"""A challenge's review: screening, conflicts of interest, assignments, reviews and decisions."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import Model

if TYPE_CHECKING:
    from challenges.accounts.models import User
    from challenges.calls.models import Challenge
    from challenges.proposals.models import Proposal, ProposalVersion

SCALE = range(1, 8)
SCALE_LABELS = {
    1: _l("1 – Very poor"),
    2: _l("2 – Poor"),
    3: _l("3 – Fair"),
    4: _l("4 – Average"),
    5: _l("5 – Good"),
    6: _l("6 – Very good"),
    7: _l("7 – Excellent"),
}


class Relation(enum.Enum):
    works_for = "works_for"
    owns = "owns"
    advises = "advises"
    contracts = "contracts"


RELATION_LABELS = {
    Relation.works_for: _l("I work for it"),
    Relation.owns: _l("I own all or part of it"),
    Relation.advises: _l("I advise it or sit on its board"),
    Relation.contracts: _l("I have a contract with it"),
}


class Decision(enum.Enum):
    recommend = "recommend"
    reject = "reject"


DECISION_LABELS = {Decision.recommend: _l("Recommended for funding"), Decision.reject: _l("Not recommended")}


class ChallengeReview(Model):
    """The review of one closed challenge, opened by the worker when the deadline passes."""

    __tablename__ = "challenge_review"
    __table_args__ = (
        sa.CheckConstraint("evaluators_per_proposal BETWEEN 1 AND 10", name="evaluators_range"),
        sa.CheckConstraint("max_per_evaluator BETWEEN 1 AND 200", name="max_range"),
        sa.CheckConstraint("disagreement_tenths BETWEEN 1 AND 60", name="threshold_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    challenge_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge.id"), unique=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    review_deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    evaluators_per_proposal: Mapped[int] = mapped_column(sa.Integer, default=3)
    max_per_evaluator: Mapped[int] = mapped_column(sa.Integer, default=10)
    blind: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    calibration: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    # Evaluators disagree when their scores for a proposal lie further apart than this (2.0 points).
    disagreement_tenths: Mapped[int] = mapped_column(sa.Integer, default=20)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    challenge: Mapped[Challenge] = relationship()
    assessments: Mapped[list[Assessment]] = relationship(back_populates="review", order_by="Assessment.id")


class Assessment(Model):
    """One proposal under review: its screening, whether its reviews are in, and its decision."""

    __tablename__ = "assessment"
    __table_args__ = (
        sa.CheckConstraint(
            "eligible IS NOT FALSE OR ineligible_reason IS NOT NULL", name="ineligible_has_reason"
        ),
        sa.CheckConstraint("decision IS NULL OR decision_reason IS NOT NULL", name="decision_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(
        sa.ForeignKey("challenge_review.id", ondelete="CASCADE"), index=True
    )
    proposal_id: Mapped[int] = mapped_column(sa.ForeignKey("proposal.id"), unique=True)
    version: Mapped[int] = mapped_column(sa.Integer)  # the submitted version under review
    eligible: Mapped[bool | None] = mapped_column(sa.Boolean)
    ineligible_reason: Mapped[str | None] = mapped_column(sa.Text)
    screened_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decision: Mapped[Decision | None] = mapped_column(enum_column(Decision, "decision"))
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)
    decision_override: Mapped[str | None] = mapped_column(sa.Text)  # why decided before every review was in
    decided_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    review: Mapped[ChallengeReview] = relationship(back_populates="assessments")
    proposal: Mapped[Proposal] = relationship()
    # The submitted version under review, loaded alone: a proposal resubmitted many times need not
    # bring every version along.
    assessed_version: Mapped[ProposalVersion] = relationship(
        primaryjoin="and_(remote(ProposalVersion.proposal_id) == foreign(Assessment.proposal_id), "
        "remote(ProposalVersion.number) == foreign(Assessment.version))",
        viewonly=True,
    )
    assignments: Mapped[list[Assignment]] = relationship(
        back_populates="assessment", order_by="Assignment.id"
    )

    @property
    def active_assignments(self) -> list[Assignment]:
        return [a for a in self.assignments if a.recused_at is None]


class ConflictDeclaration(Model):
    """An organisation an evaluator works for, owns, advises or has a contract with."""

    __tablename__ = "conflict_declaration"
    __table_args__ = (sa.UniqueConstraint("evaluator_id", "org_number", name="once_per_organisation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    evaluator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    org_number: Mapped[str] = mapped_column(sa.String(11))
    organisation_name: Mapped[str] = mapped_column(sa.String(200))
    relation: Mapped[Relation] = mapped_column(enum_column(Relation, "relation"))
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Assignment(Model):
    """An evaluator assigned to review one proposal (by the assigner or a programme manager)."""

    __tablename__ = "review_assignment"
    __table_args__ = (
        sa.UniqueConstraint("assessment_id", "evaluator_id", name="once_per_evaluator"),
        sa.CheckConstraint("(recused_at IS NULL) = (recusal_reason IS NULL)", name="recusal_has_reason"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(sa.ForeignKey("assessment.id", ondelete="CASCADE"), index=True)
    evaluator_id: Mapped[int] = mapped_column(sa.ForeignKey("user_account.id"), index=True)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    override_justification: Mapped[str | None] = mapped_column(
        sa.Text
    )  # a manager assigned despite a conflict
    recused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recusal_reason: Mapped[str | None] = mapped_column(sa.Text)

    assessment: Mapped[Assessment] = relationship(back_populates="assignments")
    evaluator: Mapped[User] = relationship(foreign_keys=[evaluator_id])
    review: Mapped[Review | None] = relationship(back_populates="assignment", uselist=False)


class Review(Model):
    """An evaluator's submitted scores: one per criterion (None is N/A), and two comments."""

    __tablename__ = "review"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        sa.ForeignKey("review_assignment.id", ondelete="CASCADE"), unique=True
    )
    scores: Mapped[dict[str, Any]] = mapped_column(sa.JSON)  # criterion id (str) -> 1..7 or None
    comment_to_applicant: Mapped[str] = mapped_column(sa.Text)
    comment_to_programme: Mapped[str] = mapped_column(sa.Text, default="")
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    assignment: Mapped[Assignment] = relationship(back_populates="review")


class ReminderSent(Model):
    """A reminder round that has been sent: one per review and kind, so each goes once."""

    __tablename__ = "review_reminder"
    __table_args__ = (sa.UniqueConstraint("review_id", "kind", name="once_per_kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(sa.ForeignKey("challenge_review.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(40))  # "three_days:<deadline date>" or "on_the_day:<…>"
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
