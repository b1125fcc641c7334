"""The programme ledger, awards and their instalments, with money in integer öre."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import Model

# The programmes and their years live in their own package (challenges need them too); the ledger books
# against the years, and the ledger's code reads them from here as well.
from challenges.programmes.models import Programme as Programme
from challenges.programmes.models import ProgrammeYear as ProgrammeYear

if TYPE_CHECKING:
    from challenges.proposals.models import Proposal


class AccountKind(enum.Enum):
    allocation = "allocation"  # the year's money from the treasury: its balance is minus the allocation
    available = "available"  # what can still be awarded
    admin_envelope = "admin_envelope"  # what may still go to administration (the cap)
    commitment = "commitment"  # one per award: awarded, not yet paid
    paid_out = "paid_out"
    admin_spent = "admin_spent"
    returned = "returned"  # given back to the treasury when the year closes


ACCOUNT_LABELS = {
    AccountKind.allocation: _l("Allocation"),
    AccountKind.available: _l("Available budget"),
    AccountKind.admin_envelope: _l("Administration envelope"),
    AccountKind.commitment: _l("Commitment"),
    AccountKind.paid_out: _l("Paid out"),
    AccountKind.admin_spent: _l("Administration spent"),
    AccountKind.returned: _l("Returned"),
}

# Accounts that may never go below zero (the allocation is the one source allowed to be negative).
BOUNDED = frozenset(set(AccountKind) - {AccountKind.allocation})


class Account(Model):
    """One account of a programme year's ledger; its balance is the sum of its transfers."""

    __tablename__ = "ledger_account"
    __table_args__ = (
        sa.UniqueConstraint("programme_year_id", "kind", "award_id", name="one_per_kind"),
        sa.CheckConstraint("(kind = 'commitment') = (award_id IS NOT NULL)", name="commitment_has_award"),
        sa.CheckConstraint("kind = 'allocation' OR balance_ore >= 0", name="bounded_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_year_id: Mapped[int] = mapped_column(sa.ForeignKey("programme_year.id"), index=True)
    kind: Mapped[AccountKind] = mapped_column(enum_column(AccountKind, "account_kind"))
    award_id: Mapped[int | None] = mapped_column(sa.ForeignKey("award.id"), index=True)
    # Kept in step by every posting in the same transaction; `flask ledger verify` recomputes it.
    balance_ore: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    programme_year: Mapped[ProgrammeYear] = relationship()
    award: Mapped[Award | None] = relationship(foreign_keys=[award_id])

    @property
    def label(self) -> str:
        name = str(ACCOUNT_LABELS[self.kind])
        return f"{name}: {self.award.proposal.title}" if self.award is not None else name


class TransferKind(enum.Enum):
    opening = "opening"
    award = "award"
    payment = "payment"
    reduction = "reduction"
    cancellation = "cancellation"
    admin_cost = "admin_cost"
    year_close = "year_close"


class Transfer(Model):
    """Money moved from one account to another: immutable (the database refuses UPDATE and DELETE)."""

    __tablename__ = "ledger_transfer"
    __table_args__ = (
        sa.CheckConstraint("amount_ore > 0", name="amount_positive"),
        sa.CheckConstraint("source_id <> target_id", name="two_accounts"),
        sa.Index("ix_ledger_transfer_year_id", "programme_year_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    programme_year_id: Mapped[int] = mapped_column(sa.ForeignKey("programme_year.id"))
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("event_log.id"), index=True)
    kind: Mapped[TransferKind] = mapped_column(enum_column(TransferKind, "transfer_kind"))
    source_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_account.id"), index=True)
    target_id: Mapped[int] = mapped_column(sa.ForeignKey("ledger_account.id"), index=True)
    amount_ore: Mapped[int] = mapped_column(sa.BigInteger)
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    source: Mapped[Account] = relationship(foreign_keys=[source_id])
    target: Mapped[Account] = relationship(foreign_keys=[target_id])


class Posting(Model):
    """What the ledger did with one event, once: booked, or refused with the reason."""

    __tablename__ = "ledger_posting"

    event_id: Mapped[str] = mapped_column(sa.ForeignKey("event_log.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(40))
    amount_ore: Mapped[int] = mapped_column(sa.BigInteger)
    booked: Mapped[bool] = mapped_column(sa.Boolean)
    reason: Mapped[str | None] = mapped_column(sa.String(40))  # insufficient_budget, year_closed, …
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AwardStatus(enum.Enum):
    pending = "pending"  # recorded, waiting for the ledger worker
    booked = "booked"
    refused = "refused"
    cancelled = "cancelled"


REFUSAL_LABELS = {
    "insufficient_budget": _l("insufficient budget"),
    "exceeds_commitment": _l("more than is committed"),
    "admin_cap": _l("above the administration cap"),
    "year_closed": _l("the year is closed"),
}

# What a refused posting was, for the managers' email (by event type).
POSTING_LABELS = {
    "PaymentApproved": _l("A payment"),
    "AwardReduced": _l("A reduction of an award"),
    "AwardCancelled": _l("A cancellation of an award"),
    "AdminCostBooked": _l("An administration cost"),
    "YearClosed": _l("The closing of a year"),
}

AWARD_STATUS_LABELS = {
    AwardStatus.pending: _l("Pending"),
    AwardStatus.booked: _l("Booked"),
    AwardStatus.refused: _l("Refused"),
    AwardStatus.cancelled: _l("Cancelled"),
}


class Award(Model):
    """Funding awarded to a recommended proposal from one programme year."""

    __tablename__ = "award"
    __table_args__ = (sa.CheckConstraint("amount_ore > 0", name="amount_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    proposal_id: Mapped[int] = mapped_column(
        sa.ForeignKey("proposal.id"), index=True
    )  # again after a refusal
    programme_year_id: Mapped[int] = mapped_column(sa.ForeignKey("programme_year.id"), index=True)
    amount_ore: Mapped[int] = mapped_column(sa.BigInteger)  # as awarded; reductions lower it
    status: Mapped[AwardStatus] = mapped_column(
        enum_column(AwardStatus, "award_status"), default=AwardStatus.pending
    )
    refused_reason: Mapped[str | None] = mapped_column(sa.String(40))
    awarded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    awarded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    event_id: Mapped[str | None] = mapped_column(sa.ForeignKey("event_log.id"))

    proposal: Mapped[Proposal] = relationship()
    programme_year: Mapped[ProgrammeYear] = relationship()
    instalments: Mapped[list[Instalment]] = relationship(
        back_populates="award", order_by="Instalment.position"
    )


class InstalmentCondition(enum.Enum):
    start = "start"
    final_report = "final_report"  # after the approved final report


CONDITION_LABELS = {
    InstalmentCondition.start: _l("At the start"),
    InstalmentCondition.final_report: _l("After the approved final report"),
}


class Instalment(Model):
    """One payment of an award's plan; approving it moves the money from commitment to paid out."""

    __tablename__ = "award_instalment"
    __table_args__ = (
        sa.UniqueConstraint("award_id", "position", name="instalment_per_position"),
        sa.CheckConstraint("amount_ore > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    award_id: Mapped[int] = mapped_column(sa.ForeignKey("award.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    condition: Mapped[InstalmentCondition] = mapped_column(
        enum_column(InstalmentCondition, "instalment_condition")
    )
    amount_ore: Mapped[int] = mapped_column(sa.BigInteger)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    event_id: Mapped[str | None] = mapped_column(sa.ForeignKey("event_log.id"))

    award: Mapped[Award] = relationship(back_populates="instalments")

    @property
    def label(self) -> str:
        return str(CONDITION_LABELS[self.condition])
