"""The programme report: what a programme did in a period, as it stood at the end of a day.

Everything is read from records that never change once written: the event log (when a challenge
was published, a proposal submitted, screened or reviewed, an award booked, a payment made, a
project report approved) and the ledger's transfers. A report as of a past date therefore gives
the same figures after later events. The money is counted twice, from the events and from the
ledger, and the report says whether the two agree to the öre.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from challenges.accounts.models import User
from challenges.accounts.permissions import require_manager
from challenges.calls.events import ChallengePublished
from challenges.calls.models import Challenge
from challenges.core.bus import Fact
from challenges.core.errors import InvalidInput
from challenges.core.models import utcnow
from challenges.extensions import db
from challenges.funding import checks as ledger_checks
from challenges.funding.events import AwardBooked, AwardChangeBooked, PaymentMade
from challenges.funding.models import (
    ACCOUNT_LABELS,
    Account,
    AccountKind,
    Award,
    Programme,
)
from challenges.projects.events import ReportApproved
from challenges.projects.models import Project
from challenges.proposals.events import ProposalSubmitted, ProposalWithdrawn
from challenges.proposals.models import Proposal
from challenges.reports.contents import (
    ChallengeLine,
    Check,
    FundedProject,
    ProgrammeReport,
    ResultLine,
    YearMoney,
)
from challenges.reports.history import Events, by_id, events_until
from challenges.reports.models import ProgrammeLessons
from challenges.reports.money import year_money
from challenges.reports.periods import Period, programme_start, today
from challenges.reports.selection import selection
from challenges.reviews.events import (
    ConflictDeclared,
)

K = AccountKind


def build(programme: Programme, period: Period) -> ProgrammeReport:
    """The report of *programme* for *period*, as it stood at the end of the period's last day."""
    events = events_until(period.end_at)
    year_ids = {y.id for y in programme.years}
    lines = _challenge_lines(events, period, year_ids)
    proposals, smes = _proposals(events, period, lines)
    selections, reviews_total = selection(events, lines, proposals)
    applicants = {p.organisation.org_number for p in proposals.values()}
    declared = [e for e in events[ConflictDeclared] if e.payload["org_number"] in applicants]
    funded = _funded(events, period, year_ids)
    for f in funded:
        funded_line = lines.get(f.award.proposal.challenge_id)
        if funded_line is not None and f.status != "cancelled":
            funded_line.awards += 1
            funded_line.awarded_ore += f.awarded_ore
    years, total, timeline, balances = year_money(programme, period)
    lessons = db.session.scalar(
        sa.select(ProgrammeLessons).where(
            ProgrammeLessons.programme_id == programme.id, ProgrammeLessons.as_of == period.end
        )
    )
    ordered = sorted(lines.values(), key=lambda line: (line.published_at, line.challenge.id))
    return ProgrammeReport(
        programme=programme,
        period=period,
        made_at=utcnow(),
        challenges=ordered,
        owners=sorted({line.challenge.organisation.name for line in ordered}),
        smes=sorted(smes),
        smes_in_period=sum(smes.values()),
        selections=selections,
        conflicts_declared=len(declared),
        conflicts_in_period=sum(1 for e in declared if period.holds(e.occurred_at)),
        funded=funded,
        results=_results(events, period, funded),
        years=years,
        total=total,
        checks=_checks(period, year_ids, funded, total, timeline, balances),
        timeline=timeline,
        lessons=lessons,
        reviews_submitted=reviews_total,
    )


def _challenge_lines(events: Events, period: Period, year_ids: set[int]) -> dict[int, ChallengeLine]:
    """The challenges of the programme's years published by the end, each with when it first was."""
    first_published: dict[int, datetime] = {}
    for e in events[ChallengePublished]:
        first_published.setdefault(e.payload["challenge_id"], e.occurred_at)
    challenges = by_id(
        Challenge,
        set(first_published),
        selectinload(Challenge.organisation),
        selectinload(Challenge.area),
        selectinload(Challenge.themes),
        selectinload(Challenge.criteria),
        where=Challenge.programme_year_id.in_(year_ids),
    )
    return {
        cid: ChallengeLine(c, first_published[cid], period.holds(first_published[cid]))
        for cid, c in challenges.items()
    }


def _proposals(
    events: Events, period: Period, lines: dict[int, ChallengeLine]
) -> tuple[dict[int, Proposal], dict[str, bool]]:
    """The proposals standing submitted at the end (counted on their challenge's line), and each
    applicant SME by name, true when it first submitted within the period."""
    state: dict[int, tuple[str, Fact]] = {}
    for e in sorted(events[ProposalSubmitted] + events[ProposalWithdrawn], key=lambda e: e.occurred_at):
        if e.payload["challenge_id"] in lines:
            state[e.payload["proposal_id"]] = (e.type, e)
    submitted = {pid: e for pid, (kind, e) in state.items() if kind == ProposalSubmitted.type_name}
    first_submitted: dict[int, datetime] = {}
    for e in events[ProposalSubmitted]:
        first_submitted.setdefault(e.payload["proposal_id"], e.occurred_at)
    proposals = by_id(Proposal, set(submitted), selectinload(Proposal.organisation))
    smes: dict[str, bool] = {}
    for pid, e in submitted.items():
        line = lines[e.payload["challenge_id"]]
        line.proposals += 1
        fresh = period.holds(first_submitted[pid])
        line.proposals_in_period += fresh
        name = proposals[pid].organisation.name
        smes[name] = smes.get(name, False) or fresh
    return proposals, smes


def _checks(
    period: Period,
    year_ids: set[int],
    funded: list[FundedProject],
    total: YearMoney,
    timeline: list[tuple[date, int, int, int]],
    balances: dict[tuple[int, AccountKind], int],
) -> list[Check]:
    """The money counted twice, from the events and from the ledger; up to today, also against the
    live accounts."""
    _day, _awarded, paid_by_ledger, _admin = timeline[-1]  # the payment transfers up to the end
    by_kind: dict[AccountKind, int] = defaultdict(int)
    for (_year, kind), amount in balances.items():
        by_kind[kind] += amount
    replayed: dict[AccountKind, int] = defaultdict(int)
    for (_year, kind, _award), amount in ledger_checks.replay(period.end_at, year_ids).balances.items():
        replayed[kind] += amount
    checks = [
        Check(
            _("Funding awarded to the projects, less reductions and cancellations"),
            sum(f.awarded_ore for f in funded),
            total.awarded,
        ),
        Check(_("Paid to the projects"), sum(f.paid_ore for f in funded), paid_by_ledger),
        *(
            Check(
                _(
                    "%(account)s: the ledger's events replayed, against its transfers",
                    account=ACCOUNT_LABELS[kind],
                ),
                replayed[kind],
                by_kind[kind],
            )
            for kind in AccountKind
        ),
    ]
    return checks if period.end < today() else [*checks, *_live_checks(year_ids, total)]


def _live_checks(year_ids: set[int], total: YearMoney) -> list[Check]:
    """The money counted from the events, against the live ledger's accounts (a report up to today)."""
    rows = db.session.execute(
        sa.select(Account.kind, sa.func.sum(Account.balance_ore))
        .where(Account.programme_year_id.in_(year_ids))
        .group_by(Account.kind)
    )
    live = {kind: int(sum_ or 0) for kind, sum_ in rows}
    return [
        Check(_("Paid out, in the live ledger's accounts"), total.paid, live.get(K.paid_out, 0)),
        Check(_("Committed, in the live ledger's accounts"), total.committed, live.get(K.commitment, 0)),
        Check(
            _("Administration spent, in the live ledger's accounts"),
            total.admin_spent,
            live.get(K.admin_spent, 0),
        ),
    ]


def _booked_awards(booked: set[int], year_ids: set[int]) -> tuple[dict[int, Award], dict[int, Project]]:
    """The awards booked in the programme's years, with what their rows show, and their projects."""
    proposal = selectinload(Award.proposal)
    awards = by_id(
        Award,
        booked,
        selectinload(Award.programme_year),
        proposal.selectinload(Proposal.organisation),
        proposal.selectinload(Proposal.versions),  # the project's title is its latest version's
        *(
            proposal.selectinload(Proposal.challenge).selectinload(related)
            for related in (Challenge.organisation, Challenge.area, Challenge.themes)
        ),
        where=Award.programme_year_id.in_(year_ids),
    )
    if not awards:
        return awards, {}
    projects = db.session.scalars(
        sa.select(Project).where(Project.award_id.in_(awards)).options(selectinload(Project.reports))
    )
    return awards, {p.award_id: p for p in projects}


def _funded(events: Events, period: Period, year_ids: set[int]) -> list[FundedProject]:
    """The funded projects as the events tell them up to the end: what was awarded less the changes,
    what was paid (and in the period), running, completed or cancelled."""
    booked = {e.payload["award_id"]: e for e in events[AwardBooked]}
    awards, projects = _booked_awards(set(booked), year_ids)
    completed = {e.payload["report_id"] for e in events[ReportApproved] if e.payload.get("final")}
    funded = {
        aid: FundedProject(
            award,
            projects.get(aid),
            booked[aid].occurred_at,
            booked[aid].payload["amount_ore"],
            0,
            0,
            "running",
        )
        for aid, award in awards.items()
    }
    for e in events[AwardChangeBooked]:
        if (f := funded.get(e.payload["award_id"])) is not None:
            f.awarded_ore -= e.payload["amount_ore"]
            if e.payload["kind"] == "cancelled":
                f.status = "cancelled"
    for e in events[PaymentMade]:
        if (f := funded.get(e.payload["award_id"])) is not None:
            f.paid_ore += e.payload["amount_ore"]
            f.paid_in_period_ore += e.payload["amount_ore"] if period.holds(e.occurred_at) else 0
    for f in funded.values():
        if (
            f.status == "running"
            and f.project is not None
            and any(r.id in completed for r in f.project.reports)
        ):
            f.status = "completed"
    return sorted(funded.values(), key=lambda f: (f.booked_at, f.award.id))


def _results(events: Events, period: Period, funded: list[FundedProject]) -> list[ResultLine]:
    by_report = {r.id: (f, r) for f in funded if f.project is not None for r in f.project.reports}
    latest: dict[int, ResultLine] = {}
    for e in events[ReportApproved]:  # in order: the last approved report of each project counts
        if (found := by_report.get(e.payload["report_id"])) is not None:
            f, report = found
            latest[f.award.id] = ResultLine(f, report, period.holds(e.occurred_at))
    return [latest[f.award.id] for f in funded if f.award.id in latest]


# --- the public list and the lessons ---------------------------------------------------------------------


def funded_projects(programme: Programme) -> list[FundedProject]:
    """Every project the programme has funded, as it stands now (the public, open-data list)."""
    period = Period(programme_start(programme), today())
    types = (AwardBooked, AwardChangeBooked, PaymentMade, ReportApproved)
    return _funded(events_until(period.end_at, types), period, {y.id for y in programme.years})


def save_lessons(programme: Programme, as_of: date, text: str, *, by: User) -> ProgrammeLessons:
    """The programme manager's lessons for the report as of *as_of*; an empty text is refused."""
    require_manager(by, _("Only programme managers write the programme's lessons."))
    if not text.strip():
        raise InvalidInput({"text": _("Write the lessons, or leave the page without saving.")})
    report_days = {date.fromisoformat(d) for d in programme.report_dates or []}
    if as_of < programme_start(programme) or (as_of > today() and as_of not in report_days):
        raise InvalidInput(
            {
                "as_of": _(
                    "Lessons belong to a report: a day from the programme's start to today, "
                    "or one of its report dates."
                )
            }
        )
    row = db.session.scalar(
        sa.select(ProgrammeLessons)
        .where(ProgrammeLessons.programme_id == programme.id, ProgrammeLessons.as_of == as_of)
        .with_for_update()
    )
    if row is None:
        row = ProgrammeLessons(programme_id=programme.id, as_of=as_of, text=text.strip(), updated_by_id=by.id)
        db.session.add(row)
    else:
        row.text, row.updated_by_id = text.strip(), by.id
    db.session.flush()
    return row
