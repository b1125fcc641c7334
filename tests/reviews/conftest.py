"""A closed challenge with two submitted proposals, its review open, and four evaluators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from challenges.accounts.models import Role, User
from challenges.calls import services as calls
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.proposals import services as proposal_services
from challenges.proposals.models import Proposal
from challenges.reviews import assignments, services
from challenges.reviews.models import Assessment, ChallengeReview
from tests.factories import make_challenge, make_org, make_user
from tests.proposals.conftest import content, make_proposal, pdf


@dataclass
class Desk:
    challenge: Challenge
    review: ChallengeReview
    proposals: dict[str, Proposal]  # "sme", "other_sme"
    assessments: dict[str, Assessment]
    evaluators: list[User]

    def reload(self) -> None:
        db.session.expire_all()


CRITERIA = [("Potential", 40), ("Team and capacity", 30), ("Feasibility of implementation", 30)]


@pytest.fixture
def desk(people) -> Desk:
    challenge = make_challenge(people["owner"], ChallengeStatus.published, criteria=CRITERIA)
    proposals = {
        "sme": make_proposal(people["sme"], challenge),
        "other_sme": make_proposal(people["other_sme"], challenge, title="Robotic crack finder"),
    }
    proposal_services.add_attachment(proposals["sme"], "plan.pdf", pdf(), by=people["sme"])
    proposal_services.update_proposal(
        proposals["sme"], content(people["sme"], title="Acoustic crack detection 2"), by=people["sme"]
    )
    proposal_services.submit_proposal(proposals["sme"], by=people["sme"])  # version 2, with the PDF
    make_proposal(
        make_user("draft@drafts.example.com", org=make_org()),
        challenge,
        submit=False,
        title="Never submitted",
    )
    challenge.deadline = utcnow() - timedelta(seconds=1)
    calls.close_challenge(challenge)
    review = services.open_review(challenge)
    evaluators = [people["evaluator"]] + [
        make_user(f"evaluator{i}@independent.example.org", name=f"Evaluator {i}", roles=(Role.evaluator,))
        for i in range(2, 5)
    ]
    db.session.commit()
    by_proposal = {a.proposal_id: a for a in review.assessments}
    return Desk(
        challenge=challenge,
        review=review,
        proposals=proposals,
        assessments={k: by_proposal[p.id] for k, p in proposals.items()},
        evaluators=evaluators,
    )


@pytest.fixture
def assigned(people, desk) -> Desk:
    """The desk with both proposals screened eligible and three evaluators on each."""
    for assessment in desk.assessments.values():
        services.screen_proposal(assessment, eligible=True, reason="", by=people["manager"])
    assignments.assign_automatically(desk.review, by=people["manager"])
    db.session.commit()
    return desk
