"""Scoring: the review sheet an evaluator fills in, its submission, when an assessment is complete,
and the aggregation of the scores into each proposal's weighted result and the ranking."""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import aliased

from challenges.accounts.models import Organisation, User
from challenges.calls.models import Challenge, Criterion
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import json_rows, utcnow
from challenges.extensions import db
from challenges.proposals.models import Proposal, ProposalVersion
from challenges.reviews import events
from challenges.reviews.assignments import lock_review
from challenges.reviews.conflicts import ConflictIndex, Party, conflict_rows, parties
from challenges.reviews.models import (
    SCALE,
    Assessment,
    Assignment,
    ChallengeReview,
    Review,
)


class SheetOrganisation(NamedTuple):
    id: int
    org_number: str
    name: str


class SheetReview(NamedTuple):
    """The evaluator's own submitted review."""

    scores: dict[str, Any]
    comment_to_applicant: str
    comment_to_programme: str
    submitted_at: datetime


class SheetCriterion(NamedTuple):
    id: int
    name: str
    weight: int


@dataclass(frozen=True)
class ReviewSheet:
    """What an evaluator's page for one assignment shows and checks, read as plain values in one
    statement (the assignment with the version under review, the organisations, the challenge's
    review and criteria, the evaluator's own review): the page evaluators open most, and building
    model objects for ten joined tables cost more than reading them."""

    assignment_id: int
    assessment_id: int
    evaluator_id: int
    recused_at: datetime | None
    override_justification: str | None
    version: int
    content: dict[str, Any]
    challenge_title: str
    blind: bool
    review_deadline: datetime
    published_at: datetime | None
    parties: tuple[SheetOrganisation, SheetOrganisation]
    conflicts: list[list[Any]]  # rows of conflict_rows for the evaluator and the parties
    mine: SheetReview | None
    criteria: list[SheetCriterion]


@functools.cache
def _sheet_query() -> sa.Select:
    """Built once."""
    applicant, owner = aliased(Organisation), aliased(Organisation)
    criteria = (
        sa.select(json_rows(Criterion.position, Criterion.id, Criterion.name, Criterion.weight))
        .where(Criterion.challenge_id == Challenge.id)
        .scalar_subquery()
    )
    rows = conflict_rows(
        [Assignment.evaluator_id], [Proposal.organisation_id, Challenge.organisation_id]
    ).subquery()
    conflicts = sa.select(json_rows(*rows.c)).scalar_subquery()
    return (
        sa.select(
            Assignment.id,
            Assignment.assessment_id,
            Assignment.evaluator_id,
            Assignment.recused_at,
            Assignment.override_justification,
            Assessment.version,
            ProposalVersion.content,
            Challenge.title,
            ChallengeReview.blind,
            ChallengeReview.review_deadline,
            ChallengeReview.published_at,
            criteria,
            conflicts,
            applicant.id,
            applicant.org_number,
            applicant.name,
            owner.id,
            owner.org_number,
            owner.name,
            Review.id,
            Review.scores,
            Review.comment_to_applicant,
            Review.comment_to_programme,
            Review.submitted_at,
        )
        .join(Assessment, Assessment.id == Assignment.assessment_id)
        .join(Proposal, Proposal.id == Assessment.proposal_id)
        .join(
            ProposalVersion,
            sa.and_(
                ProposalVersion.proposal_id == Assessment.proposal_id,
                ProposalVersion.number == Assessment.version,
            ),
        )
        .join(applicant, applicant.id == Proposal.organisation_id)
        .join(ChallengeReview, ChallengeReview.id == Assessment.review_id)
        .join(Challenge, Challenge.id == ChallengeReview.challenge_id)
        .join(owner, owner.id == Challenge.organisation_id)
        .outerjoin(Review, Review.assignment_id == Assignment.id)
        .where(Assignment.id == sa.bindparam("assignment_id"))
    )


def review_sheet(assignment_id: int) -> ReviewSheet | None:
    row = db.session.execute(_sheet_query(), {"assignment_id": assignment_id}).one_or_none()
    if row is None:
        return None
    (
        assignment_id,
        assessment_id,
        evaluator_id,
        recused_at,
        override,
        version,
        content,
        title,
        blind,
        deadline,
        published_at,
        criteria,
        conflicts,
        *organisations,
        review_id,
        scores,
        to_applicant,
        to_programme,
        submitted_at,
    ) = row
    return ReviewSheet(
        assignment_id,
        assessment_id,
        evaluator_id,
        recused_at,
        override,
        version,
        content,
        title,
        blind,
        deadline,
        published_at,
        (SheetOrganisation(*organisations[:3]), SheetOrganisation(*organisations[3:])),
        conflicts or [],
        SheetReview(scores, to_applicant, to_programme, submitted_at) if review_id is not None else None,
        [SheetCriterion(*c[1:]) for c in sorted(criteria or [], key=lambda c: c[0])],
    )


def can_review(assignment: Assignment | ReviewSheet, user: User, index: ConflictIndex | None = None) -> bool:
    """The assigned evaluator, not recused, without a conflict (unless a manager overrode it)."""
    if not (user.is_authenticated and user.active and assignment.evaluator_id == user.id):
        return False
    if assignment.recused_at is not None:
        return False
    if assignment.override_justification is not None:
        return True
    between: tuple[Party, Party]
    if isinstance(assignment, ReviewSheet):
        between, index = assignment.parties, index or ConflictIndex(rows=assignment.conflicts)
    else:
        between = parties(assignment.assessment.proposal)
        index = index or ConflictIndex([user.id], {org.id for org in between})
    return not index.reasons_about(user, between)


def submit_review(
    assignment: Assignment,
    scores: dict[int, int | None],
    comment_to_applicant: str,
    comment_to_programme: str,
    *,
    by: User,
) -> Review:
    """Every criterion scored 1–7 or marked N/A; a comment the applicant will read."""
    if not can_review(assignment, by):
        raise PermissionDenied(_("This proposal is not assigned to you."))
    review = assignment.assessment.review
    lock_review(review)
    if review.published_at is not None:
        raise ServiceError(_("The decisions are published; reviews can no longer be submitted."))
    if assignment.review is not None:
        raise ServiceError(_("You have already submitted your review of this proposal."))
    criteria = review.challenge.criteria
    errors = {}
    for c in criteria:
        if c.id not in scores:
            errors[f"criterion_{c.id}"] = _("Score “%(name)s” from 1 to 7, or mark it N/A.", name=c.name)
        elif scores[c.id] is not None and scores[c.id] not in SCALE:
            errors[f"criterion_{c.id}"] = _("Scores run from 1 to 7.")
    if set(scores) - {c.id for c in criteria}:
        errors["scores"] = _("Score only this challenge's criteria.")
    if not comment_to_applicant.strip():
        errors["comment_to_applicant"] = _("Write a comment for the applicant.")
    if errors:
        raise InvalidInput(errors)
    row = Review(
        assignment=assignment,
        scores={str(k): v for k, v in scores.items()},
        comment_to_applicant=comment_to_applicant.strip(),
        comment_to_programme=comment_to_programme.strip(),
    )
    db.session.add(row)
    db.session.flush()
    record(events.ReviewSubmitted(review_id=row.id, assessment_id=assignment.assessment_id), by=by)
    return row


def is_complete(assessment: Assessment) -> bool:
    """Every non-recused evaluator's review is in (and there is at least one)."""
    active = assessment.active_assignments
    return bool(active) and all(a.review is not None for a in active)


def check_completion(assessment: Assessment) -> None:
    """The worker, after anything that changes who reviews what: is this proposal complete, and
    with it the whole challenge? A new evaluator makes it incomplete again."""
    review = assessment.review
    lock_review(review)
    if review.published_at is not None:
        return
    if is_complete(assessment) and assessment.completed_at is None:
        assessment.completed_at = utcnow()
        db.session.flush()
        record(events.ProposalReviewCompleted(assessment_id=assessment.id, review_id=review.id))
    elif not is_complete(assessment) and assessment.completed_at is not None:
        assessment.completed_at = None
    eligible = [a for a in review.assessments if a.eligible]
    done = bool(eligible) and all(a.completed_at is not None for a in eligible)
    if done and review.completed_at is None:
        review.completed_at = utcnow()
        db.session.flush()
        record(events.ChallengeReviewCompleted(review_id=review.id, challenge_id=review.challenge_id))
    elif not done:
        review.completed_at = None
    db.session.flush()


def recuse_conflicted(evaluator: User) -> int:
    """The worker, after a declaration: step the evaluator back from every open assignment that
    now conflicts (unless a manager assigned it knowingly). Returns how many."""
    index = ConflictIndex()
    stepped = 0
    for assignment in db.session.scalars(
        sa.select(Assignment).where(
            Assignment.evaluator_id == evaluator.id,
            Assignment.recused_at.is_(None),
            Assignment.override_justification.is_(None),
        )
    ).all():
        if (
            assignment.review is None
            and assignment.assessment.review.published_at is None
            and index.reasons(evaluator, assignment.assessment.proposal)
        ):
            assignment.recused_at = utcnow()
            assignment.recusal_reason = _("Conflict of interest declared")
            db.session.flush()
            record(
                events.EvaluatorRecused(assignment_id=assignment.id, assessment_id=assignment.assessment_id)
            )
            stepped += 1
    return stepped


# --- aggregation and ranking ------------------------------------------------------------------------------


def weighted_score(scores: dict[str, Any], weights: dict[int, int]) -> float | None:
    """The weighted mean over the criteria that were scored; N/A is left out, never a zero."""
    pairs = [(weights[int(k)], v) for k, v in scores.items() if v is not None and int(k) in weights]
    total = sum(w for w, _v in pairs)
    return sum(w * v for w, v in pairs) / total if total else None


@dataclass
class Result:
    assessment: Assessment
    scores: list[float]  # one weighted score per submitted review (N/A-only reviews left out)
    mean: float | None
    median: float | None
    spread: float | None
    disagreement: bool
    calibrated: float | None  # the mean z-score of its reviews against each evaluator's own scores
    complete: bool


def results(review: ChallengeReview) -> list[Result]:
    """Every eligible proposal with its aggregate, best first: the ranking."""
    weights = {c.id: c.weight for c in review.challenge.criteria}
    assessments = [a for a in review.assessments if a.eligible]
    per_review = {}  # assignment id -> weighted score
    by_evaluator: dict[int, list[float]] = {}
    for a in assessments:
        for x in a.active_assignments:
            if x.review is not None and (s := weighted_score(x.review.scores, weights)) is not None:
                per_review[x.id] = s
                by_evaluator.setdefault(x.evaluator_id, []).append(s)
    norms = {e: (statistics.mean(v), statistics.pstdev(v)) for e, v in by_evaluator.items()}
    out = []
    for a in assessments:
        done = [x for x in a.active_assignments if x.id in per_review]
        scores = [per_review[x.id] for x in done]
        zs = [
            (per_review[x.id] - norms[x.evaluator_id][0]) / norms[x.evaluator_id][1]
            for x in done
            if norms[x.evaluator_id][1] > 0
        ]
        spread = max(scores) - min(scores) if scores else None
        out.append(
            Result(
                assessment=a,
                scores=scores,
                mean=statistics.mean(scores) if scores else None,
                median=statistics.median(scores) if scores else None,
                spread=spread,
                disagreement=spread is not None and round(spread * 10, 6) > review.disagreement_tenths,
                calibrated=statistics.mean(zs) if zs and review.calibration else None,
                complete=is_complete(a),
            )
        )
    out.sort(key=lambda r: (r.mean is None, -(r.mean or 0), r.assessment.id))
    return out
