"""Checking the ledger: its balances replayed from the posted events into a book in memory (until an
instant, for some years), compared with the live accounts (``rebuild``), and every account, year and
award checked against the rules it was opened under (``verify``, ``flask ledger verify``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import lazyload, selectinload

from challenges.core.bus import get_bus
from challenges.core.models import Event
from challenges.extensions import db
from challenges.funding import events as ev
from challenges.funding.ledger import AccountKey, K, apply
from challenges.funding.models import (
    BOUNDED,
    Account,
    Award,
    AwardStatus,
    Posting,
    ProgrammeYear,
    Transfer,
    TransferKind,
)


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
