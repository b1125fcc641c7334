"""The review from the close to the published decisions, through the services and a real worker."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
import sqlalchemy as sa

from challenges.accounts.models import Role
from challenges.calls import jobs as call_jobs
from challenges.calls import services as calls
from challenges.calls.models import ChallengeStatus
from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.formatting import from_local, to_local
from challenges.core.models import Event, utcnow
from challenges.core.sweeper import sweep_events
from challenges.extensions import db
from challenges.notifications.models import MailMessage
from challenges.reviews import assignments, conflicts, scoring, services
from challenges.reviews import jobs as review_jobs
from challenges.reviews.models import Assignment, Decision, Relation, ReminderSent, Review
from tests.factories import make_challenge, make_user
from tests.proposals.conftest import make_proposal


def _events(name: str) -> list[Event]:
    return list(db.session.scalars(sa.select(Event).where(Event.type == name).order_by(Event.occurred_at)))


def _screen_all(desk, manager) -> None:
    for a in desk.assessments.values():
        services.screen_proposal(a, eligible=True, reason="", by=manager)


def _score(assignment: Assignment, values=(6, 5, 4), comment="Solid work.", private=""):
    criteria = assignment.assessment.review.challenge.criteria
    return scoring.submit_review(
        assignment,
        dict(zip([c.id for c in criteria], values, strict=True)),
        comment,
        private,
        by=assignment.evaluator,
    )


def test_the_worker_opens_the_review_when_the_challenge_closes(people, drain, smtp):
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    make_proposal(people["sme"], challenge)
    make_proposal(people["other_sme"], challenge, submit=False)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    db.session.commit()
    drain()
    smtp.reset()
    assert call_jobs.close_due_challenges() == 1
    drain()
    db.session.expire_all()
    review = services.review_of(challenge)
    assert review is not None and [a.proposal.title for a in review.assessments] == [
        "Acoustic crack detection"
    ]
    assert challenge.status is ChallengeStatus.in_review
    assert review.review_deadline == challenge.closed_at + services.REVIEW_PERIOD
    opened = [m for m in smtp.messages if m["Subject"] == "A challenge has closed: its review is open"]
    assert sorted(m["To"] for m in opened) == [
        "factory-manager@agency.example.com",
        "manager@agency.example.com",
    ]
    services.open_review(challenge)  # a re-delivery changes nothing
    assert len(_events("ReviewOpened")) == 1


# --- conflicts of interest ---------------------------------------------------------------------------------


def test_conflicts_are_declared_or_derived(people, desk):
    eva, sme_proposal = people["evaluator"], desk.proposals["sme"]
    assert conflicts.conflict_reasons(eva, sme_proposal) == []
    services.declare_conflict(eva, people["sme"].organisation.org_number, "", Relation.advises)
    assert conflicts.conflict_reasons(eva, sme_proposal) == ["declared relation with Sensors AB"]
    with pytest.raises(ServiceError, match="already declared"):
        services.declare_conflict(eva, people["sme"].organisation.org_number, "", Relation.owns)
    # The same email domain as the challenge owner's people: a conflict with both proposals.
    insider = make_user("insider@steel.example.com", name="Insider", roles=(Role.evaluator,))
    assert any(
        "steel.example.com" in r for r in conflicts.conflict_reasons(insider, desk.proposals["other_sme"])
    )
    # A member of the SME itself.
    member = make_user("member@elsewhere.example.net", org=people["sme"].organisation)
    assert "member of Sensors AB" in conflicts.conflict_reasons(member, sme_proposal)
    # A public mail domain says nothing.
    public = make_user("someone@gmail.com")
    make_user("founder@gmail.com", org=people["sme"].organisation)
    assert conflicts.conflict_reasons(public, sme_proposal) == []
    with pytest.raises(PermissionDenied):
        services.declare_conflict(people["sme"], "556016-0680", "Volvo", Relation.works_for)


def test_an_evaluators_conflict_index_reads_only_that_evaluator_and_the_parties(people, desk):
    """A page for one evaluator reads that evaluator's declarations and the parties' members, no one else's."""
    eva, sme_proposal = people["evaluator"], desk.proposals["sme"]
    other = make_user("other@evaluators.example.com", roles=(Role.evaluator,))
    services.declare_conflict(eva, people["sme"].organisation.org_number, "", Relation.advises)
    services.declare_conflict(other, people["other_sme"].organisation.org_number, "", Relation.owns)
    index = conflicts.ConflictIndex.of(eva, [sme_proposal])
    assert index.declared == {eva.id: {people["sme"].organisation.org_number}}
    parties = {sme_proposal.organisation_id, sme_proposal.challenge.organisation_id}
    assert set(index.domains) == parties
    assert index.reasons(eva, sme_proposal) == ["declared relation with Sensors AB"]
    everyone = conflicts.ConflictIndex()
    assert set(everyone.declared) == {eva.id, other.id} and set(everyone.domains) > parties


# --- assignment ---------------------------------------------------------------------------------------------


def test_assignment_needs_screening_and_never_assigns_a_conflict(people, desk):
    manager = people["manager"]
    with pytest.raises(ServiceError, match="Screen every proposal first: 2 not screened"):
        assignments.assign_automatically(desk.review, by=manager)
    _screen_all(desk, manager)
    eva = people["evaluator"]
    services.declare_conflict(eva, people["sme"].organisation.org_number, "", Relation.works_for)
    created = assignments.assign_automatically(desk.review, by=manager)
    assert len(created) == 6
    sme_evaluators = {a.evaluator_id for a in desk.assessments["sme"].assignments}
    assert eva.id not in sme_evaluators and len(sme_evaluators) == 3
    assert sorted(assignments.loads(desk.review).values()) == [1, 1, 2, 2]
    assert _events("EvaluatorsAssigned")[0].payload["assignment_ids"] == [a.id for a in created]
    assert assignments.assign_automatically(desk.review, by=manager) == []  # everything is covered


def test_an_infeasible_assignment_says_why_and_assigns_nothing(people, desk):
    manager = people["manager"]
    _screen_all(desk, manager)
    for e in desk.evaluators[1:]:
        services.declare_conflict(e, people["other_sme"].organisation.org_number, "", Relation.contracts)
    db.session.commit()
    with pytest.raises(ServiceError) as caught:
        assignments.assign_automatically(desk.review, by=manager)
    assert (
        "Too few evaluators without conflicts for “Robotic crack finder”: 3 more needed, 1 available"
        in caught.value.message
    )
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Assignment)) == 0


def test_by_hand_a_conflict_needs_a_justification(people, desk):
    manager, eva = people["manager"], people["evaluator"]
    _screen_all(desk, manager)
    services.declare_conflict(eva, people["sme"].organisation.org_number, "", Relation.owns)
    with pytest.raises(ServiceError, match="conflict of interest .declared relation with Sensors AB."):
        assignments.assign_by_hand(desk.assessments["sme"], eva, justification="", by=manager)
    assignment = assignments.assign_by_hand(
        desk.assessments["sme"], eva, justification="The only expert in acoustics", by=manager
    )
    assert assignment.override_justification == "The only expert in acoustics"
    assert scoring.can_review(assignment, eva)  # the override is what lets them read it
    with pytest.raises(ServiceError, match="already assigned"):
        assignments.assign_by_hand(desk.assessments["sme"], eva, justification="x", by=manager)


def test_screened_out_proposals_get_no_evaluators_and_the_reason_is_kept(people, desk):
    manager = people["manager"]
    with pytest.raises(ServiceError, match="reason the applicant will read"):
        services.screen_proposal(desk.assessments["other_sme"], eligible=False, reason=" ", by=manager)
    services.screen_proposal(
        desk.assessments["other_sme"], eligible=False, reason="Not a Swedish SME.", by=manager
    )
    services.screen_proposal(desk.assessments["sme"], eligible=True, reason="", by=manager)
    assignments.assign_automatically(desk.review, by=manager)
    assert desk.assessments["other_sme"].assignments == []
    assert len(desk.assessments["sme"].assignments) == 3


# --- scoring ------------------------------------------------------------------------------------------------


def test_bad_scores_are_refused_and_change_nothing(people, assigned):
    assignment = assigned.assessments["sme"].assignments[0]
    c1, c2, c3 = (c.id for c in assigned.challenge.criteria)
    for scores, field in (
        ({c1: 8, c2: 5, c3: 5}, f"criterion_{c1}"),
        ({c1: 0, c2: 5, c3: 5}, f"criterion_{c1}"),
        ({c1: 5, c2: 5}, f"criterion_{c3}"),
    ):
        with pytest.raises(InvalidInput) as caught:
            scoring.submit_review(assignment, scores, "Fine", "", by=assignment.evaluator)
        assert field in caught.value.errors
        db.session.rollback()
    with pytest.raises(InvalidInput) as caught:
        scoring.submit_review(assignment, {c1: 5, c2: None, c3: 5}, " ", "", by=assignment.evaluator)
    assert set(caught.value.errors) == {"comment_to_applicant"}
    db.session.rollback()
    outsider = next(
        e
        for e in assigned.evaluators
        if e.id not in {a.evaluator_id for a in assigned.assessments["sme"].assignments}
    )
    with pytest.raises(PermissionDenied):
        scoring.submit_review(assignment, {c1: 5, c2: 5, c3: 5}, "Fine", "", by=outsider)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Review)) == 0


def test_no_review_after_a_recusal_and_a_replacement_is_found(people, assigned, drain, smtp):
    assessment = assigned.assessments["sme"]
    assignment = assessment.assignments[0]
    evaluator = assignment.evaluator
    with pytest.raises(ServiceError, match="Give the reason"):
        assignments.recuse(assignment, "  ", by=evaluator)
    drain()
    smtp.reset()
    assignments.recuse(assignment, "I advised the applicant last year.", by=evaluator)
    db.session.commit()
    with pytest.raises(PermissionDenied):
        _score(assignment)
    db.session.rollback()
    drain()
    db.session.expire_all()
    active = assessment.active_assignments
    assert len(active) == 3 and evaluator.id not in {a.evaluator_id for a in active}
    replacement = next(a for a in active if a.id not in {x.id for x in assessment.assignments[:3]})
    subjects = {(m["To"], m["Subject"]) for m in smtp.messages}
    assert (evaluator.email, "Your recusal is recorded") in subjects
    assert (replacement.evaluator.email, "You have proposals to review") in subjects


def test_others_reviews_only_after_ones_own(people, assigned):
    first, second, _third = assigned.assessments["sme"].assignments
    _score(first, comment="First view.")
    assert services.others_reviews(scoring.review_sheet(second.id)) == []
    _score(second, comment="Second view.")
    others = services.others_reviews(scoring.review_sheet(second.id))
    assert [r.comment_to_applicant for r in others] == ["First view."]


def test_the_event_chain_runs_to_the_end_on_the_worker(people, assigned, drain, smtp):
    drain()
    smtp.reset()
    for key in ("sme", "other_sme"):
        for assignment in assigned.assessments[key].assignments:
            _score(assignment)
        db.session.commit()
        drain()
    db.session.expire_all()
    assert [e.payload["assessment_id"] for e in _events("ProposalReviewCompleted")] == [
        assigned.assessments["sme"].id,
        assigned.assessments["other_sme"].id,
    ]
    assert len(_events("ChallengeReviewCompleted")) == 1
    assert assigned.review.completed_at is not None
    told = [m["To"] for m in smtp.messages if m["Subject"] == "Every review of a challenge is in"]
    assert sorted(told) == ["factory-manager@agency.example.com", "manager@agency.example.com"]


# --- aggregation ---------------------------------------------------------------------------------------------


def test_weights_and_n_a(people, assigned):
    c1, c2, c3 = assigned.challenge.criteria  # weights 40, 30, 30
    weights = {c.id: c.weight for c in (c1, c2, c3)}
    assert scoring.weighted_score({str(c1.id): 7, str(c2.id): None, str(c3.id): 4}, weights) == pytest.approx(
        (40 * 7 + 30 * 4) / 70
    )  # N/A is left out, not a zero
    assert scoring.weighted_score({str(c1.id): None, str(c2.id): None, str(c3.id): None}, weights) is None
    a, b, c = assigned.assessments["sme"].assignments
    _score(a, (7, 7, 7))
    _score(b, (7, None, 7))
    _score(c, (6, 6, 6))
    for assignment in assigned.assessments["other_sme"].assignments:
        _score(assignment, (5, 5, 5))
    assigned.review.disagreement_tenths = 5  # flag a spread above half a point
    results = {r.assessment.proposal.id: r for r in scoring.results(assigned.review)}
    sme = results[assigned.proposals["sme"].id]
    assert sme.scores == [7, 7, 6] and sme.mean == pytest.approx(20 / 3) and sme.median == 7
    assert sme.spread == 1 and sme.disagreement and sme.complete
    other = results[assigned.proposals["other_sme"].id]
    assert other.mean == 5 and other.spread == 0 and not other.disagreement
    assert [r.assessment.proposal.id for r in scoring.results(assigned.review)] == [
        assigned.proposals["sme"].id,
        assigned.proposals["other_sme"].id,
    ]  # the ranking, best first
    assert sme.calibrated is None  # calibration is off
    assigned.review.calibration = True
    calibrated = {r.assessment.proposal.id: r.calibrated for r in scoring.results(assigned.review)}
    # Two evaluators reviewed both: each rated this one above the other, so +1 and -1 standard deviation.
    assert calibrated[assigned.proposals["sme"].id] == pytest.approx(1.0)
    assert calibrated[assigned.proposals["other_sme"].id] == pytest.approx(-1.0)


# --- decisions ----------------------------------------------------------------------------------------------


def test_decide_before_every_review_needs_an_override_then_publish(people, assigned, drain, smtp):
    manager = people["manager"]
    sme_a, other_a = assigned.assessments["sme"], assigned.assessments["other_sme"]
    for assignment in sme_a.assignments:
        _score(
            assignment,
            comment=f"Comment by {assignment.evaluator.name}",
            private="Keep an eye on the budget.",
        )
    db.session.commit()
    drain()
    db.session.expire_all()
    with pytest.raises(InvalidInput) as caught:
        services.decide_proposal(other_a, Decision.reject, "Weaker plan.", by=manager)
    assert set(caught.value.errors) == {"override"}
    db.session.rollback()
    with pytest.raises(ServiceError, match="not decided"):
        services.publish_decisions(assigned.review, by=manager)
    services.decide_proposal(sme_a, Decision.recommend, "Best fit to the challenge.", by=manager)
    services.decide_proposal(
        other_a, Decision.reject, "Weaker plan.", override="The evaluators are away.", by=manager
    )
    assert other_a.decision_override == "The evaluators are away."
    with pytest.raises(PermissionDenied):
        services.publish_decisions(assigned.review, by=people["owner"])
    services.publish_decisions(assigned.review, by=manager)
    db.session.commit()
    assert assigned.challenge.status is ChallengeStatus.decided
    with pytest.raises(ServiceError, match="published"):
        services.decide_proposal(sme_a, Decision.reject, "Changed my mind", by=manager)
    db.session.rollback()
    drain()
    smtp.reset()
    drain()
    assert smtp.messages == []  # once only
    bodies = {
        m.recipient: m.body_text
        for m in db.session.scalars(
            sa.select(MailMessage).where(MailMessage.notice.in_(["decision_applicant", "decision_owner"]))
        )
    }
    sara = bodies["sara@sensors.example.com"]
    assert "Recommended for funding" in sara and "Best fit to the challenge." in sara
    assert "Comment by" in sara and "Keep an eye on the budget." not in sara  # private comments stay private
    jonas = bodies["jonas@robots.example.com"]
    assert "Not recommended" in jonas and "Weaker plan." in jonas
    owner = bodies["owner@steel.example.com"]
    assert "1. Acoustic crack detection 2 · Sensors AB · 5.10" in owner
    assert all(e.name not in owner for e in assigned.evaluators)  # no evaluator names


# --- reminders ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("clock", [time(0, 2), time(12, 0), time(23, 58)])  # the rounds go by Stockholm days
def test_reminders_three_days_before_and_on_the_day_once_each(
    app, people, assigned, drain, smtp, redis_server, monkeypatch, clock
):
    review = assigned.review
    review.review_deadline = from_local(to_local(utcnow()).date() + timedelta(days=10), clock)
    loads = assignments.loads(review)
    done = next(
        a
        for key in ("sme", "other_sme")
        for a in assigned.assessments[key].assignments
        if loads[a.evaluator_id] == 1
    )
    _score(done)
    db.session.commit()
    drain()
    smtp.reset()
    deadline = review.review_deadline
    deadline_day = to_local(deadline).date()
    assert review_jobs.send_due_reminders(now=from_local(deadline_day - timedelta(days=5), time(12))) == 0
    three_days = from_local(deadline_day - timedelta(days=3), time(12))
    assert review_jobs.send_due_reminders(now=three_days) == 1
    assert review_jobs.send_due_reminders(now=three_days + timedelta(hours=1)) == 0  # once
    redis_server.stop()
    redis_server.start()  # Redis forgets the queued mail job; the database still knows it is pending
    monkeypatch.setitem(app.config, "EVENT_LEASE_SECONDS", 0)
    assert sweep_events() >= 1
    drain()
    reminded = sorted(
        m["To"] for m in smtp.messages if m["Subject"] == "Reminder: your reviews are due in three days"
    )
    assert reminded == sorted(e.email for e in services.unfinished_by_evaluator(review))
    assert done.evaluator.email not in reminded and len(reminded) == 3
    on_the_day = max(deadline - timedelta(minutes=5), from_local(deadline_day, time(0)))
    assert review_jobs.send_due_reminders(now=on_the_day) == 1
    assert review_jobs.send_due_reminders(now=deadline + timedelta(minutes=5)) == 0  # too late for anything
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ReminderSent)) == 2


def test_evaluators_from_the_owner_side_are_never_assigned(people):
    owner_org = people["owner"].organisation
    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    make_proposal(people["sme"], challenge)
    challenge.deadline = utcnow() - timedelta(seconds=1)
    calls.close_challenge(challenge)
    review = services.open_review(challenge)
    review.evaluators_per_proposal = 1
    make_user("expert@steel.example.com", roles=(Role.evaluator,))  # the owner's domain
    make_user("inside@x.example.org", roles=(Role.evaluator,), org=owner_org)  # a member of the owner
    services.screen_proposal(review.assessments[0], eligible=True, reason="", by=people["manager"])
    created = assignments.assign_automatically(review, by=people["manager"])
    assert [a.evaluator.email for a in created] == ["eva@evaluators.example.com"]


# --- what the review of the review found ------------------------------------------------------------------


def test_completion_follows_recusals_and_new_evaluators(people, assigned, drain):
    assessment = assigned.assessments["sme"]
    first, second, third = assessment.assignments
    _score(first)
    _score(second)
    db.session.commit()
    for e in assigned.evaluators:  # nobody else may take the third one's place
        if e.id not in {first.evaluator_id, second.evaluator_id, third.evaluator_id}:
            services.declare_conflict(e, people["sme"].organisation.org_number, "", Relation.owns)
    assignments.recuse(third, "I know the founder.", by=third.evaluator)
    db.session.commit()
    drain()
    db.session.expire_all()
    assert assessment.completed_at is not None  # every non-recused review is in
    assert scoring.is_complete(assessment)
    newcomer = make_user("late@independent.example.org", roles=(Role.evaluator,))
    assignments.assign_by_hand(assessment, newcomer, justification="", by=people["manager"])
    db.session.commit()
    drain()
    db.session.expire_all()
    assert assessment.completed_at is None and not scoring.is_complete(assessment)
    with pytest.raises(InvalidInput):
        services.decide_proposal(assessment, Decision.recommend, "Good.", by=people["manager"])


def test_a_conflict_declared_after_assignment_steps_the_evaluator_back(people, assigned, drain, smtp):
    assignment = assigned.assessments["sme"].assignments[0]
    evaluator = assignment.evaluator
    services.declare_conflict(evaluator, people["sme"].organisation.org_number, "", Relation.advises)
    db.session.commit()
    drain()
    db.session.expire_all()
    assert assignment.recused_at is not None and assignment.recusal_reason == "Conflict of interest declared"
    assert evaluator.id not in {a.evaluator_id for a in assigned.assessments["sme"].active_assignments}
    assert len(assigned.assessments["sme"].active_assignments) == 3  # a replacement was found
    unfinished = services.unfinished_by_evaluator(assigned.review)
    assert all(a.id != assignment.id for mine in unfinished.values() for a in mine)  # no reminders for it


def test_no_recusal_after_publication_and_recusals_stay_on_record(people, assigned):
    manager = people["manager"]
    first, second, third = assigned.assessments["sme"].assignments
    assignments.recuse(third, "Too close to the team.", by=third.evaluator)
    with pytest.raises(ServiceError, match="recusal stays on record"):
        assignments.unassign(third, by=manager)
    for a in assigned.assessments.values():
        services.decide_proposal(a, Decision.reject, "Not this time.", override="Deadline.", by=manager)
    services.publish_decisions(assigned.review, by=manager)
    with pytest.raises(ServiceError, match="published"):
        assignments.recuse(first, "Too late.", by=first.evaluator)


def test_hand_assignments_above_the_maximum_do_not_block_the_assigner(people, desk):
    manager = people["manager"]
    _screen_all(desk, manager)
    desk.review.evaluators_per_proposal = 1
    e0, e1 = desk.evaluators[:2]
    assignments.assign_by_hand(desk.assessments["sme"], e0, justification="", by=manager)
    assignments.assign_by_hand(desk.assessments["sme"], e1, justification="", by=manager)
    desk.review.max_per_evaluator = 1
    created = assignments.assign_automatically(desk.review, by=manager)
    assert [a.evaluator_id for a in created] not in ([e0.id], [e1.id]) and len(created) == 1


def _three_days_before(deadline):
    """Noon in Stockholm three calendar days before *deadline*'s day: the reminders go by Stockholm
    days, and "deadline - 72 hours" is another day when a clock change falls in between."""
    return from_local(to_local(deadline).date() - timedelta(days=3), time(12))


def test_a_moved_deadline_gets_its_own_reminders(people, assigned):
    review = assigned.review
    first = review.review_deadline
    assert review_jobs.send_due_reminders(now=_three_days_before(first)) == 1
    review.review_deadline = first + timedelta(days=7)
    db.session.commit()
    assert review_jobs.send_due_reminders(now=_three_days_before(review.review_deadline)) == 1


def test_a_shared_domain_names_the_party_and_the_domain(people, desk):
    insider = make_user("insider@steel.example.com", name="Insider", roles=(Role.evaluator,))
    assert conflicts.conflict_reasons(insider, desk.proposals["sme"]) == [
        "same email domain as Steel Works AB (steel.example.com)"
    ]


def test_a_party_with_no_members_read_is_no_conflict_and_no_error(people, desk):
    """An index read from a page's own rows may hold nothing about a party: that says no tie."""
    eva, proposal = people["evaluator"], desk.proposals["sme"]
    assert conflicts.ConflictIndex(rows=[]).reasons(eva, proposal) == []


def test_an_index_narrowed_to_evaluators_needs_their_organisations_too():
    with pytest.raises(ValueError, match="^narrow to evaluators and organisations together$"):
        conflicts.ConflictIndex([1])
