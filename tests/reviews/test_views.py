"""Review pages: who may open what, conflicts enforced in every view and export, the forms."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from challenges.extensions import db
from challenges.reviews import assignments, services
from challenges.reviews.models import Decision, Relation, Review
from tests.reviews.test_workflow import _score


def test_an_evaluator_scores_and_only_then_reads_the_others(people, assigned, make_browser):
    first, second, _third = assigned.assessments["sme"].assignments
    first.evaluator.name = "Agnes Anonymous"
    _score(first, comment="The first evaluator has spoken.")
    db.session.commit()
    b = make_browser(second.evaluator.email)
    page = b.get("/reviews").get_data(as_text=True)
    assert f'href="/reviews/{second.id}"' in page and "To do" in page
    url = f"/reviews/{second.id}"
    page = b.get(url).get_data(as_text=True)
    assert "Acoustic crack detection 2" in page and "Sensors AB" in page  # not blind
    assert "The first evaluator has spoken." not in page and "after you have submitted your own" in page
    c1, c2, c3 = (c.id for c in assigned.challenge.criteria)
    response = b.submit(
        url,
        {
            f"criterion_{c1}": "6",
            f"criterion_{c2}": "na",
            "comment_to_applicant": "Promising, thin on the pilot.",
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Score “Feasibility of implementation” from 1 to 7" in page
    assert "Promising, thin on the pilot." in page  # what was typed stays
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Review)) == 1
    response = b.submit(
        url,
        {
            f"criterion_{c1}": "9",
            f"criterion_{c2}": "na",
            f"criterion_{c3}": "5",
            "comment_to_applicant": "x",
        },
    )
    assert "Scores run from 1 to 7." in response.get_data(as_text=True)
    response = b.submit(
        url,
        {
            f"criterion_{c1}": "6",
            f"criterion_{c2}": "na",
            f"criterion_{c3}": "5",
            "comment_to_applicant": "Promising, thin on the pilot.",
            "comment_to_programme": "Check the budget.",
        },
    )
    assert response.status_code == 303
    page = b.get(url).get_data(as_text=True)
    assert "The first evaluator has spoken." in page and "Evaluator 1" in page
    # The evaluator's own review, as submitted: each criterion's score, both comments.
    assert "Feasibility of implementation (" in page and "6 – Very good" in page and "N/A" in page
    assert "Promising, thin on the pilot." in page and "Check the budget." in page
    assert first.evaluator.name not in page  # other evaluators are not named


def test_blind_review_hides_the_applicant(people, assigned, make_browser):
    assigned.review.blind = True
    db.session.commit()
    assignment = assigned.assessments["sme"].assignments[0]
    page = make_browser(assignment.evaluator.email).get(f"/reviews/{assignment.id}").get_data(as_text=True)
    assert "Blind review" in page
    assert "Sensors AB" not in page and people["sme"].name not in page and "sara@sensors" not in page


WHO = ["assigned", "other_evaluator", "conflicted", "recused", "sme", "owner", "manager", "anonymous"]


@pytest.mark.parametrize("who", WHO)
def test_access_matrix(people, assigned, make_browser, who):
    assessment = assigned.assessments["sme"]
    assignment, conflicted, recused = assessment.assignments
    outsider = next(
        e for e in assigned.evaluators if e.id not in {a.evaluator_id for a in assessment.assignments}
    )
    # A conflict found after assignment closes every door, as does a recusal.
    services.declare_conflict(
        conflicted.evaluator, people["sme"].organisation.org_number, "", Relation.works_for
    )
    assignments.recuse(recused, "A former colleague is on the team.", by=recused.evaluator)
    attachment_id = assigned.proposals["sme"].versions[-1].content["attachments"][0]["id"]
    db.session.commit()
    email = {
        "assigned": assignment.evaluator.email,
        "other_evaluator": outsider.email,
        "conflicted": conflicted.evaluator.email,
        "recused": recused.evaluator.email,
        "sme": "sara@sensors.example.com",
        "owner": "owner@steel.example.com",
        "manager": "manager@agency.example.com",
        "anonymous": None,
    }[who]
    b = make_browser(email)
    mine = {"assigned": assignment, "conflicted": conflicted, "recused": recused}.get(who, assignment)
    got = {
        "review": b.get(f"/reviews/{mine.id}").status_code,
        "attachment": b.get(f"/reviews/{mine.id}/attachments/{attachment_id}").status_code,
        "proposal": b.get(f"/proposals/{assessment.proposal_id}").status_code,
        "desk": b.get(f"/challenges/{assigned.challenge.id}/review").status_code,
        "csv": b.get(f"/challenges/{assigned.challenge.id}/review/ranking.csv").status_code,
    }
    expected = {
        "assigned": {"review": 200, "attachment": 200, "proposal": 404, "desk": 403, "csv": 403},
        "other_evaluator": {"review": 404, "attachment": 404, "proposal": 404, "desk": 403, "csv": 403},
        "conflicted": {"review": 404, "attachment": 404, "proposal": 404, "desk": 403, "csv": 403},
        "recused": {"review": 404, "attachment": 404, "proposal": 404, "desk": 403, "csv": 403},
        "sme": {"review": 403, "attachment": 403, "proposal": 200, "desk": 403, "csv": 403},
        "owner": {"review": 403, "attachment": 403, "proposal": 200, "desk": 403, "csv": 403},
        "manager": {"review": 403, "attachment": 403, "proposal": 200, "desk": 200, "csv": 200},
        "anonymous": {"review": 302, "attachment": 302, "proposal": 302, "desk": 302, "csv": 302},
    }[who]
    assert got == expected
    if who in ("conflicted", "recused", "other_evaluator"):  # nor does their list show the proposal's title
        assert "Acoustic crack detection" not in b.get("/reviews").get_data(as_text=True)


def test_the_desk_refuses_bad_input_with_messages(people, assigned, make_browser):
    manager = make_browser("manager@agency.example.com")
    a = assigned.assessments["other_sme"]
    desk_url = f"/challenges/{assigned.challenge.id}/review"
    token = manager.csrf(desk_url)
    tokens = {f"a{a.id}-{form}-csrf_token": token for form in ("screen", "assign", "decide")}
    page = manager.submit(
        f"/review/assessments/{a.id}/screen",
        {f"a{a.id}-screen-eligible": "no", f"a{a.id}-screen-reason": "Too big.", **tokens},
        page_url=desk_url,
    ).get_data(as_text=True)
    assert "Remove the evaluators from this proposal before marking it ineligible." in page
    page = manager.submit(
        f"/review/assessments/{a.id}/decide",
        {f"a{a.id}-decide-decision": "recommend", f"a{a.id}-decide-reason": "Strong.", **tokens},
        page_url=desk_url,
    ).get_data(as_text=True)
    assert "Not every review of this proposal is in." in page
    conflicted = assigned.evaluators[0]
    services.declare_conflict(conflicted, people["other_sme"].organisation.org_number, "", Relation.owns)
    for x in list(a.assignments):
        if x.evaluator_id == conflicted.id:
            assignments.unassign(x, by=people["manager"])
    db.session.commit()
    page = manager.submit(
        f"/review/assessments/{a.id}/assign",
        {f"a{a.id}-assign-evaluator": str(conflicted.id), **tokens},
        page_url=desk_url,
    ).get_data(as_text=True)
    assert "has a conflict of interest" in page and "Write why the assignment is justified" in page
    assert conflicted.id not in {
        x.evaluator_id
        for x in db.session.scalars(
            sa.select(type(a.assignments[0])).where(type(a.assignments[0]).assessment_id == a.id)
        )
    }
    page = manager.get(desk_url).get_data(as_text=True)
    assert "conflict: declared relation with" in page  # the evaluator list says who is conflicted


def test_the_ranking_export_neutralises_formulas(people, assigned, make_browser):
    proposal = assigned.proposals["other_sme"]
    proposal.versions[-1].content = {**proposal.versions[-1].content}
    proposal.title = '=HYPERLINK("http://evil")'
    db.session.commit()
    body = (
        make_browser("manager@agency.example.com")
        .get(f"/challenges/{assigned.challenge.id}/review/ranking.csv")
        .get_data(as_text=True)
    )
    assert "'=HYPERLINK" in body and "\n=HYPERLINK" not in body and ",=HYPERLINK" not in body


def test_the_applicant_reads_its_screening_and_then_its_decision(people, desk, make_browser, drain):
    manager = people["manager"]
    services.screen_proposal(
        desk.assessments["other_sme"], eligible=False, reason="The company has 400 staff.", by=manager
    )
    services.screen_proposal(desk.assessments["sme"], eligible=True, reason="", by=manager)
    assignments.assign_automatically(desk.review, by=manager)
    for assignment in desk.assessments["sme"].assignments:
        _score(assignment, comment="Convincing acoustics.")
    db.session.commit()
    drain()
    jonas = make_browser("jonas@robots.example.com")
    assert "The company has 400 staff." in jonas.get(f"/proposals/{desk.proposals['other_sme'].id}").get_data(
        as_text=True
    )
    sara = make_browser("sara@sensors.example.com")
    url = f"/proposals/{desk.proposals['sme'].id}"
    services.decide_proposal(desk.assessments["sme"], Decision.recommend, "The best fit.", by=manager)
    db.session.commit()
    before = sara.get(url).get_data(as_text=True)  # decided, not yet published: neither reason nor comments
    assert "The best fit." not in before and "Convincing acoustics." not in before
    from challenges.reviews.views import review_outcome  # what any door shows the applicant

    assert review_outcome(desk.proposals["sme"]) == {
        "ineligible_reason": None,
        "decision": None,
        "reason": None,
        "comments": [],
    }
    services.publish_decisions(desk.review, by=manager)
    db.session.commit()
    page = sara.get(url).get_data(as_text=True)
    assert "Recommended for funding" in page and "The best fit." in page and "Convincing acoustics." in page


def test_review_settings_take_a_decimal_comma_and_refuse_nonsense(people, desk, make_browser):
    manager = make_browser("manager@agency.example.com")
    url = f"/challenges/{desk.challenge.id}/review/settings"
    page_url = f"/challenges/{desk.challenge.id}/review"
    data = {
        "deadline_date": "2030-01-15",
        "deadline_time": "12:00",
        "evaluators_per_proposal": "2",
        "max_per_evaluator": "5",
        "disagreement": "1,5",
        "blind": "y",
    }
    assert manager.submit(url, data, page_url=page_url).status_code == 303
    db.session.expire_all()
    assert (desk.review.evaluators_per_proposal, desk.review.disagreement_tenths, desk.review.blind) == (
        2,
        15,
        True,
    )
    page = manager.submit(
        url, {**data, "evaluators_per_proposal": "11", "disagreement": "many"}, page_url=page_url
    ).get_data(as_text=True)
    assert "Enter a number of evaluators from 1 to 10." in page
    db.session.expire_all()
    assert desk.review.evaluators_per_proposal == 2


def test_blind_review_hides_partners_and_file_names(people, assigned, make_browser):
    assigned.review.blind = True
    db.session.commit()
    assignment = assigned.assessments["sme"].assignments[0]
    b = make_browser(assignment.evaluator.email)
    page = b.get(f"/reviews/{assignment.id}").get_data(as_text=True)
    assert "Luleå University of Technology" not in page and "plan.pdf" not in page and "Attachment 1" in page
    attachment_id = assigned.proposals["sme"].versions[-1].content["attachments"][0]["id"]
    response = b.get(f"/reviews/{assignment.id}/attachments/{attachment_id}")
    assert response.status_code == 200 and "attachment-1.pdf" in response.headers["Content-Disposition"]


def test_odd_scores_and_thresholds_get_messages(people, assigned, make_browser):
    assignment = assigned.assessments["sme"].assignments[0]
    b = make_browser(assignment.evaluator.email)
    c1, c2, c3 = (c.id for c in assigned.challenge.criteria)
    response = b.submit(
        f"/reviews/{assignment.id}",
        {
            f"criterion_{c1}": "²",
            f"criterion_{c2}": "99999999",
            f"criterion_{c3}": "5",
            "comment_to_applicant": "x",
        },
    )
    assert response.status_code == 200 and "Scores run from 1 to 7." in response.get_data(as_text=True)
    manager = make_browser("manager@agency.example.com")
    response = manager.submit(
        f"/challenges/{assigned.challenge.id}/review/settings",
        {
            "deadline_date": "2030-01-15",
            "deadline_time": "12:00",
            "evaluators_per_proposal": "3",
            "max_per_evaluator": "5",
            "disagreement": "sNaN",
        },
        page_url=f"/challenges/{assigned.challenge.id}/review",
    )
    assert response.status_code == 200 and "Enter a threshold from 0.1 to 6 points." in response.get_data(
        as_text=True
    )


def _review_with(people, n: int):
    """A closed challenge with *n* screened proposals, each assigned to every evaluator."""
    from datetime import timedelta

    from challenges.accounts.models import OrganisationKind
    from challenges.calls import services as calls
    from challenges.calls.models import ChallengeStatus
    from challenges.core.models import utcnow
    from tests.factories import make_challenge, make_org, make_user
    from tests.proposals.conftest import make_proposal

    challenge = make_challenge(people["owner"], ChallengeStatus.published)
    for i in range(n):
        make_proposal(
            make_user(
                f"lead{i}-{challenge.id}@sme{i}-{challenge.id}.example.com",
                org=make_org(OrganisationKind.sme),
            ),
            challenge,
        )
    challenge.deadline = utcnow() - timedelta(seconds=1)
    calls.close_challenge(challenge)
    review = services.open_review(challenge)
    review.evaluators_per_proposal = 1
    for a in review.assessments:
        services.screen_proposal(a, eligible=True, reason="", by=people["manager"])
        assignments.assign_by_hand(a, people["evaluator"], justification="", by=people["manager"])
    db.session.commit()
    return challenge


def test_the_desk_and_the_evaluators_list_cost_the_same_with_more_proposals(people, make_browser):
    from tests.calls.test_catalogue import counting_queries

    manager, eva = make_browser("manager@agency.example.com"), make_browser("eva@evaluators.example.com")
    counts = {}
    for n in (1, 4):
        challenge = _review_with(people, n)
        with counting_queries() as desk_sql:
            assert manager.get(f"/challenges/{challenge.id}/review").status_code == 200
        with counting_queries() as list_sql:
            page = eva.get("/reviews").get_data(as_text=True)
        counts[n] = (len(desk_sql), len(list_sql))
        assert page.count("To do") == (1 if n == 1 else 5)
    assert counts[1] == counts[4]


def test_the_review_page_lists_the_criteria_in_the_challenges_order(people, assigned, make_browser):
    criteria = assigned.challenge.criteria
    for offset in (100, 0):  # positions are unique per challenge: move them out of the way first
        for position, criterion in enumerate(reversed(criteria)):  # the last written comes first
            criterion.position = offset + position
        db.session.flush()
    db.session.commit()
    names = [c.name for c in sorted(criteria, key=lambda c: c.position)]
    assignment = assigned.assessments["sme"].assignments[0]
    page = make_browser(assignment.evaluator.email).get(f"/reviews/{assignment.id}").get_data(as_text=True)
    assert names != sorted(names, key=[c.name for c in criteria].index)  # not the order they were made in
    assert sorted(names, key=page.index) == names


@pytest.mark.parametrize(
    "tie", ["colleague_at_applicant", "colleague_at_owner", "member_of_applicant", "none"]
)
def test_a_tie_found_after_assignment_closes_the_review_page(people, assigned, make_browser, tie):
    """The page reads the conflict rules' data in its own statement: each rule still closes it."""
    from challenges.accounts.models import Membership, MembershipState
    from tests.factories import make_user

    assignment = assigned.assessments["sme"].assignments[0]
    evaluator = assignment.evaluator
    domain = evaluator.email.rsplit("@", 1)[1]
    applicant, owner = people["sme"].organisation, assigned.challenge.organisation
    if tie == "colleague_at_applicant":
        make_user(f"colleague@{domain}", org=applicant)
    elif tie == "colleague_at_owner":
        make_user(f"colleague@{domain}", org=owner)
    elif tie == "member_of_applicant":
        db.session.add(
            Membership(user_id=evaluator.id, organisation_id=applicant.id, state=MembershipState.approved)
        )
    else:  # a public mail domain says nothing, even shared with the applicant's people
        evaluator.email = "an.evaluator@gmail.com"
        make_user("colleague@gmail.com", org=applicant)
    db.session.commit()
    status = make_browser(evaluator.email).get(f"/reviews/{assignment.id}").status_code
    assert status == (200 if tie == "none" else 404)
