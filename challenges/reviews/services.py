"""Every change to a challenge's review: opening, screening, conflicts, assignment, scoring,
completion, decisions and reminders. Services take ``by=``, check, change, record, flush."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import joinedload, selectinload

from challenges.accounts.models import Organisation, Role, User
from challenges.accounts.permissions import require_manager
from challenges.calls import services as calls
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.proposals.models import Proposal, ProposalStatus
from challenges.reviews import events
from challenges.reviews.models import (
    Assessment,
    Assignment,
    ChallengeReview,
    ConflictDeclaration,
    Decision,
    Relation,
    Review,
)
from challenges.reviews.scoring import ReviewSheet, is_complete

REVIEW_PERIOD = timedelta(days=21)


def review_of(challenge: Challenge) -> ChallengeReview | None:
    return db.session.scalar(sa.select(ChallengeReview).where(ChallengeReview.challenge_id == challenge.id))


# --- opening ------------------------------------------------------------------------------------


def open_review(challenge: Challenge) -> ChallengeReview:
    """The challenge has closed: one assessment per submitted proposal (its last version). Idempotent."""
    existing = review_of(challenge)
    if existing is not None:
        return existing
    review = ChallengeReview(
        challenge_id=challenge.id, review_deadline=(challenge.closed_at or utcnow()) + REVIEW_PERIOD
    )
    db.session.add(review)
    db.session.flush()
    for proposal in db.session.scalars(
        sa.select(Proposal)
        .where(Proposal.challenge_id == challenge.id, Proposal.status == ProposalStatus.submitted)
        .order_by(Proposal.id)
    ):
        db.session.add(Assessment(review_id=review.id, proposal_id=proposal.id, version=proposal.version))
    if challenge.status is ChallengeStatus.closed:
        calls.start_review(challenge, by=None)
    db.session.flush()
    record(events.ReviewOpened(review_id=review.id, challenge_id=challenge.id))
    return review


@dataclass
class ReviewSettings:
    review_deadline: datetime
    evaluators_per_proposal: int
    max_per_evaluator: int
    blind: bool
    calibration: bool
    disagreement_tenths: int


def update_settings(review: ChallengeReview, settings: ReviewSettings, *, by: User) -> None:
    require_manager(by)
    if review.published_at is not None:
        raise ServiceError(_("The decisions are published; the review can no longer change."))
    errors = {}
    if not 1 <= settings.evaluators_per_proposal <= 10:
        errors["evaluators_per_proposal"] = _("Enter a number of evaluators from 1 to 10.")
    if not 1 <= settings.max_per_evaluator <= 200:
        errors["max_per_evaluator"] = _("Enter a maximum from 1 to 200.")
    if not 1 <= settings.disagreement_tenths <= 60:
        errors["disagreement"] = _("Enter a threshold from 0.1 to 6 points.")
    if errors:
        raise InvalidInput(errors)
    for name, value in settings.__dict__.items():
        setattr(review, name, value)
    db.session.flush()


# --- screening -------------------------------------------------------------------------------------


def screen_proposal(assessment: Assessment, *, eligible: bool, reason: str, by: User) -> None:
    """Eligible, or not with a reason that the applicant reads."""
    require_manager(by)
    if assessment.review.published_at is not None:
        raise ServiceError(_("The decisions are published; the review can no longer change."))
    if not eligible and not reason.strip():
        raise ServiceError(_("Give the reason the applicant will read."), "reason")
    if not eligible and assessment.active_assignments:
        raise ServiceError(_("Remove the evaluators from this proposal before marking it ineligible."))
    assessment.eligible = eligible
    assessment.ineligible_reason = None if eligible else reason.strip()
    assessment.screened_by_id = by.id
    db.session.flush()
    record(
        events.ProposalScreened(
            assessment_id=assessment.id, eligible=eligible, reason=assessment.ineligible_reason or ""
        ),
        by=by,
    )


# --- conflicts of interest ---------------------------------------------------------------------------


def declare_conflict(evaluator: User, org_number: str, organisation_name: str, relation: Relation) -> None:
    if not evaluator.has_role(Role.evaluator):
        raise PermissionDenied(_("Only evaluators declare conflicts of interest."))
    if db.session.scalar(
        sa.select(ConflictDeclaration).where(
            ConflictDeclaration.evaluator_id == evaluator.id, ConflictDeclaration.org_number == org_number
        )
    ):
        raise ServiceError(_("You have already declared this organisation."), "org_number")
    known = db.session.scalar(sa.select(Organisation).where(Organisation.org_number == org_number))
    name = organisation_name.strip() or (known.name if known else "")
    if not name:
        raise ServiceError(_("Give the organisation's name: it is not registered here."), "organisation_name")
    db.session.add(
        ConflictDeclaration(
            evaluator_id=evaluator.id, org_number=org_number, organisation_name=name, relation=relation
        )
    )
    db.session.flush()
    record(
        events.ConflictDeclared(evaluator_id=evaluator.id, org_number=org_number, relation=relation.value),
        by=evaluator,
    )


# --- decisions --------------------------------------------------------------------------------------------


def decide_proposal(
    assessment: Assessment, decision: Decision, reason: str, *, override: str = "", by: User
) -> None:
    """Recommend or reject with a reason; before every review is in only with an override and its reason."""
    require_manager(by)
    if assessment.review.published_at is not None:
        raise ServiceError(_("The decisions are published and can no longer change."))
    if not assessment.eligible:
        raise ServiceError(
            _("Only an eligible proposal gets a decision; the others have their screening reason.")
        )
    errors = {}
    if not reason.strip():
        errors["reason"] = _("Give the reason for the decision.")
    complete = is_complete(assessment)
    if not complete and not override.strip():
        errors["override"] = _("Not every review of this proposal is in. To decide all the same, say why.")
    if errors:
        raise InvalidInput(errors)
    assessment.decision = decision
    assessment.decision_reason = reason.strip()
    assessment.decision_override = override.strip() if not complete else None
    assessment.decided_by_id = by.id
    assessment.decided_at = utcnow()
    db.session.flush()
    record(events.ProposalDecided(assessment_id=assessment.id, decision=decision.value), by=by)


def publish_decisions(review: ChallengeReview, *, by: User) -> None:
    """Make every decision public at once; the worker tells the applicants and the owner."""
    require_manager(by)
    if review.published_at is not None:
        raise ServiceError(_("The decisions are already published."))
    undecided = [a for a in review.assessments if a.eligible and a.decision is None]
    unscreened = [a for a in review.assessments if a.eligible is None]
    if unscreened or undecided:
        raise ServiceError(
            _(
                "Every proposal needs a screening and every eligible one a decision first: "
                "%(s)s not screened, %(d)s not decided.",
                s=len(unscreened),
                d=len(undecided),
            )
        )
    review.published_at = utcnow()
    challenge = review.challenge
    if challenge.status is ChallengeStatus.in_review:
        calls.mark_decided(challenge, by=by)
    db.session.flush()
    record(events.DecisionsPublished(review_id=review.id, challenge_id=review.challenge_id), by=by)


# --- what evaluators and applicants see ---------------------------------------------------------------------


def my_assignments(user: User) -> list[Assignment]:
    return list(
        db.session.scalars(
            sa.select(Assignment)
            .where(Assignment.evaluator_id == user.id)
            .options(
                joinedload(Assignment.assessment)
                .joinedload(Assessment.review)
                .joinedload(ChallengeReview.challenge),
                joinedload(Assignment.assessment)
                .joinedload(Assessment.proposal)
                .options(
                    selectinload(Proposal.versions),
                    joinedload(Proposal.organisation),
                    joinedload(Proposal.challenge).joinedload(Challenge.organisation),
                ),
                selectinload(Assignment.review),
            )
            .order_by(Assignment.assigned_at.desc(), Assignment.id.desc())
        )
    )


def others_reviews(sheet: ReviewSheet) -> list[Review]:
    """The other evaluators' reviews, once this one's is in (never before); not a recused one's."""
    if sheet.mine is None:
        return []
    return list(
        db.session.scalars(
            sa.select(Review)
            .join(Assignment, Assignment.id == Review.assignment_id)
            .where(
                Assignment.assessment_id == sheet.assessment_id,
                Assignment.id != sheet.assignment_id,
                Assignment.recused_at.is_(None),
            )
            .order_by(Assignment.id)
        )
    )


def assessment_of(proposal: Proposal) -> Assessment | None:
    return db.session.scalar(sa.select(Assessment).where(Assessment.proposal_id == proposal.id))


# --- reminders ----------------------------------------------------------------------------------------------------


def unfinished_by_evaluator(review: ChallengeReview) -> dict[User, list[Assignment]]:
    out: dict[User, list[Assignment]] = {}
    for a in review.assessments:
        for x in a.active_assignments:
            if x.review is None:
                out.setdefault(x.evaluator, []).append(x)
    return out
