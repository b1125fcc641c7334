"""The catalogue: every message the platform sends, the event behind it, who gets it, and its template.

One row per notice. A handler sends a notice with :func:`challenges.notifications.services.notify`,
which refuses a key that is not here or an event of another type. Every event type on the bus is
either the event of some notice or listed in :data:`SILENT` with the reason nobody is told; a test
holds the two together, so a new event type cannot be added without deciding who hears of it.

*Essential* notices (deadlines, decisions, awards, payments, security) always go at once. The
others (follows, questions and answers) follow each person's choice: at once, in a daily digest,
or not by email (they still appear among the person's messages on the site).
"""

from __future__ import annotations

from challenges.notifications.notices import NOTICES
from challenges.notifications.notices import Kind as Kind
from challenges.notifications.notices import Notice as Notice

CATALOGUE: dict[str, Notice] = {n.key: n for n in NOTICES}

# Events that nobody is emailed about, and why (for developers: not shown to users).
SILENT: dict[str, str] = {
    "OrganisationRegistered": "the person who registered it is welcomed (UserRegistered)",
    "InvitationAccepted": "the evaluator is on the site; managers see it on the people page",
    "OrganisationFiguresChanged": "the member who changed them sees the result on the page",
    "ChallengeDrafted": "the owner is working on the page",
    "ChallengeWithdrawn": "the owner withdrew it themselves",
    "ChallengeReviewStarted": "the managers are told by ReviewOpened",
    "ChallengeDecided": "everyone concerned is told by DecisionsPublished",
    "ChallengeArchived": "nothing changes for anyone",
    "ProposalStarted": "the team is working on the page",
    "ProposalReopened": "the team reopened it themselves",
    "AttachmentAdded": "the team is working on the page",
    "AttachmentRemoved": "the team is working on the page",
    "ConflictDeclared": "the evaluator declared it; a step-back is told by RecusalSettled",
    "EvaluatorRecused": "told once settled (RecusalSettled)",
    "ReviewSubmitted": "the evaluator sees it on the page; managers hear when all are in",
    "ProposalReviewCompleted": "managers hear when the whole challenge is complete",
    "ProposalDecided": "decisions are told when published",
    "ExchangeRateSet": "the manager set it on the page",
    "YearOpened": "the manager opened it on the page",
    "FundingAwarded": "told when the ledger has booked it (AwardBooked) or refused it (AwardRefused)",
    "PaymentApproved": "told when the ledger has booked it (PaymentMade)",
    "AwardReduced": "told when the ledger has booked it (AwardChangeBooked)",
    "AwardCancelled": "told when the ledger has booked it (AwardChangeBooked)",
    "AdminCostBooked": "the manager booked it on the page",
    "YearClosed": "the manager closed it on the page",
    "ProjectStarted": "the company hears of the booked award (AwardBooked), which starts the project",
}


def notices_for(event_type: str) -> list[Notice]:
    return [n for n in NOTICES if n.event == event_type]
