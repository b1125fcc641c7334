"""Facts about reviews. Each fires in the service named in its docstring."""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class ReviewOpened(DomainEvent, type_name="ReviewOpened"):
    """The worker opened the review of a closed challenge (``open_review``)."""

    review_id: int
    challenge_id: int


@dataclass(frozen=True)
class ProposalScreened(DomainEvent, type_name="ProposalScreened"):
    """A programme manager marked a proposal eligible or not (``screen_proposal``)."""

    assessment_id: int
    eligible: bool
    reason: str = ""  # why not eligible, as the applicant reads it (absent from events before it was added)


@dataclass(frozen=True)
class ConflictDeclared(DomainEvent, type_name="ConflictDeclared"):
    """An evaluator declared a relation with an organisation (``declare_conflict``)."""

    evaluator_id: int
    org_number: str
    relation: str


@dataclass(frozen=True)
class EvaluatorsAssigned(DomainEvent, type_name="EvaluatorsAssigned"):
    """Evaluators were given proposals to review (``assign_automatically``, ``assign_by_hand``,
    ``assign_replacement``)."""

    review_id: int
    assignment_ids: list[int]


@dataclass(frozen=True)
class AssignmentRemoved(DomainEvent, type_name="AssignmentRemoved"):
    """A programme manager took a proposal away from an evaluator (``unassign``)."""

    assessment_id: int
    evaluator_id: int


@dataclass(frozen=True)
class EvaluatorRecused(DomainEvent, type_name="EvaluatorRecused"):
    """An evaluator stepped back from an assigned proposal with a reason (``recuse``)."""

    assignment_id: int
    assessment_id: int


@dataclass(frozen=True)
class RecusalSettled(DomainEvent, type_name="RecusalSettled"):
    """The worker looked for someone to take over after a recusal (``settle_recusal``)."""

    assignment_id: int
    replacement_id: int | None


@dataclass(frozen=True)
class ReviewSubmitted(DomainEvent, type_name="ReviewSubmitted"):
    """An evaluator submitted scores for an assigned proposal (``submit_review``)."""

    review_id: int
    assessment_id: int


@dataclass(frozen=True)
class ProposalReviewCompleted(DomainEvent, type_name="ProposalReviewCompleted"):
    """Every non-recused review of a proposal is in (``check_completion``, on the worker)."""

    assessment_id: int
    review_id: int


@dataclass(frozen=True)
class ChallengeReviewCompleted(DomainEvent, type_name="ChallengeReviewCompleted"):
    """Every eligible proposal of the challenge is fully reviewed (``check_completion``)."""

    review_id: int
    challenge_id: int


@dataclass(frozen=True)
class ProposalDecided(DomainEvent, type_name="ProposalDecided"):
    """A programme manager recommended or rejected a proposal (``decide_proposal``); not yet public."""

    assessment_id: int
    decision: str


@dataclass(frozen=True)
class DecisionsPublished(DomainEvent, type_name="DecisionsPublished"):
    """A programme manager published the challenge's decisions (``publish_decisions``)."""

    review_id: int
    challenge_id: int


@dataclass(frozen=True)
class ReviewRemindersDue(DomainEvent, type_name="ReviewRemindersDue"):
    """A reminder round is due for evaluators with unfinished reviews (``send_due_reminders``)."""

    review_id: int
    kind: str


ALL: tuple[type[DomainEvent], ...] = (
    ReviewOpened,
    ProposalScreened,
    ConflictDeclared,
    EvaluatorsAssigned,
    AssignmentRemoved,
    EvaluatorRecused,
    RecusalSettled,
    ReviewSubmitted,
    ProposalReviewCompleted,
    ChallengeReviewCompleted,
    ProposalDecided,
    DecisionsPublished,
    ReviewRemindersDue,
)
