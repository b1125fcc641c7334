"""The review's event chain on the ``workflow`` queue, and who hears of it on ``notifications``.

ChallengeClosed → review opened; ReviewSubmitted → completion check → ProposalReviewCompleted →
ChallengeReviewCompleted (managers told); EvaluatorRecused → a replacement; DecisionsPublished →
every applicant and the owner told. Subjects never carry user text.
"""

from __future__ import annotations

from challenges.accounts.models import Role, User
from challenges.accounts.people import people_with_role
from challenges.calls import events as call_events
from challenges.calls.following import owner_members
from challenges.calls.models import Challenge
from challenges.core.bus import NOTIFICATIONS_QUEUE, WORKFLOW_QUEUE, EventBus
from challenges.core.models import Event, must_get
from challenges.extensions import db
from challenges.notifications.services import notify, recipient_for, recipients_for
from challenges.proposals.rules import applicant_team
from challenges.reviews import events, scoring, services
from challenges.reviews.assignments import settle_recusal
from challenges.reviews.models import Assessment, Assignment, ChallengeReview


def _managers() -> list:
    return recipients_for(people_with_role(Role.programme_manager))


# --- workflow ------------------------------------------------------------------------------------


def open_review(e: call_events.ChallengeClosed, record: Event) -> None:
    services.open_review(must_get(Challenge, e.challenge_id))


def check_completion(
    e: events.ReviewSubmitted | events.AssignmentRemoved | events.ProposalScreened, record: Event
) -> None:
    scoring.check_completion(must_get(Assessment, e.assessment_id))


def recheck_assigned(e: events.EvaluatorsAssigned, record: Event) -> None:
    """A new evaluator makes a complete proposal incomplete again."""
    assessments = {
        a.assessment_id for i in e.assignment_ids if (a := db.session.get(Assignment, i)) is not None
    }
    for assessment_id in sorted(assessments):
        scoring.check_completion(must_get(Assessment, assessment_id))


def recheck_recused(e: events.RecusalSettled, record: Event) -> None:
    """A recusal nobody could fill may leave every remaining review in."""
    scoring.check_completion(must_get(Assignment, e.assignment_id).assessment)


def recuse_conflicted(e: events.ConflictDeclared, record: Event) -> None:
    scoring.recuse_conflicted(must_get(User, e.evaluator_id))


def replace_recused(e: events.EvaluatorRecused, record: Event) -> None:
    settle_recusal(must_get(Assignment, e.assignment_id))


# --- mail ------------------------------------------------------------------------------------------


def send_opened(e: events.ReviewOpened, record: Event) -> None:
    review = must_get(ChallengeReview, e.review_id)
    notify(record, "review_opened", _managers(), review=review, challenge=review.challenge)


def send_assigned(e: events.EvaluatorsAssigned, record: Event) -> None:
    """One message per evaluator, listing what they were given."""
    review = must_get(ChallengeReview, e.review_id)
    by_evaluator: dict[User, list[Assignment]] = {}
    for assignment in (must_get(Assignment, i) for i in e.assignment_ids if db.session.get(Assignment, i)):
        by_evaluator.setdefault(assignment.evaluator, []).append(assignment)
    for evaluator, assignments in by_evaluator.items():
        notify(
            record,
            "review_assigned",
            [recipient_for(evaluator)],
            review=review,
            challenge=review.challenge,
            assignments=assignments,
        )


def send_unassigned(e: events.AssignmentRemoved, record: Event) -> None:
    assessment = must_get(Assessment, e.assessment_id)
    notify(
        record,
        "review_unassigned",
        [recipient_for(must_get(User, e.evaluator_id))],
        challenge=assessment.review.challenge,
    )


def send_recused(e: events.RecusalSettled, record: Event) -> None:
    """The evaluator who stepped back hears it is recorded (the replacement hears of the assignment
    like any other); if nobody could take over, the managers hear."""
    assignment = must_get(Assignment, e.assignment_id)
    assessment = assignment.assessment
    replaced = e.replacement_id is not None
    notify(
        record,
        "review_recused",
        [recipient_for(assignment.evaluator)],
        assignment=assignment,
        replaced=replaced,
        challenge=assessment.review.challenge,
    )
    if not replaced:
        notify(
            record,
            "review_unfilled",
            _managers(),
            assessment=assessment,
            challenge=assessment.review.challenge,
        )


def send_completed(e: events.ChallengeReviewCompleted, record: Event) -> None:
    review = must_get(ChallengeReview, e.review_id)
    notify(record, "review_completed", _managers(), review=review, challenge=review.challenge)


def send_decisions(e: events.DecisionsPublished, record: Event) -> None:
    """Each applicant its decision with the evaluators' comments; the owner the ranking, without
    evaluator names."""
    review = must_get(ChallengeReview, e.review_id)
    for assessment in review.assessments:
        proposal = assessment.proposal
        comments = [
            a.review.comment_to_applicant for a in assessment.active_assignments if a.review is not None
        ]
        notify(
            record,
            "decision_applicant",
            recipients_for(applicant_team(proposal)),
            assessment=assessment,
            proposal=proposal,
            challenge=review.challenge,
            comments=comments if assessment.eligible else [],
        )
    notify(
        record,
        "decision_owner",
        recipients_for(owner_members(review.challenge)),
        review=review,
        challenge=review.challenge,
        results=scoring.results(review),
    )


def send_reminders(e: events.ReviewRemindersDue, record: Event) -> None:
    review = must_get(ChallengeReview, e.review_id)
    key = "review_reminder" if e.kind == "three_days" else "review_due_today"
    for evaluator, assignments in services.unfinished_by_evaluator(review).items():
        notify(
            record,
            key,
            [recipient_for(evaluator)],
            review=review,
            challenge=review.challenge,
            assignments=assignments,
        )


def send_ineligible(e: events.ProposalScreened, record: Event) -> None:
    """The team hears at once that its proposal was screened out, with the reason (unless the
    screening has been reversed since)."""
    assessment = must_get(Assessment, e.assessment_id)
    if e.eligible or assessment.eligible is not False:
        return
    notify(
        record,
        "proposal_ineligible",
        recipients_for(applicant_team(assessment.proposal)),
        assessment=assessment,
        proposal=assessment.proposal,
        challenge=assessment.review.challenge,
    )


def register(bus: EventBus) -> None:
    """Subscribe the review handlers."""
    bus.declare(*events.ALL)
    bus.subscribe(call_events.ChallengeClosed, open_review, name="reviews_open_review", queue=WORKFLOW_QUEUE)
    bus.subscribe(
        events.ReviewSubmitted, check_completion, name="reviews_check_completion", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.AssignmentRemoved, check_completion, name="reviews_check_completion", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.ProposalScreened, check_completion, name="reviews_check_completion", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.EvaluatorsAssigned, recheck_assigned, name="reviews_recheck_assigned", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.RecusalSettled, recheck_recused, name="reviews_recheck_recused", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.ConflictDeclared, recuse_conflicted, name="reviews_recuse_conflicted", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(
        events.EvaluatorRecused, replace_recused, name="reviews_replace_recused", queue=WORKFLOW_QUEUE
    )
    bus.subscribe(events.ReviewOpened, send_opened, name="reviews_send_opened", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(
        events.EvaluatorsAssigned, send_assigned, name="reviews_send_assigned", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(events.RecusalSettled, send_recused, name="reviews_send_recused", queue=NOTIFICATIONS_QUEUE)
    bus.subscribe(
        events.ChallengeReviewCompleted,
        send_completed,
        name="reviews_send_completed",
        queue=NOTIFICATIONS_QUEUE,
    )
    bus.subscribe(
        events.DecisionsPublished, send_decisions, name="reviews_send_decisions", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ReviewRemindersDue, send_reminders, name="reviews_send_reminders", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.ProposalScreened, send_ineligible, name="reviews_send_ineligible", queue=NOTIFICATIONS_QUEUE
    )
    bus.subscribe(
        events.AssignmentRemoved, send_unassigned, name="reviews_send_unassigned", queue=NOTIFICATIONS_QUEUE
    )
