"""How the proposals to each challenge were selected: the reviews per proposal, recusals, who was
screened out and why, and the spread of the scores per criterion."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy.orm import selectinload

from challenges.calls.models import Challenge
from challenges.proposals.models import Proposal
from challenges.reports.contents import (
    ChallengeLine,
    ChallengeSelection,
    CriterionScores,
)
from challenges.reports.history import Events, by_id
from challenges.reviews.events import (
    EvaluatorRecused,
    ProposalScreened,
    ReviewOpened,
    ReviewSubmitted,
)
from challenges.reviews.models import Assessment, ChallengeReview, Review


def selection(
    events: Events, lines: dict[int, ChallengeLine], proposals: dict[int, Proposal]
) -> tuple[list[ChallengeSelection], int]:
    """Each challenge's selection (in the order they were published) and how many reviews were written."""
    opened = {e.payload["review_id"] for e in events[ReviewOpened] if e.payload["challenge_id"] in lines}
    reviews = by_id(
        ChallengeReview,
        opened,
        selectinload(ChallengeReview.challenge).selectinload(Challenge.criteria),
        selectinload(ChallengeReview.assessments)
        .selectinload(Assessment.proposal)
        .selectinload(Proposal.organisation),
    )
    assessments = {a.id: a for r in reviews.values() for a in r.assessments}
    screened: dict[int, dict[str, Any]] = {}
    for e in events[ProposalScreened]:
        if e.payload["assessment_id"] in assessments:
            screened[e.payload["assessment_id"]] = e.payload
    review_events = [e for e in events[ReviewSubmitted] if e.payload["assessment_id"] in assessments]
    written = by_id(Review, {e.payload["review_id"] for e in review_events}, selectinload(Review.assignment))
    recused = Counter(
        e.payload["assessment_id"]
        for e in events[EvaluatorRecused]
        if e.payload["assessment_id"] in assessments
    )
    selections = []
    for review in sorted(reviews.values(), key=lambda r: (lines[r.challenge_id].published_at, r.id)):
        mine = [a for a in review.assessments if a.proposal_id in proposals]
        out = _screened_out(mine, screened)
        lines[review.challenge_id].screened_out = len(out)
        mine_reviews = [
            written[e.payload["review_id"]]
            for e in review_events
            if assessments[e.payload["assessment_id"]].review_id == review.id
        ]
        per_proposal = Counter(r.assignment.assessment_id for r in mine_reviews)
        eligible = [a for a in mine if a.id in screened and screened[a.id]["eligible"]]
        selections.append(
            ChallengeSelection(
                challenge=review.challenge,
                reviews_per_proposal=[per_proposal[a.id] for a in eligible],
                recusals=sum(recused[a.id] for a in mine),
                criteria=_scores(review, mine_reviews),
                eligible=len(eligible),
                screened_out=out,
            )
        )
    return selections, len(written)


def _screened_out(mine: list[Assessment], screened: dict[int, dict[str, Any]]) -> list[tuple[Proposal, str]]:
    """The proposals screened out, each with the reason the programme gave."""
    return [
        (a.proposal, screened[a.id].get("reason") or a.ineligible_reason or "")
        for a in mine
        if a.id in screened and not screened[a.id]["eligible"]
    ]


def _scores(review: ChallengeReview, reviews: list[Review]) -> list[CriterionScores]:
    """How often each score from 1 to 7 was given on each of the challenge's criteria, and how often
    a criterion was left as not applicable."""
    criteria = []
    for criterion in review.challenge.criteria:
        given = [r.scores.get(str(criterion.id)) for r in reviews]
        counts = [sum(1 for s in given if s == score) for score in range(1, 8)]
        criteria.append(
            CriterionScores(criterion.name, criterion.weight, counts, sum(1 for s in given if s is None))
        )
    return criteria
