"""Facts about proposals. Each fires in the service named in its docstring."""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class ProposalStarted(DomainEvent, type_name="ProposalStarted"):
    """An SME member started a draft proposal to an open challenge (``start_proposal``)."""

    proposal_id: int
    challenge_id: int


@dataclass(frozen=True)
class ProposalSubmitted(DomainEvent, type_name="ProposalSubmitted"):
    """The applicant submitted the proposal as a new numbered version (``submit_proposal``)."""

    proposal_id: int
    challenge_id: int
    number: int


@dataclass(frozen=True)
class ProposalWithdrawn(DomainEvent, type_name="ProposalWithdrawn"):
    """The applicant withdrew a submitted proposal before the deadline (``withdraw_proposal``)."""

    proposal_id: int
    challenge_id: int
    number: int


@dataclass(frozen=True)
class ProposalReopened(DomainEvent, type_name="ProposalReopened"):
    """The applicant took a withdrawn proposal back as a draft (``reopen_proposal``)."""

    proposal_id: int
    challenge_id: int


@dataclass(frozen=True)
class AttachmentAdded(DomainEvent, type_name="AttachmentAdded"):
    """A PDF was attached to the proposal (``add_attachment``)."""

    proposal_id: int
    attachment_id: int
    sha256: str


@dataclass(frozen=True)
class AttachmentRemoved(DomainEvent, type_name="AttachmentRemoved"):
    """A PDF was taken off the proposal; versions that hold it keep it (``remove_attachment``)."""

    proposal_id: int
    attachment_id: int


ALL: tuple[type[DomainEvent], ...] = (
    ProposalStarted,
    ProposalSubmitted,
    ProposalWithdrawn,
    ProposalReopened,
    AttachmentAdded,
    AttachmentRemoved,
)
