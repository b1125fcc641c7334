"""The demo programme's reports (15 October 2016, 31 March 2017 and today) from its 2016–2017 history:
the figures the history set up, reconciled with the ledger to the öre."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from challenges.core.inline import handle_pending
from challenges.demo import SEK, load_demo
from challenges.demo.records import HISTORY_ADMIN_COSTS, HISTORY_AWARDS, HISTORY_PROPOSALS
from challenges.extensions import db
from challenges.funding import checks
from challenges.funding import services as funding
from challenges.funding.models import AccountKind, InstalmentCondition, Programme
from challenges.reports import periods, services
from challenges.reports.periods import Period


def _start_share(kronor: int) -> int:
    return next(
        amount
        for condition, amount in funding.plan_for(kronor * SEK)
        if condition is InstalmentCondition.start
    )


def test_the_demo_programme_reports_reconcile_with_the_ledger(app, ctx):
    assert load_demo() is True
    handle_pending()  # today's part, as the workers would
    programme = db.session.scalar(sa.select(Programme))
    found = periods.report_periods(programme)
    assert [(p.start, p.end) for p in found] == [
        (date(2016, 1, 1), date(2016, 10, 15)),
        (date(2016, 10, 16), date(2017, 3, 31)),
        (date(2017, 4, 1), date(2018, 3, 31)),
    ]
    first, second, final = (services.build(programme, p) for p in found)

    # 15 October 2016: both projects running, the start instalments paid, the progress reports in
    assert len(first.challenges) == 2 and len(first.owners) == 2
    assert len(first.smes) == len({p.applicant for p in HISTORY_PROPOSALS}) == first.smes_in_period
    assert first.proposals == len(HISTORY_PROPOSALS) and first.screened_out_total == 1
    assert first.conflicts_declared == 1
    assert sorted(f.awarded_ore for f in first.funded) == sorted(k * SEK for k in HISTORY_AWARDS.values())
    assert first.total.paid == sum(_start_share(k) for k in HISTORY_AWARDS.values())
    assert first.total.admin_spent == HISTORY_ADMIN_COSTS[2016][0] * SEK
    assert [r.report.kind.value for r in first.results] == ["progress", "progress"]
    assert first.lessons is not None and "Plan for the coming year" in first.lessons.text
    assert first.reconciled

    # 31 March 2017: one project completed and paid in full; the other's final report is waiting
    assert {f.status for f in second.funded} == {"completed", "running"}
    completed = next(f for f in second.funded if f.status == "completed")
    assert completed.paid_ore == completed.awarded_ore
    assert second.total.admin_spent == sum(kronor for kronor, _ in HISTORY_ADMIN_COSTS.values()) * SEK
    assert second.total.admin_in_period == HISTORY_ADMIN_COSTS[2017][0] * SEK
    assert second.total.paid_in_period == completed.awarded_ore - _start_share(completed.awarded_ore // SEK)
    assert second.lessons is not None and second.reconciled

    # 31 March 2018: nothing more happened in the history; the final report's lessons are still to write
    assert final.total.paid == second.total.paid and final.total.paid_in_period == 0 and final.lessons is None
    assert final.reconciled

    # today: the whole programme, also against the live accounts
    now = services.build(programme, Period(periods.programme_start(programme), periods.today()))
    assert now.reconciled and len(now.checks) == 2 + 7 + 3
    live = checks.live_balances()
    assert now.total.paid == sum(v for (_, kind, _), v in live.items() if kind is AccountKind.paid_out)
    assert now.total.committed == sum(v for (_, kind, _), v in live.items() if kind is AccountKind.commitment)
    assert checks.verify() == []
