"""The programme ledger: double-entry postings of ledger events, their rules, verify and rebuild.

The rules live once, in :func:`apply`, and work on a *book*: the database (the live ledger,
under a row lock on the programme year) or memory (``rebuild``). An event is posted at most
once: its posting row is keyed by the event id, and a second delivery with another amount is
an error, never a second booking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import sqlalchemy as sa

from challenges.core.bus import Fact, get_bus
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding import events as ev
from challenges.funding.models import (
    Account,
    AccountKind,
    Posting,
    ProgrammeYear,
    Transfer,
    TransferKind,
)

AccountKey = tuple[int, AccountKind, int | None]  # (programme year, kind, award)
K = AccountKind


class LedgerConflict(Exception):
    """The same event id arrived again with a different amount: refuse loudly, book nothing."""


@dataclass(frozen=True)
class Outcome:
    booked: bool
    reason: str | None = None  # insufficient_budget, exceeds_commitment, admin_cap, year_closed


class Book(Protocol):
    def balance(self, key: AccountKey) -> int: ...
    def move(
        self, event_id: str, kind: TransferKind, source: AccountKey, target: AccountKey, amount: int
    ) -> None: ...
    def commitments(self, year_id: int) -> list[AccountKey]: ...
    def is_closed(self, year_id: int) -> bool: ...
    def close(self, year_id: int) -> None: ...


def _amount(event: Fact) -> int:
    return int(event.payload.get("amount_ore", 0))


def apply(book: Book, event: Fact) -> Outcome:
    """The ledger's rules for one event: move money, or refuse with the reason."""
    p = event.payload
    year = p["programme_year_id"]
    kind, amount = event.type, _amount(event)
    if book.is_closed(year):
        return Outcome(False, "year_closed")

    def key(account: AccountKind, award: int | None = None) -> AccountKey:
        return (year, account, award)

    if kind == ev.YearOpened.type_name:
        if amount - p["admin_cap_ore"]:
            book.move(
                event.id,
                TransferKind.opening,
                key(K.allocation),
                key(K.available),
                amount - p["admin_cap_ore"],
            )
        if p["admin_cap_ore"]:
            book.move(
                event.id, TransferKind.opening, key(K.allocation), key(K.admin_envelope), p["admin_cap_ore"]
            )
    elif kind == ev.FundingAwarded.type_name:
        if amount > book.balance(key(K.available)):
            return Outcome(False, "insufficient_budget")
        book.move(event.id, TransferKind.award, key(K.available), key(K.commitment, p["award_id"]), amount)
    elif kind == ev.PaymentApproved.type_name:
        if amount > book.balance(key(K.commitment, p["award_id"])):
            return Outcome(False, "exceeds_commitment")
        book.move(event.id, TransferKind.payment, key(K.commitment, p["award_id"]), key(K.paid_out), amount)
    elif kind in (ev.AwardReduced.type_name, ev.AwardCancelled.type_name):
        if amount > book.balance(key(K.commitment, p["award_id"])):
            return Outcome(False, "exceeds_commitment")
        if amount:
            transfer = (
                TransferKind.reduction if kind == ev.AwardReduced.type_name else TransferKind.cancellation
            )
            book.move(event.id, transfer, key(K.commitment, p["award_id"]), key(K.available), amount)
    elif kind == ev.AdminCostBooked.type_name:
        if amount > book.balance(key(K.admin_envelope)):
            return Outcome(False, "admin_cap")
        book.move(event.id, TransferKind.admin_cost, key(K.admin_envelope), key(K.admin_spent), amount)
    elif kind == ev.YearClosed.type_name:
        for source in [key(K.available), key(K.admin_envelope), *book.commitments(year)]:
            if (left := book.balance(source)) > 0:
                book.move(event.id, TransferKind.year_close, source, key(K.returned), left)
        book.close(year)
    else:
        raise ValueError(f"{kind} is not a ledger event")
    return Outcome(True)


# --- the live ledger in the database ------------------------------------------------------------------


class DatabaseBook:
    """Accounts and transfers in the database; balances kept in step under the years' row locks.

    Made under those locks for some years (read afresh) and the awards that the events are about: the
    years' own accounts and those awards' commitments are read in one query. Nothing is flushed here:
    the transfers name their accounts, and the caller flushes once for every event it posts."""

    def __init__(self, years: list[ProgrammeYear], award_ids: set[int]) -> None:
        self.years = {year.id: year for year in years}
        self._accounts: dict[AccountKey, Account] = {
            (a.programme_year_id, a.kind, a.award_id): a
            for a in db.session.scalars(
                sa.select(Account)
                .where(
                    Account.programme_year_id.in_(self.years),
                    sa.or_(Account.award_id.is_(None), Account.award_id.in_(award_ids)),
                )
                .execution_options(populate_existing=True)
            )
        }
        # every account of these (year, award) pairs is loaded: one that is not there is new
        self._complete = {(y, a) for y in self.years for a in (None, *award_ids)}

    def account(self, key: AccountKey) -> Account:
        if key not in self._accounts:
            year, kind, award = key
            found = None
            if (year, award) not in self._complete:
                found = db.session.scalar(
                    sa.select(Account)
                    .where(
                        Account.programme_year_id == year,
                        Account.kind == kind,
                        Account.award_id.is_(None) if award is None else Account.award_id == award,
                    )
                    .execution_options(populate_existing=True)
                )
            if found is None:
                found = Account(programme_year_id=year, kind=kind, award_id=award, balance_ore=0)
                db.session.add(found)
            self._accounts[key] = found
        return self._accounts[key]

    def balance(self, key: AccountKey) -> int:
        return self.account(key).balance_ore

    def move(
        self, event_id: str, kind: TransferKind, source: AccountKey, target: AccountKey, amount: int
    ) -> None:
        src, dst = self.account(source), self.account(target)
        db.session.add(
            Transfer(
                programme_year_id=source[0],
                event_id=event_id,
                kind=kind,
                source=src,
                target=dst,
                amount_ore=amount,
            )
        )
        src.balance_ore -= amount
        dst.balance_ore += amount

    def commitments(self, year_id: int) -> list[AccountKey]:
        rows = db.session.scalars(
            sa.select(Account.award_id)
            # (without the year, another year's commitments would be read as this year's: none such exists)
            .where(Account.programme_year_id == year_id, Account.kind == K.commitment)  # pragma: no mutate
            .order_by(Account.award_id)  # pragma: no mutate (the order of the close's transfers only)
        )
        return [(year_id, K.commitment, award_id) for award_id in rows]

    def is_closed(self, year_id: int) -> bool:
        return self.years[year_id].closed_at is not None

    def close(self, year_id: int) -> None:
        self.years[year_id].closed_at = utcnow()


def post(event: Fact) -> tuple[Posting, bool]:
    """Post one event to the live ledger, once (see :func:`post_many`)."""
    return post_many([event])[0]


def post_many(events: list[Fact]) -> list[tuple[Posting, bool]]:
    """Post *events* to the live ledger in their order, each once, under a lock on their programme years
    (the caller commits). Returns each event's posting and whether it is new: a re-delivery returns the
    first posting (``False``); another amount raises LedgerConflict.

    The statements do not grow with the events: the years are locked, the postings looked up and the
    accounts read in one query each, and everything is written in one flush. Each posting's time is later
    than the one before it, so that a replay takes the events in the order they were posted."""
    year_ids = sorted({event.payload["programme_year_id"] for event in events})
    years = list(
        db.session.scalars(
            sa.select(ProgrammeYear)
            .where(ProgrammeYear.id.in_(year_ids))
            .order_by(ProgrammeYear.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if len(years) != len(year_ids):
        raise LookupError(f"programme year(s) {sorted(set(year_ids) - {y.id for y in years})} not found")
    done = {
        p.event_id: p
        for p in db.session.scalars(
            sa.select(Posting)
            .where(Posting.event_id.in_([event.id for event in events]))
            .execution_options(populate_existing=True)
        )
    }
    book = DatabaseBook(years, {event.payload["award_id"] for event in events if "award_id" in event.payload})
    results: list[tuple[Posting, bool]] = []
    last = None
    for event in events:
        if (posting := done.get(event.id)) is not None:
            if posting.amount_ore != _amount(event) or not get_bus().same_type(posting.kind, event.type):
                raise LedgerConflict(
                    f"event {event.id} was posted as {posting.kind} of {posting.amount_ore} öre; "
                    f"now it says {event.type} of {_amount(event)} öre"
                )
            results.append((posting, False))
            continue
        outcome = apply(book, event)
        now = utcnow()
        last = now if last is None or now > last else last + timedelta(microseconds=1)
        posting = Posting(
            event_id=event.id,
            kind=event.type,
            amount_ore=_amount(event),
            booked=outcome.booked,
            reason=outcome.reason,
            posted_at=last,
        )
        db.session.add(posting)
        done[event.id] = posting
        results.append((posting, True))
    db.session.flush()
    return results
