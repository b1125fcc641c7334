"""The programme ledger: double-entry postings of ledger events, their rules, verify and rebuild.

The rules live once, in :func:`apply`, and work on a *book*: the database (the live ledger,
under a row lock on the programme year) or memory (``rebuild``). An event is posted at most
once: its posting row is keyed by the event id, and a second delivery with another amount is
an error, never a second booking.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import lazyload, selectinload

from challenges.core.bus import Fact, get_bus
from challenges.core.models import Event, utcnow
from challenges.extensions import db
from challenges.funding import events as ev
from challenges.funding.models import (
    BOUNDED,
    Account,
    AccountKind,
    Award,
    AwardStatus,
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


# --- checking and rebuilding --------------------------------------------------------------------------


@dataclass
class MemoryBook:
    """An empty ledger in memory, for replaying the event log."""

    balances: dict[AccountKey, int] = field(default_factory=lambda: defaultdict(int))
    closed: set[int] = field(default_factory=set)

    def balance(self, key: AccountKey) -> int:
        return self.balances[key]

    def move(
        self, event_id: str, kind: TransferKind, source: AccountKey, target: AccountKey, amount: int
    ) -> None:
        self.balances[source] -= amount
        self.balances[target] += amount

    def commitments(self, year_id: int) -> list[AccountKey]:
        # in memory the order is moot: only the balances are compared
        return [k for k in self.balances if k[0] == year_id and k[1] is K.commitment]

    def is_closed(self, year_id: int) -> bool:
        return year_id in self.closed

    def close(self, year_id: int) -> None:
        self.closed.add(year_id)


def live_balances() -> dict[AccountKey, int]:
    return {
        (a.programme_year_id, a.kind, a.award_id): a.balance_ore
        for a in db.session.scalars(sa.select(Account))
    }


def replay(until: datetime | None = None, year_ids: set[int] | None = None) -> MemoryBook:
    """Every event the ledger posted (before *until*; of *year_ids*), in the order it took them,
    replayed through its rules into an empty ledger."""
    book, bus = MemoryBook(), get_bus()
    query = sa.select(Event).join(Posting).options(lazyload(Event.handlings))  # on the posting's one key
    if until is not None:
        query = query.where(Posting.posted_at < until)
    # (each posting is later than the one before it: the event id only breaks a tie that does not occur)
    in_order = query.order_by(Posting.posted_at, Posting.event_id)  # pragma: no mutate
    for event in map(bus.fact, db.session.scalars(in_order)):
        if year_ids is None or event.payload.get("programme_year_id") in year_ids:
            apply(book, event)
    return book


def rebuild() -> tuple[dict[AccountKey, int], list[str]]:
    """Replay every posted event into an empty ledger; return its balances and every difference
    from the live ledger (empty when they agree to the öre)."""
    rebuilt = dict(replay().balances)
    live = live_balances()
    # each key's two balances, 0 on the side that lacks it: compared and shown as one
    both = {key: (live.get(key, 0), rebuilt.get(key, 0)) for key in set(live) | set(rebuilt)}
    differences = [
        f"{key}: live {was} öre, rebuilt {is_now} öre"
        for key, (was, is_now) in sorted(both.items(), key=lambda item: str(item[0]))
        if was != is_now
    ]
    return rebuilt, differences


def verify() -> list[str]:
    """Every problem :func:`verify_accounts` and :func:`verify_awards` find (``flask ledger verify``)."""
    return verify_accounts() + verify_awards()


def _movements() -> tuple[dict[int, Account], dict[tuple[int, K, TransferKind], int]]:
    """Every account, and what each kind of transfer moved in or out of each."""
    by_account = {a.id: a for a in db.session.scalars(sa.select(Account))}
    moved: dict[tuple[int, K, TransferKind], int] = defaultdict(int)  # (account, its kind, transfer kind)
    for source_id, target_id, kind, amount in db.session.execute(
        sa.select(Transfer.source_id, Transfer.target_id, Transfer.kind, Transfer.amount_ore)
    ):
        for account_id in (source_id, target_id):
            moved[account_id, by_account[account_id].kind, kind] += amount
    return by_account, moved


def verify_accounts() -> list[str]:
    """Recompute every balance from the transfers and check the ledger's invariants, each year against
    the cap it was opened with; the problems found."""
    problems = []
    flows: dict[int, int] = defaultdict(int)
    for source_id, target_id, amount in db.session.execute(
        sa.select(Transfer.source_id, Transfer.target_id, Transfer.amount_ore)
    ):
        flows[source_id] -= amount
        flows[target_id] += amount
    per_year: dict[int, int] = defaultdict(int)
    for account in db.session.scalars(sa.select(Account).order_by(Account.id)):  # pragma: no mutate (order)
        name = f"account {account.id} ({account.kind.value}, year {account.programme_year_id})"
        if flows[account.id] != account.balance_ore:
            problems.append(
                f"{name}: balance {account.balance_ore} öre, transfers say {flows[account.id]} öre"
            )
        if account.kind in BOUNDED and flows[account.id] < 0:
            problems.append(f"{name} is below zero: {flows[account.id]} öre")
        per_year[account.programme_year_id] += flows[account.id]
    for year_id, total in per_year.items():
        if total:
            problems.append(f"year {year_id}: debits and credits differ by {total} öre")
    by_account, moved = _movements()
    for year in db.session.scalars(sa.select(ProgrammeYear)):
        spent = sum(
            a.balance_ore
            for a in by_account.values()
            if a.programme_year_id == year.id and a.kind is K.admin_spent
        )
        envelope = [
            a.id for a in by_account.values() if a.programme_year_id == year.id and a.kind is K.admin_envelope
        ]
        cap = sum(
            moved[a, K.admin_envelope, TransferKind.opening] for a in envelope
        )  # as the year was opened
        if spent > cap:
            problems.append(
                f"year {year.year}: administration {spent} öre is above the cap it opened with, {cap} öre"
            )
        if year.closed_at is not None:
            late = db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Transfer)
                .where(
                    Transfer.programme_year_id == year.id,
                    Transfer.booked_at > year.closed_at,
                    Transfer.kind != TransferKind.year_close,
                )
            )
            if late:
                problems.append(f"year {year.year}: {late} transfer(s) after the close")
    return problems


def verify_awards() -> list[str]:
    """Each award against its commitment: what was awarded, reduced, cancelled, paid and returned, its
    amount and status, its posting, and its approved instalments that the ledger booked."""
    by_account, moved = _movements()
    problems = []
    postings = {p.event_id: p.booked for p in db.session.scalars(sa.select(Posting))}
    bus = get_bus()
    awarded = {
        bus.payload(event)["award_id"]: postings.get(event.id)
        for event in db.session.scalars(
            sa.select(Event).where(Event.type.in_(bus.stored_names(ev.FundingAwarded)))
        )
    }  # its own event and posting
    commitments: dict[int, list[int]] = defaultdict(list)
    for account in by_account.values():
        if account.award_id is not None:
            commitments[account.award_id].append(account.id)
    for award in db.session.scalars(sa.select(Award).options(selectinload(Award.instalments))):
        flow: dict[TransferKind, int] = defaultdict(int)
        for account_id in commitments[award.id]:
            for kind in TransferKind:
                flow[kind] += moved[
                    account_id, K.commitment, kind
                ]  # pragma: no mutate (one account an award)
        balance = sum(by_account[a].balance_ore for a in commitments[award.id])
        name, booked = f"award {award.id} ({award.status.value})", awarded.get(award.id)
        if award.status is AwardStatus.pending and (flow[TransferKind.award] or booked is not None):
            problems.append(f"{name}: posted, but still pending")
        if award.status is AwardStatus.refused and (flow[TransferKind.award] or booked or balance):
            problems.append(
                f"{name}: refused, but {flow[TransferKind.award]} öre was committed ({balance} öre still)"
            )
        if award.status in (AwardStatus.booked, AwardStatus.cancelled):
            if not booked or not flow[TransferKind.award]:
                problems.append(f"{name}: no booked posting commits its money")
            if award.amount_ore != flow[TransferKind.award] - flow[TransferKind.reduction]:
                problems.append(
                    f"{name}: amount {award.amount_ore} öre, the ledger committed "
                    f"{flow[TransferKind.award] - flow[TransferKind.reduction]} öre"
                )
            expected = (
                0
                if award.status is AwardStatus.cancelled
                else award.amount_ore - flow[TransferKind.payment] - flow[TransferKind.year_close]
            )
            if balance != expected:
                problems.append(f"{name}: {balance} öre committed, {expected} öre expected")
        paid_by_plan = sum(i.amount_ore for i in award.instalments if i.event_id and postings.get(i.event_id))
        if flow[TransferKind.payment] != paid_by_plan:
            problems.append(
                f"{name}: paid {flow[TransferKind.payment]} öre, its booked instalments {paid_by_plan} öre"
            )
        if flow[TransferKind.payment] > award.amount_ore:
            problems.append(f"{name}: paid {flow[TransferKind.payment]} öre of {award.amount_ore} öre")
    return problems
