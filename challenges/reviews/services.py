"""Every change to a challenge's review: opening, screening, conflicts, assignment, scoring,
completion, decisions and reminders. Services take ``by=``, check, change, record, flush."""

from __future__ import annotations

import functools
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import aliased, joinedload, selectinload

from challenges.accounts.models import Organisation, Role, User, UserRole
from challenges.accounts.permissions import require_manager
from challenges.calls import services as calls
from challenges.calls.models import Challenge, ChallengeStatus, Criterion
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import json_rows, utcnow
from challenges.extensions import db
from challenges.proposals.models import Proposal, ProposalStatus, ProposalVersion
from challenges.reviews import assign, events
from challenges.reviews.conflicts import ConflictIndex, Party, conflict_reasons, conflict_rows, parties
from challenges.reviews.models import (
    SCALE,
    Assessment,
    Assignment,
    ChallengeReview,
    ConflictDeclaration,
    Decision,
    Relation,
    Review,
)

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


def evaluators() -> list[User]:
    return list(
        db.session.scalars(
            sa.select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.evaluator, User.active.is_(True))
            .order_by(User.name, User.id)
        )
    )


# --- assignment ------------------------------------------------------------------------------------------


def _lock(review: ChallengeReview) -> None:
    """Serialise changes to one review (FOR UPDATE on PostgreSQL; SQLite transactions are
    IMMEDIATE): two assignment runs, a double-clicked submission or two workers checking
    completion cannot interleave. Everything is read afresh once the lock is held."""
    db.session.flush()
    db.session.execute(sa.select(ChallengeReview.id).where(ChallengeReview.id == review.id).with_for_update())
    db.session.expire_all()


def _require_assignable(review: ChallengeReview) -> None:
    if review.published_at is not None:
        raise ServiceError(_("The decisions are published; the review can no longer change."))


def loads(review: ChallengeReview) -> dict[int, int]:
    rows = db.session.execute(
        sa.select(Assignment.evaluator_id, sa.func.count())
        .join(Assessment)
        .where(Assessment.review_id == review.id, Assignment.recused_at.is_(None))
        .group_by(Assignment.evaluator_id)
    )
    return {evaluator_id: n for evaluator_id, n in rows}


def assign_automatically(review: ChallengeReview, *, by: User | None) -> list[Assignment]:
    """Give every eligible proposal its N evaluators: balanced, within the maximum, no conflicts."""
    if by is not None:
        require_manager(by)
    _lock(review)
    _require_assignable(review)
    unscreened = [a for a in review.assessments if a.eligible is None]
    if unscreened:
        raise ServiceError(_("Screen every proposal first: %(n)s not screened yet.", n=len(unscreened)))
    pool = evaluators()
    eligible = [a for a in review.assessments if a.eligible]
    index = ConflictIndex()
    allowed = set()
    for a in eligible:
        taken = {x.evaluator_id for x in a.assignments}  # recused ones cannot come back
        for e in pool:
            if e.id not in taken and not index.reasons(e, a.proposal):
                allowed.add((a.id, e.id))
    problem = assign.Problem(
        demand={a.id: review.evaluators_per_proposal - len(a.active_assignments) for a in eligible},
        evaluators=[e.id for e in pool],
        allowed=frozenset(allowed),
        load=dict(loads(review)),
        cap=review.max_per_evaluator,
    )
    try:
        result = assign.plan(problem)
    except assign.Infeasible as exc:
        raise ServiceError(_explain(exc, {a.id: a for a in eligible})) from None
    by_id = {a.id: a for a in eligible}
    created = []
    for assessment_id, evaluator_ids in result.items():
        for evaluator_id in evaluator_ids:
            created.append(
                Assignment(
                    assessment=by_id[assessment_id],
                    evaluator_id=evaluator_id,
                    assigned_by_id=by.id if by else None,
                )
            )
    db.session.add_all(created)
    db.session.flush()
    if created:
        record(events.EvaluatorsAssigned(review_id=review.id, assignment_ids=[a.id for a in created]), by=by)
    return created


def _explain(exc: assign.Infeasible, assessments: dict[int, Assessment]) -> str:
    parts = []
    for kind, facts in exc.reasons:
        if kind == "too_few":
            parts.append(
                _(
                    "Too few evaluators without conflicts for “%(title)s”: %(needed)s more needed, "
                    "%(available)s available.",
                    title=assessments[facts["proposal"]].proposal.title,
                    needed=facts["needed"],
                    available=facts["available"],
                )
            )
        else:
            parts.append(
                _(
                    "The evaluators cannot take %(needed)s reviews with at most %(cap)s each (%(possible)s "
                    "possible). Raise the maximum per evaluator or invite more evaluators.",
                    **facts,
                )
            )
    return " ".join(parts) + " " + _("Nothing has been assigned.")


def assign_by_hand(assessment: Assessment, evaluator: User, *, justification: str, by: User) -> Assignment:
    """A programme manager adds an evaluator; a conflict needs a written justification."""
    require_manager(by)
    _lock(assessment.review)
    _require_assignable(assessment.review)
    if not evaluator.has_role(Role.evaluator) or not evaluator.active:
        raise ServiceError(_("Choose an active evaluator."), "evaluator")
    if not assessment.eligible:
        raise ServiceError(_("Only a proposal screened as eligible can be assigned."))
    if any(a.evaluator_id == evaluator.id for a in assessment.assignments):
        raise ServiceError(
            _("%(name)s is already assigned to this proposal, or has recused from it.", name=evaluator.name),
            "evaluator",
        )
    reasons = conflict_reasons(evaluator, assessment.proposal)
    if reasons and not justification.strip():
        raise ServiceError(
            _(
                "%(name)s has a conflict of interest (%(reasons)s). Write why the assignment is "
                "justified all the same, or choose someone else.",
                name=evaluator.name,
                reasons="; ".join(reasons),
            ),
            "justification",
        )
    assignment = Assignment(
        assessment=assessment,
        evaluator_id=evaluator.id,
        assigned_by_id=by.id,
        override_justification=justification.strip() if reasons else None,
    )
    db.session.add(assignment)
    db.session.flush()
    record(events.EvaluatorsAssigned(review_id=assessment.review_id, assignment_ids=[assignment.id]), by=by)
    return assignment


def unassign(assignment: Assignment, *, by: User) -> None:
    require_manager(by)
    _lock(assignment.assessment.review)
    _require_assignable(assignment.assessment.review)
    if assignment.review is not None:
        raise ServiceError(_("This evaluator has already submitted a review; it cannot be taken away."))
    if assignment.recused_at is not None:
        raise ServiceError(_("This evaluator has recused; the recusal stays on record."))
    assessment_id, evaluator_id = assignment.assessment_id, assignment.evaluator_id
    db.session.delete(assignment)
    db.session.flush()
    record(events.AssignmentRemoved(assessment_id=assessment_id, evaluator_id=evaluator_id), by=by)


def recuse(assignment: Assignment, reason: str, *, by: User) -> None:
    """The evaluator steps back; the worker finds a replacement."""
    if assignment.evaluator_id != by.id:
        raise PermissionDenied(_("Only the assigned evaluator can recuse."))
    _lock(assignment.assessment.review)
    if assignment.assessment.review.published_at is not None:
        raise ServiceError(_("The decisions are published; the review can no longer change."))
    if assignment.recused_at is not None:
        raise ServiceError(_("You have already recused from this proposal."))
    if assignment.review is not None:
        raise ServiceError(_("You have already submitted your review of this proposal."))
    if not reason.strip():
        raise ServiceError(_("Give the reason for your recusal."), "reason")
    assignment.recused_at = utcnow()
    assignment.recusal_reason = reason.strip()
    db.session.flush()
    record(
        events.EvaluatorRecused(assignment_id=assignment.id, assessment_id=assignment.assessment_id), by=by
    )


def assign_replacement(assessment: Assessment) -> Assignment | None:
    """The worker, after a recusal: the least-loaded evaluator who is allowed; None if there is none."""
    review = assessment.review
    _lock(review)
    if (
        review.published_at is not None
        or len(assessment.active_assignments) >= review.evaluators_per_proposal
    ):
        return None
    current = loads(review)
    taken = {a.evaluator_id for a in assessment.assignments}
    index = ConflictIndex()
    candidates = [
        e
        for e in evaluators()
        if e.id not in taken
        and current.get(e.id, 0) < review.max_per_evaluator
        and not index.reasons(e, assessment.proposal)
    ]
    if not candidates:
        return None
    chosen = min(candidates, key=lambda e: (current.get(e.id, 0), e.id))
    assignment = Assignment(assessment=assessment, evaluator_id=chosen.id)
    db.session.add(assignment)
    db.session.flush()
    record(events.EvaluatorsAssigned(review_id=review.id, assignment_ids=[assignment.id]))
    return assignment


def settle_recusal(assignment: Assignment) -> Assignment | None:
    """The worker, after a recusal: a replacement if one is allowed, and an event saying so."""
    replacement = assign_replacement(assignment.assessment)
    record(
        events.RecusalSettled(
            assignment_id=assignment.id, replacement_id=replacement.id if replacement else None
        )
    )
    return replacement


# --- scoring --------------------------------------------------------------------------------------------


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
    _lock(review)
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
    _lock(review)
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
