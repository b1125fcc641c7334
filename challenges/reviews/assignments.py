"""Who reviews what: the evaluators, assignment (automatic, by hand, undone), recusal and its
replacement, each change to one review serialised by its lock."""

from __future__ import annotations

import sqlalchemy as sa
from flask_babel import gettext as _

from challenges.accounts.models import Role, User, UserRole
from challenges.accounts.permissions import require_manager
from challenges.core.errors import PermissionDenied, ServiceError
from challenges.core.events import record
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.reviews import assign, events
from challenges.reviews.conflicts import ConflictIndex, conflict_reasons
from challenges.reviews.models import (
    Assessment,
    Assignment,
    ChallengeReview,
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


def lock_review(review: ChallengeReview) -> None:
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
    lock_review(review)
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
    lock_review(assessment.review)
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
    lock_review(assignment.assessment.review)
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
    lock_review(assignment.assessment.review)
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
    lock_review(review)
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
