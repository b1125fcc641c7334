"""Facts about the programme and its money. Each fires in the service named in its docstring.

The ledger events carry the programme year and the amount in öre, so that the ledger can be
rebuilt from the event log alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from challenges.core.bus import DomainEvent


@dataclass(frozen=True)
class ExchangeRateSet(DomainEvent, type_name="ExchangeRateSet"):
    """A programme manager set the SEK/EUR rate used for the EU SME thresholds (``set_exchange_rate``)."""

    programme_id: int
    eur_rate_ore: int


@dataclass(frozen=True)
class YearOpened(DomainEvent, type_name="YearOpened"):
    """A programme year's ledger was opened: the allocation split into the available budget and
    the administration envelope (``open_year``)."""

    programme_year_id: int
    amount_ore: int  # the allocation
    admin_cap_ore: int


@dataclass(frozen=True)
class FundingAwarded(DomainEvent, type_name="FundingAwarded"):
    """A programme manager awarded funding to a recommended proposal (``award_funding``)."""

    award_id: int
    programme_year_id: int
    amount_ore: int


@dataclass(frozen=True)
class AwardRefused(DomainEvent, type_name="AwardRefused"):
    """The ledger could not book an award (the ledger worker)."""

    award_id: int
    reason: str


@dataclass(frozen=True)
class PostingRefused(DomainEvent, type_name="PostingRefused"):
    """The ledger refused a payment, reduction, cancellation or cost; what the service had marked
    was put back (the ledger worker)."""

    refused_event_id: str
    kind: str
    reason: str


@dataclass(frozen=True)
class PaymentApproved(DomainEvent, type_name="PaymentApproved"):
    """A programme manager approved an instalment of an award (``approve_payment``)."""

    award_id: int
    instalment_id: int
    programme_year_id: int
    amount_ore: int


@dataclass(frozen=True)
class AwardReduced(DomainEvent, type_name="AwardReduced"):
    """A programme manager lowered an award; the difference goes back to the budget (``reduce_award``)."""

    award_id: int
    programme_year_id: int
    amount_ore: int  # by how much


@dataclass(frozen=True)
class AwardCancelled(DomainEvent, type_name="AwardCancelled"):
    """A programme manager cancelled an award; what is unpaid goes back (``cancel_award``)."""

    award_id: int
    programme_year_id: int
    amount_ore: int  # what was still committed


@dataclass(frozen=True)
class AdminCostBooked(DomainEvent, type_name="AdminCostBooked"):
    """The programme's own administration cost, within the cap (``book_admin_cost``)."""

    programme_year_id: int
    amount_ore: int
    memo: str


@dataclass(frozen=True)
class YearClosed(DomainEvent, type_name="YearClosed"):
    """A programme year closed: everything left is returned and it takes no more postings (``close_year``)."""

    programme_year_id: int


@dataclass(frozen=True)
class AwardBooked(DomainEvent, type_name="AwardBooked"):
    """The ledger booked an award: the money is committed (the ledger worker)."""

    award_id: int
    amount_ore: int


@dataclass(frozen=True)
class PaymentMade(DomainEvent, type_name="PaymentMade"):
    """The ledger booked an approved instalment as paid (the ledger worker)."""

    award_id: int
    instalment_id: int
    amount_ore: int


@dataclass(frozen=True)
class AwardChangeBooked(DomainEvent, type_name="AwardChangeBooked"):
    """The ledger booked a reduction or cancellation of an award (the ledger worker)."""

    award_id: int
    kind: str  # "reduced" or "cancelled"
    amount_ore: int


LEDGER_EVENTS: tuple[type[DomainEvent], ...] = (
    YearOpened,
    FundingAwarded,
    PaymentApproved,
    AwardReduced,
    AwardCancelled,
    AdminCostBooked,
    YearClosed,
)
ALL: tuple[type[DomainEvent], ...] = (
    ExchangeRateSet,
    AwardRefused,
    PostingRefused,
    AwardBooked,
    PaymentMade,
    AwardChangeBooked,
    *LEDGER_EVENTS,
)
