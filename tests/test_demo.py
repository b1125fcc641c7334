"""The demo data of a first run: the 2016–2017 programme with its history, and a person in every role."""

from __future__ import annotations

from datetime import time

import sqlalchemy as sa

from challenges.accounts.models import User
from challenges.calls.jobs import close_due_challenges, send_closing_reminders
from challenges.calls.models import Challenge, ChallengeStatus, ClosingReminder
from challenges.core.formatting import from_local, to_local
from challenges.core.models import Event, HandlingState, utcnow
from challenges.demo import DEMO_PASSWORD, MANAGER, SEK, demo_logins, load_demo
from challenges.demo.records import HISTORY_ADMIN_COSTS, HISTORY_AWARDS, HISTORY_PROPOSALS
from challenges.extensions import db
from challenges.funding import checks
from challenges.funding import services as funding
from challenges.funding.models import (
    Account,
    AccountKind,
    Award,
    AwardStatus,
    InstalmentCondition,
    Posting,
    Programme,
    Transfer,
    TransferKind,
)
from challenges.notifications.jobs import compile_digests
from challenges.notifications.models import MailDigest, MailMessage, MessageState
from challenges.projects import services as projects
from challenges.projects.jobs import send_report_reminders
from challenges.projects.models import Project, ProjectReport, ReportKind, ReportReminder, ReportStatus
from challenges.reviews.jobs import send_due_reminders
from challenges.reviews.models import ReminderSent

HISTORY_YEARS = {2016, 2017}


def _load() -> Programme:
    assert load_demo() is True
    db.session.commit()
    programme = db.session.scalar(sa.select(Programme))
    assert programme is not None
    return programme


def _key(award: Award) -> str:
    """The demo's key of an award's proposal."""
    return next(p.key for p in HISTORY_PROPOSALS if p.title == award.proposal.title)


def test_demo_data_loads_once_and_every_login_works(app, ctx, make_browser):
    assert load_demo() is True
    db.session.commit()
    assert load_demo() is False
    programme = db.session.scalar(sa.select(Programme))
    assert [(y.year, y.allocation_ore, y.admin_cap_ore) for y in programme.years] == [
        (2016, 800_000_000, 40_000_000),
        (2017, 800_000_000, 40_000_000),
    ]
    assert programme.report_dates == ["2016-10-15", "2017-03-31", "2018-03-31"]
    logins = demo_logins()
    assert [r for r, _n, _e in logins].count("evaluator") == 2 and len(logins) == 8
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 8
    for _role, _name, email in logins:
        assert make_browser().login(email, DEMO_PASSWORD).status_code == 303


def test_the_history_happens_in_2016_and_2017_and_today_stays_today(app, ctx):
    started = utcnow()
    _load()
    events = db.session.scalars(sa.select(Event)).all()
    history = [e for e in events if e.occurred_at < started]
    assert {e.occurred_at.year for e in history} == HISTORY_YEARS
    assert all(e.occurred_at >= started for e in events if e.occurred_at.year not in HISTORY_YEARS)
    assert {
        "YearOpened",
        "ChallengePublished",
        "ProposalSubmitted",
        "ConflictDeclared",
        "EvaluatorRecused",
        "DecisionsPublished",
        "FundingAwarded",
        "AwardBooked",
        "ProjectStarted",
        "PaymentApproved",
        "AdminCostBooked",
        "ReportApproved",
    } <= {e.type for e in history}
    # what the workers would have done then was done then: the ledger, the projects, the mail
    assert {h.state for e in history for h in e.handlings} == {HandlingState.done}
    assert all(h.completed_at.year in HISTORY_YEARS for e in history for h in e.handlings)
    assert {t.booked_at.year for t in db.session.scalars(sa.select(Transfer))} == HISTORY_YEARS
    assert {p.posted_at.year for p in db.session.scalars(sa.select(Posting))} == HISTORY_YEARS
    awards = db.session.scalars(sa.select(Award)).all()
    assert {a.awarded_at.year for a in awards} == {2016} and {a.status for a in awards} == {
        AwardStatus.booked
    }
    assert {p.started_on for p in db.session.scalars(sa.select(Project))} == {
        to_local(a.awarded_at).date() for a in awards
    }
    reports = db.session.scalars(sa.select(ProjectReport)).all()
    assert {r.submitted_at.year for r in reports} == HISTORY_YEARS
    assert {r.decided_at.year for r in reports if r.decided_at} == HISTORY_YEARS
    assert {m.created_at.year for m in db.session.scalars(sa.select(MailMessage))} == HISTORY_YEARS
    # today's part is as it was: two challenges open now, the furnace review going on
    challenges = db.session.scalars(sa.select(Challenge)).all()
    assert sorted(c.status.value for c in challenges if c.created_at < started) == ["decided", "decided"]
    assert sum(c.is_open() for c in challenges) == 2
    assert [c.title for c in challenges if c.status is ChallengeStatus.in_review] == [
        "Smarter control of reheating furnaces"
    ]


def test_the_history_leaves_a_consistent_ledger_with_the_figures_the_demo_set_up(app, ctx):
    programme = _load()
    assert checks.verify() == []
    assert checks.rebuild()[1] == []
    year_2016, year_2017 = programme.years
    awarded = sum(HISTORY_AWARDS.values()) * SEK
    approved_final = db.session.scalar(
        sa.select(ProjectReport).where(
            ProjectReport.kind == ReportKind.final, ProjectReport.status == ReportStatus.approved
        )
    )
    plans = {key: funding.plan_for(kronor * SEK) for key, kronor in HISTORY_AWARDS.items()}
    starts = sum(
        amount
        for plan in plans.values()
        for condition, amount in plan
        if condition is InstalmentCondition.start
    )
    final = sum(
        amount
        for condition, amount in plans[_key(approved_final.project.award)]
        if condition is InstalmentCondition.final_report
    )
    balance = funding.balance
    assert balance(year_2016, AccountKind.commitment) + balance(year_2016, AccountKind.paid_out) == awarded
    assert balance(year_2016, AccountKind.paid_out) == starts + final
    assert (
        balance(year_2016, AccountKind.available)
        == year_2016.allocation_ore - year_2016.admin_cap_ore - awarded
    )
    for year in (year_2016, year_2017):
        spent = HISTORY_ADMIN_COSTS[year.year][0] * SEK
        assert balance(year, AccountKind.admin_spent) == spent <= year.admin_cap_ore
        assert balance(year, AccountKind.admin_envelope) == year.admin_cap_ore - spent
    assert balance(year_2017, AccountKind.available) == year_2017.allocation_ore - year_2017.admin_cap_ore
    assert balance(year_2017, AccountKind.paid_out) == 0


def test_one_final_report_is_approved_and_paid_once_and_one_waits_for_the_manager(app, ctx, drain):
    _load()
    finals = {
        r.status: r
        for r in db.session.scalars(sa.select(ProjectReport).where(ProjectReport.kind == ReportKind.final))
    }
    assert set(finals) == {ReportStatus.approved, ReportStatus.submitted}
    approved, waiting = finals[ReportStatus.approved], finals[ReportStatus.submitted]

    award = approved.project.award
    [instalment] = [i for i in award.instalments if i.condition is InstalmentCondition.final_report]
    assert instalment.approved_at == approved.decided_at
    payments = [
        e
        for e in db.session.scalars(sa.select(Event).where(Event.type == "PaymentApproved"))
        if e.payload["instalment_id"] == instalment.id
    ]
    assert len(payments) == 1 and db.session.get(Posting, payments[0].id).booked
    commitment = db.session.scalar(sa.select(Account).where(Account.award_id == award.id))
    paid = db.session.scalars(
        sa.select(Transfer.amount_ore).where(
            Transfer.source_id == commitment.id, Transfer.kind == TransferKind.payment
        )
    ).all()
    assert sorted(paid) == sorted(i.amount_ore for i in award.instalments)
    assert commitment.balance_ore == 0

    assert waiting.decided_at is None and waiting.submitted_at.year == 2017
    other = waiting.project.award
    assert [i.approved_at for i in other.instalments if i.condition is InstalmentCondition.final_report] == [
        None
    ]
    # a demo user approves it today: the last instalment is paid now, and the award is paid in full
    started = utcnow()
    manager = db.session.scalar(sa.select(User).where(User.email == MANAGER[1]))
    projects.approve_report(waiting, by=manager)
    drain()
    db.session.refresh(other)
    assert funding.paid(other) == other.amount_ore == HISTORY_AWARDS[_key(other)] * SEK
    assert all(
        i.approved_at >= started for i in other.instalments if i.condition is InstalmentCondition.final_report
    )
    assert checks.verify() == [] and checks.rebuild()[1] == []


def test_the_periodic_jobs_find_nothing_to_do_for_the_history(app, ctx):
    _load()
    events = db.session.scalar(sa.select(sa.func.count(Event.id)))
    now = utcnow()
    digest_time = max(now, from_local(to_local(now).date(), time(app.config["DIGEST_HOUR"])))
    assert close_due_challenges() == 0
    assert send_due_reminders() == 0
    assert send_closing_reminders() == 0
    assert send_report_reminders() == 0
    assert compile_digests(digest_time) == 0
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == events
    for reminder in (ReminderSent, ClosingReminder, ReportReminder, MailDigest):
        assert db.session.scalar(sa.select(sa.func.count()).select_from(reminder)) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count(MailMessage.id)).where(MailMessage.state == MessageState.held)
        )
        == 0
    )
