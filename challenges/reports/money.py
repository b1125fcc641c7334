"""A report's money: each programme year's allocation, commitments, payments, returns and
administration in a period, counted from the events and again from the ledger's transfers."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from challenges.core.formatting import local_day
from challenges.extensions import db
from challenges.funding.models import (
    Account,
    AccountKind,
    Programme,
    Transfer,
    TransferKind,
)
from challenges.reports.contents import YearMoney
from challenges.reports.periods import Period, programme_start

K = AccountKind


def year_money(
    programme: Programme, period: Period
) -> tuple[list[YearMoney], YearMoney, list[tuple[date, int, int, int]], dict[tuple[int, AccountKind], int]]:
    """Each year's money from the ledger's transfers up to the end, their total, the month-end
    timeline (awarded, paid and administration so far), and the accounts' balances."""
    numbers = {y.id: y.year for y in programme.years}
    years: dict[int, YearMoney] = {}  # the years whose ledger had opened by the end
    balances: dict[tuple[int, AccountKind], int] = defaultdict(int)
    timeline: list[tuple[date, int, int, int]] = []
    month_end = _month_end(programme_start(programme))
    running = [0, 0, 0]
    for year_id, kind, amount, booked_at, src, dst in _transfers(programme, period):
        day = local_day(booked_at)
        while day > month_end:
            timeline.append((month_end, running[0], running[1], running[2]))
            month_end = _month_end(month_end + timedelta(days=1))
        balances[(year_id, src)] -= amount
        balances[(year_id, dst)] += amount
        money = years.setdefault(year_id, YearMoney(numbers[year_id]))
        added = _count(money, kind, dst, amount, fresh=period.holds(booked_at))
        running = [r + a for r, a in zip(running, added, strict=True)]
    while month_end <= period.end:
        timeline.append((month_end, running[0], running[1], running[2]))
        month_end = _month_end(month_end + timedelta(days=1))
    if not timeline or timeline[-1][0] != period.end:
        timeline.append((period.end, running[0], running[1], running[2]))
    total = YearMoney(None)
    for year_id, money in years.items():
        _balances_of(money, year_id, balances)
        total.add(money)
    ordered = sorted(years.values(), key=lambda m: m.year or 0)
    return ordered, total, timeline, balances


def _transfers(programme: Programme, period: Period) -> list[Any]:
    """The programme's transfers booked before the end, in order, with both accounts' kinds."""
    source, target = sa.orm.aliased(Account), sa.orm.aliased(Account)
    return list(
        db.session.execute(
            sa.select(
                Transfer.programme_year_id,
                Transfer.kind,
                Transfer.amount_ore,
                Transfer.booked_at,
                source.kind,
                target.kind,
            )
            .join(source, source.id == Transfer.source_id)
            .join(target, target.id == Transfer.target_id)
            .where(
                Transfer.programme_year_id.in_([y.id for y in programme.years]),
                Transfer.booked_at < period.end_at,
            )
            .order_by(Transfer.booked_at, Transfer.id)
        ).all()
    )


def _count(
    money: YearMoney, kind: TransferKind, dst: AccountKind, amount: int, *, fresh: bool
) -> tuple[int, int, int]:
    """Count one transfer in its year's money (*fresh*: booked within the period); return what it adds
    to the running figures: awarded, paid, administration."""
    if kind is TransferKind.opening and dst is K.admin_envelope:  # the cap as the year opened with it
        money.admin_cap += amount
    signed = {
        TransferKind.award: amount,
        TransferKind.reduction: -amount,
        TransferKind.cancellation: -amount,
    }.get(kind, 0)
    money.awarded += signed
    money.awarded_in_period += signed if fresh else 0
    if kind is TransferKind.payment:
        money.paid_in_period += amount if fresh else 0
        return signed, amount, 0
    if kind is TransferKind.admin_cost:
        money.admin_in_period += amount if fresh else 0
        return signed, 0, amount
    if kind is TransferKind.year_close:
        money.returned_in_period += amount if fresh else 0
    return signed, 0, 0


def _balances_of(money: YearMoney, year_id: int, balances: dict[tuple[int, AccountKind], int]) -> None:
    """A year's accounts at the end, as its money shows them."""
    money.allocation = -balances[(year_id, K.allocation)]
    money.paid = balances[(year_id, K.paid_out)]
    money.committed = balances[(year_id, K.commitment)]
    money.admin_spent = balances[(year_id, K.admin_spent)]
    money.returned = balances[(year_id, K.returned)]
    money.available = balances[(year_id, K.available)]
    money.admin_left = balances[(year_id, K.admin_envelope)]


def _month_end(day: date) -> date:
    following = date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return following - timedelta(days=1)
