"""Facts about challenges. Each fires in the service named in its docstring."""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class ChallengeDrafted(DomainEvent, type_name="ChallengeDrafted"):
    """A challenge owner created a draft (``create_challenge``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeSubmitted(DomainEvent, type_name="ChallengeSubmitted"):
    """The owner submitted a draft for the programme's approval (``submit_challenge``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeWithdrawn(DomainEvent, type_name="ChallengeWithdrawn"):
    """The owner took a submitted draft back to edit it (``withdraw_challenge``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeReturned(DomainEvent, type_name="ChallengeReturned"):
    """A programme manager returned a draft to its owner with a comment (``return_challenge``)."""

    challenge_id: int
    comment: str


@dataclass(frozen=True)
class ChallengePublished(DomainEvent, type_name="ChallengePublished"):
    """A programme manager approved a challenge and it is open (``approve_challenge``)."""

    challenge_id: int
    deadline: str


@dataclass(frozen=True)
class ChallengeClosed(DomainEvent, type_name="ChallengeClosed"):
    """The deadline passed and the challenge closed (``close_challenge``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeReviewStarted(DomainEvent, type_name="ChallengeReviewStarted"):
    """A programme manager started the review of a closed challenge (``start_review``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeDecided(DomainEvent, type_name="ChallengeDecided"):
    """A programme manager marked the review as decided (``mark_decided``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeArchived(DomainEvent, type_name="ChallengeArchived"):
    """A programme manager archived a decided challenge (``archive_challenge``)."""

    challenge_id: int


@dataclass(frozen=True)
class ChallengeClarified(DomainEvent, type_name="ChallengeClarified"):
    """The owner appended a clarification to an open challenge (``add_clarification``)."""

    challenge_id: int
    note_id: int


@dataclass(frozen=True)
class DeadlineExtended(DomainEvent, type_name="DeadlineExtended"):
    """The owner moved the deadline of an open challenge later (``extend_deadline``)."""

    challenge_id: int
    note_id: int
    old_deadline: str
    new_deadline: str


@dataclass(frozen=True)
class QuestionAsked(DomainEvent, type_name="QuestionAsked"):
    """An SME member asked a question about an open challenge (``ask_question``)."""

    challenge_id: int
    question_id: int


@dataclass(frozen=True)
class QuestionAnswered(DomainEvent, type_name="QuestionAnswered"):
    """The owner answered a question; it is now public (``answer_question``)."""

    challenge_id: int
    question_id: int


@dataclass(frozen=True)
class ChallengeClosingSoon(DomainEvent, type_name="ChallengeClosingSoon"):
    """An open challenge's deadline is *days* away or less (``send_closing_reminders``)."""

    challenge_id: int
    days: int  # 3 or 1
    deadline: str


TRANSITION_EVENTS: dict[str, type[DomainEvent]] = {
    "submit": ChallengeSubmitted,
    "withdraw": ChallengeWithdrawn,
    "return": ChallengeReturned,
    "approve": ChallengePublished,
    "close": ChallengeClosed,
    "start_review": ChallengeReviewStarted,
    "decide": ChallengeDecided,
    "archive": ChallengeArchived,
}

ALL: tuple[type[DomainEvent], ...] = (
    ChallengeDrafted,
    *TRANSITION_EVENTS.values(),
    ChallengeClarified,
    DeadlineExtended,
    QuestionAsked,
    QuestionAnswered,
    ChallengeClosingSoon,
)
