"""The ledger against a plain model: random sequences, re-deliveries, crashes, two workers at once."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from challenges.core.events import record, run_handler
from challenges.core.inline import handle_pending
from challenges.core.models import Event, EventHandling, HandlingState, utcnow
from challenges.core.sweeper import sweep_events
from challenges.extensions import db
from challenges.funding import booking, checks, events, ledger, services
from challenges.funding.models import (
    Account,
    AccountKind,
    Award,
    AwardStatus,
    Posting,
    ProgrammeYear,
    Transfer,
)
from challenges.notifications.models import MailMessage
from tests.factories import make_challenge, make_year
from tests.funding.conftest import _book
from tests.proposals.conftest import make_proposal

SEK = 100
_years = itertools.count(3000)


def _balances(year: ProgrammeYear) -> dict[tuple[AccountKind, int | None], int]:
    return {
        (a.kind, a.award_id): a.balance_ore
        for a in db.session.scalars(sa.select(Account).where(Account.programme_year_id == year.id))
    }


@dataclass
class Model:
    """The ledger as a child would keep it: a few numbers per year."""

    available: int
    envelope: int
    commitments: dict[int, int] = field(default_factory=dict)
    paid: int = 0
    admin_spent: int = 0
    returned: int = 0
    closed: bool = False


class LedgerMachine(RuleBasedStateMachine):
    """Random awards, payments, reductions, cancellations, admin costs and a year close."""

    proposal_id: int

    @initialize()
    def open_a_year(self):
        self.year = make_year(next(_years), allocation_sek=1_000_000)
        services.open_year(self.year)
        self.model = Model(available=950_000 * SEK, envelope=50_000 * SEK)
        self.awards: list[int] = []

    def _award_row(self, amount: int) -> Award:
        award = Award(
            proposal_id=LedgerMachine.proposal_id, programme_year_id=self.year.id, amount_ore=amount
        )
        db.session.add(award)
        db.session.flush()
        return award

    @rule(amount=st.integers(1, 400_000 * SEK))
    def award(self, amount):
        award = self._award_row(amount)
        _book(events.FundingAwarded, award_id=award.id, programme_year_id=self.year.id, amount_ore=amount)
        if not self.model.closed and amount <= self.model.available:
            self.model.available -= amount
            self.model.commitments[award.id] = amount
            assert award.status is AwardStatus.booked
        else:
            assert award.status is AwardStatus.refused
        self.awards.append(award.id)

    @precondition(lambda self: self.awards)
    @rule(data=st.data(), kind=st.sampled_from(["pay", "reduce", "cancel"]))
    def change(self, data, kind):
        award_id = data.draw(st.sampled_from(self.awards))
        held = self.model.commitments.get(award_id, 0)
        amount = held if kind == "cancel" else data.draw(st.integers(1, max(1, held + 50_000 * SEK)))
        event_type = {
            "pay": events.PaymentApproved,
            "reduce": events.AwardReduced,
            "cancel": events.AwardCancelled,
        }[kind]
        extra = {"instalment_id": 0} if kind == "pay" else {}
        row = _book(event_type, award_id=award_id, programme_year_id=self.year.id, amount_ore=amount, **extra)
        ok = not self.model.closed and amount <= held
        assert db.session.get(Posting, row.id).booked is ok
        if ok:
            self.model.commitments[award_id] = held - amount
            if kind == "pay":
                self.model.paid += amount
            else:
                self.model.available += amount

    @rule(amount=st.integers(1, 30_000 * SEK))
    def admin_cost(self, amount):
        row = _book(events.AdminCostBooked, programme_year_id=self.year.id, amount_ore=amount, memo="Staff")
        ok = not self.model.closed and amount <= self.model.envelope
        assert db.session.get(Posting, row.id).booked is ok
        if ok:
            self.model.envelope -= amount
            self.model.admin_spent += amount

    @rule(
        amounts=st.lists(st.integers(1, 400_000 * SEK), min_size=2, max_size=5),
        payment=st.integers(1, 150_000 * SEK),
    )
    def awards_and_a_payment_in_one_batch(self, amounts, payment):
        """What the ledger worker does with events that wait: several posted in one transaction, in
        order, an award's payment right after the award (its commitment account not yet written)."""
        awards = [self._award_row(amount) for amount in amounts]
        rows = [
            record(
                events.FundingAwarded(award_id=a.id, programme_year_id=self.year.id, amount_ore=a.amount_ore)
            )
            for a in awards
        ]
        rows.append(
            record(
                events.PaymentApproved(
                    award_id=awards[0].id, programme_year_id=self.year.id, amount_ore=payment, instalment_id=0
                )
            )
        )
        db.session.flush()
        booking.book_many(rows)
        booking.book_many(rows)  # delivered twice: nothing more
        for award in awards:
            if not self.model.closed and award.amount_ore <= self.model.available:
                self.model.available -= award.amount_ore
                self.model.commitments[award.id] = award.amount_ore
                assert award.status is AwardStatus.booked
            else:
                assert award.status is AwardStatus.refused
            self.awards.append(award.id)
        held = self.model.commitments.get(awards[0].id, 0)
        paid = not self.model.closed and payment <= held
        assert db.session.get(Posting, rows[-1].id).booked is paid
        if paid:
            self.model.commitments[awards[0].id] = held - payment
            self.model.paid += payment
        times = [db.session.get(Posting, row.id).posted_at for row in rows]
        assert times == sorted(times) and len(set(times)) == len(times)  # a replay takes them in this order

    @precondition(lambda self: not self.model.closed)
    @rule()
    def close(self):
        _book(events.YearClosed, programme_year_id=self.year.id)
        m = self.model
        m.returned += m.available + m.envelope + sum(m.commitments.values())
        m.available = m.envelope = 0
        m.commitments = dict.fromkeys(m.commitments, 0)
        m.closed = True
        db.session.expire_all()
        assert self.year.closed_at is not None

    @invariant()
    def balances_equal_the_model(self):
        got = _balances(self.year)
        m = self.model
        assert got.get((AccountKind.available, None), 0) == m.available
        assert got.get((AccountKind.admin_envelope, None), 0) == m.envelope
        assert got.get((AccountKind.paid_out, None), 0) == m.paid
        assert got.get((AccountKind.admin_spent, None), 0) == m.admin_spent
        assert got.get((AccountKind.returned, None), 0) == m.returned
        for award_id, held in m.commitments.items():
            assert got.get((AccountKind.commitment, award_id), 0) == held
        assert got[(AccountKind.allocation, None)] == -1_000_000 * SEK
        assert sum(got.values()) == 0  # double entry

    @invariant()
    def no_invariant_is_broken(self):
        assert checks.verify_accounts() == []  # the awards' rows are the services' to keep, not these rules'


def test_random_sequences_against_the_model(people):
    LedgerMachine.proposal_id = make_proposal(people["sme"], make_challenge(people["owner"])).id
    db.session.flush()
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=12,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    db.session.commit()
    _rebuilt, differences = checks.rebuild()
    assert differences == []  # replaying the event log gives every balance to the öre


# --- single properties -----------------------------------------------------------------------------------


def test_the_year_opens_with_the_capped_envelope(year):
    got = _balances(year)
    assert got[(AccountKind.available, None)] == 7_600_000 * SEK
    assert got[(AccountKind.admin_envelope, None)] == 400_000 * SEK  # floor(5 % of 8 000 000 SEK)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 2


def test_a_redelivery_changes_nothing_and_another_amount_is_an_error(year, award_row):
    row = _book(
        events.FundingAwarded,
        award_id=award_row.id,
        programme_year_id=year.id,
        amount_ore=award_row.amount_ore,
    )
    before = _balances(year)
    posting, fresh = ledger.post(row)
    assert posting.booked and not fresh
    assert _balances(year) == before
    db.session.expunge(row)  # the event log itself refuses a change: this one lives in the test only
    row.payload = {**row.payload, "amount_ore": 1}
    with pytest.raises(ledger.LedgerConflict) as conflict:
        ledger.post(row)
    assert str(conflict.value) == (
        f"event {row.id} was posted as FundingAwarded of {award_row.amount_ore} öre; "
        "now it says FundingAwarded of 1 öre"
    )
    assert _balances(year) == before


def test_an_event_for_a_year_that_does_not_exist_is_named_and_posts_nothing(year):
    missing = year.id + 1000
    row = record(events.AdminCostBooked(programme_year_id=missing, amount_ore=1, memo="nowhere"))
    other = record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=1, memo="here"))
    db.session.flush()
    before = _balances(year), db.session.scalar(sa.select(sa.func.count()).select_from(Posting))
    with pytest.raises(LookupError) as refused:
        ledger.post_many([other, row])
    assert str(refused.value) == f"programme year(s) [{missing}] not found"
    db.session.rollback()
    assert (_balances(year), db.session.scalar(sa.select(sa.func.count()).select_from(Posting))) == before


def test_the_ledger_reads_a_year_as_it_is_when_locked_not_as_the_session_last_saw_it(year, award_row):
    """A year this session read before another transaction closed it is read again under its lock:
    the posting is refused as after a close, not booked into the closed year."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite reads one snapshot for a whole transaction: another's commit cannot show in it")
    assert year.closed_at is None  # the session holds the open year
    with db.engine.connect() as other:
        other.execute(sa.update(ProgrammeYear).where(ProgrammeYear.id == year.id).values(closed_at=utcnow()))
        other.commit()
    row = record(
        events.FundingAwarded(
            award_id=award_row.id, programme_year_id=year.id, amount_ore=award_row.amount_ore
        )
    )
    db.session.flush()
    [(posting, fresh)] = ledger.post_many([row])
    assert fresh and not posting.booked


def test_postings_of_one_instant_are_put_one_microsecond_apart_in_their_order(year, monkeypatch):
    """A replay takes the events in the order of their postings' times: a batch posted within one tick of
    the clock (or with the clock stepping back) still gets strictly growing times."""
    instant = utcnow()
    ticks = iter([instant, instant, instant - timedelta(seconds=1), instant + timedelta(seconds=5)])
    monkeypatch.setattr(ledger, "utcnow", lambda: next(ticks))
    rows = [
        record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=1, memo=f"cost {i}"))
        for i in range(4)
    ]
    db.session.flush()
    postings = [posting for posting, _fresh in ledger.post_many(rows)]
    micro = timedelta(microseconds=1)
    assert [p.posted_at for p in postings] == [
        instant,
        instant + micro,
        instant + 2 * micro,
        instant + timedelta(seconds=5),
    ]


def test_the_book_reads_the_years_own_accounts_and_those_of_the_awards_it_is_about_only(booked):
    year = booked
    services.open_year(make_year(2032, allocation_sek=1_000_000))
    db.session.commit()
    cost = record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=1, memo="read"))
    db.session.flush()
    db.session.expunge_all()
    read: list[tuple] = []

    def note(account, _context):
        read.append((account.programme_year_id, account.kind, account.award_id))

    sa.event.listen(Account, "load", note)
    try:
        ledger.post_many([cost])
    finally:
        sa.event.remove(Account, "load", note)
    # the year's own accounts, in one read: not the award's commitment, nothing of the other year
    assert read and {key[0] for key in read} == {year.id} and all(key[2] is None for key in read)
    assert (year.id, AccountKind.admin_envelope, None) in read


def test_an_event_twice_in_one_batch_is_posted_once(year):
    row = record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=7, memo="twice"))
    db.session.flush()
    before = _balances(year).get((AccountKind.admin_spent, None), 0)
    [(first, fresh), (again, fresh_again)] = ledger.post_many([row, row])
    assert (fresh, fresh_again) == (True, False) and again is first
    assert _balances(year)[(AccountKind.admin_spent, None)] == before + 7


def test_transfers_are_immutable_in_the_database(year):
    """Refused by the triggers, or before them by the privileges of the platform's own role."""
    with pytest.raises(sa.exc.DatabaseError, match="immutable|permission denied"), db.session.begin_nested():
        db.session.execute(sa.text("UPDATE ledger_transfer SET amount_ore = 1"))
    with pytest.raises(sa.exc.DatabaseError, match="immutable|permission denied"), db.session.begin_nested():
        db.session.execute(sa.text("DELETE FROM ledger_transfer"))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Transfer)) == 2


def test_a_closed_year_takes_nothing(year, award_row):
    _book(events.YearClosed, programme_year_id=year.id)
    assert _balances(year)[(AccountKind.returned, None)] == 8_000_000 * SEK
    row = _book(events.FundingAwarded, award_id=award_row.id, programme_year_id=year.id, amount_ore=1)
    posting = db.session.get(Posting, row.id)
    assert not posting.booked and posting.reason == "year_closed"
    assert award_row.status is AwardStatus.refused


def test_a_crash_in_the_middle_of_a_posting_books_it_once_on_retry(app, year, award_row, monkeypatch):
    row = record(
        events.FundingAwarded(award_id=award_row.id, programme_year_id=year.id, amount_ore=200_000 * SEK)
    )
    db.session.commit()
    real_move = ledger.DatabaseBook.move
    crashes = iter([True])

    def crashing_move(self, *args):
        real_move(self, *args)  # the transfer is written, the balances moved ...
        if next(crashes, False):
            raise SystemError("the worker died here")  # ... and then the process dies

    monkeypatch.setattr(ledger.DatabaseBook, "move", crashing_move)
    handler = "funding_post_to_ledger"
    with pytest.raises(SystemError):
        run_handler(row.id, handler)
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Transfer).where(Transfer.event_id == row.id))
        == 0
    )
    assert run_handler(row.id, handler) == "handled"
    assert run_handler(row.id, handler) == "already handled"
    assert (
        db.session.scalar(sa.select(sa.func.count()).select_from(Transfer).where(Transfer.event_id == row.id))
        == 1
    )
    assert db.session.get(Award, award_row.id).status is AwardStatus.booked
    assert checks.verify() == []


@pytest.mark.processes
def test_two_workers_fifty_awards_exactly_thirty_eight_booked(
    app, people, year, redis_server, smtp, tmp_path
):
    proposal = make_proposal(people["sme"], make_challenge(people["owner"]))
    for _ in range(50):
        award = Award(proposal_id=proposal.id, programme_year_id=year.id, amount_ore=200_000 * SEK)
        db.session.add(award)
        db.session.flush()
        record(
            events.FundingAwarded(award_id=award.id, programme_year_id=year.id, amount_ore=award.amount_ore)
        )
    db.session.commit()  # 50 ledger jobs now wait in Redis
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_server.url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "test",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(app.config["SMTP_PORT"]),
        "EVENT_LEASE_SECONDS": "3600",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "worker", "work", "--burst"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    for w in workers:
        _out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err.decode()[-2000:]
    db.session.expire_all()
    statuses = [
        a.status for a in db.session.scalars(sa.select(Award).where(Award.programme_year_id == year.id))
    ]
    assert statuses.count(AwardStatus.booked) == 38 and statuses.count(AwardStatus.refused) == 12
    got = _balances(year)
    assert got[(AccountKind.available, None)] == 0
    assert sum(v for (kind, _a), v in got.items() if kind is AccountKind.commitment) == 7_600_000 * SEK
    assert checks.verify() == []
    assert checks.rebuild()[1] == []


# --- the ledger worker: waiting events in batches ---------------------------------------------------------


def _ledger_jobs() -> list[str]:
    from rq import Queue

    from challenges.extensions import get_redis

    return Queue("ledger", connection=get_redis()).get_job_ids()


def _pending_awards(proposal_id: int, year: ProgrammeYear, n: int, amount: int = 1_000 * SEK) -> list[Award]:
    awards = []
    for _ in range(n):
        award = Award(proposal_id=proposal_id, programme_year_id=year.id, amount_ore=amount)
        db.session.add(award)
        db.session.flush()
        award.event_id = record(
            events.FundingAwarded(award_id=award.id, programme_year_id=year.id, amount_ore=amount)
        ).id
        awards.append(award)
    return awards


def test_commits_of_ledger_events_wake_one_drain_that_books_them_all(people, year, award_row, drain, smtp):
    _pending_awards(award_row.proposal_id, year, 5)
    db.session.commit()
    [job_id] = _ledger_jobs()
    assert job_id.startswith("drain-funding_post_to_ledger-")
    _pending_awards(award_row.proposal_id, year, 5)
    db.session.commit()
    assert _ledger_jobs() == [job_id]  # the waiting drain will see these too
    drain()
    db.session.expire_all()
    statuses = db.session.scalars(sa.select(Award.status).where(Award.event_id.is_not(None))).all()
    assert statuses == [AwardStatus.booked] * 10
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(EventHandling)
            .where(EventHandling.state != HandlingState.done)
        )
        == 0
    )
    _pending_awards(award_row.proposal_id, year, 1)
    db.session.commit()  # the drain has run: a new commit wakes a new one
    assert len(_ledger_jobs()) == 1 and _ledger_jobs() != [job_id]


def test_a_drain_books_its_waiting_events_as_one_batch_and_marks_each_done(
    app, people, year, award_row, monkeypatch, caplog
):
    """The batch handler gets every waiting event with its record, in one call, and each handling is
    marked done at that moment: not left to the one-at-a-time fallback, which would hide a broken batch."""
    import logging

    from challenges.core.events import run_batches

    awards = _pending_awards(award_row.proposal_id, year, 3)
    db.session.commit()
    calls = []
    book = booking.book_many

    def watched(facts):
        calls.append([fact.type for fact in facts])
        return book(facts)

    monkeypatch.setattr(booking, "book_many", watched)
    with caplog.at_level(logging.WARNING, logger="challenges.core.events"):
        assert run_batches("funding_post_to_ledger") == "4 handled"  # the year's opening and three awards
    assert "one at a time" not in caplog.text
    assert calls == [["YearOpened"] + ["FundingAwarded"] * 3]  # one call, in commit order
    db.session.expire_all()
    handlings = db.session.scalars(
        sa.select(EventHandling).where(EventHandling.handler == "funding_post_to_ledger")
    ).all()
    assert {(h.state, h.attempts) for h in handlings} == {(HandlingState.done, 1)}
    assert all(h.completed_at is not None for h in handlings)
    assert [db.session.get(Award, a.id).status for a in awards] == [AwardStatus.booked] * 3


def test_a_failing_batch_books_the_good_events_and_retries_the_bad_one_alone(
    app, people, year, award_row, monkeypatch
):
    from rq import Queue
    from rq.job import Job
    from rq.registry import ScheduledJobRegistry

    from challenges.core.events import run_batches
    from challenges.extensions import get_redis

    awards = _pending_awards(award_row.proposal_id, year, 4)
    bad = awards[2].id
    db.session.commit()
    settle = booking._settle_award

    def broken(award, **kwargs):
        if award.id == bad:
            raise RuntimeError("this award breaks the batch")
        settle(award, **kwargs)

    monkeypatch.setattr(booking, "_settle_award", broken)
    monkeypatch.setitem(app.config, "EVENT_RETRY_INTERVALS", [30, 120])
    before = datetime.now(UTC)
    assert run_batches("funding_post_to_ledger") == "4 handled"  # the year's opening and three awards
    db.session.expire_all()
    assert [db.session.get(Award, a.id).status for a in awards] == [
        AwardStatus.booked,
        AwardStatus.booked,
        AwardStatus.pending,
        AwardStatus.booked,
    ]
    handling = db.session.get(EventHandling, (awards[2].event_id, "funding_post_to_ledger"))
    assert (handling.state, handling.attempts) == (HandlingState.pending, 1)
    assert "this award breaks the batch" in handling.last_error
    retry = f"ev-{awards[2].event_id}-funding_post_to_ledger"
    scheduled = ScheduledJobRegistry(queue=Queue("ledger", connection=get_redis()))
    assert retry in scheduled.get_job_ids()
    # the retry is the event's own job: after the first interval, with the other intervals still to come
    job = Job.fetch(retry, connection=get_redis())
    assert (job.func_name, job.args, job.origin) == (
        "challenges.core.events.run_handler",
        (awards[2].event_id, "funding_post_to_ledger"),
        "ledger",
    )
    assert (job.timeout, job.retries_left, job.retry_intervals) == (300, 1, [120])
    assert (job.result_ttl, job.failure_ttl) == (3600, 30 * 24 * 3600)
    assert job.description == f"funding_post_to_ledger for event {awards[2].event_id}"
    at = scheduled.get_scheduled_time(retry)
    assert before + timedelta(seconds=29) <= at <= datetime.now(UTC) + timedelta(seconds=31)
    assert run_batches("funding_post_to_ledger") == "0 handled"  # a drain leaves it to its own job
    monkeypatch.setattr(booking, "_settle_award", settle)
    assert run_handler(awards[2].event_id, "funding_post_to_ledger") == "handled"  # that job, when it runs
    assert db.session.get(Award, bad).status is AwardStatus.booked
    assert checks.verify() == [] and checks.rebuild()[1] == []


@pytest.mark.parametrize("intervals", [[30], []])
def test_a_failed_event_whose_retry_cannot_be_scheduled_is_left_to_the_sweeper(
    app, people, year, award_row, monkeypatch, caplog, intervals
):
    """Redis away (or no retries configured): the failure is recorded, nothing raises, nothing is queued."""
    import logging

    from redis import Redis
    from rq import Queue
    from rq.registry import ScheduledJobRegistry

    from challenges.core import events as core_events
    from challenges.core import jobs
    from challenges.extensions import get_redis

    [award] = _pending_awards(award_row.proposal_id, year, 1)
    db.session.commit()

    def broken(award, **kwargs):
        raise RuntimeError("this award breaks")

    monkeypatch.setattr(booking, "_settle_award", broken)
    monkeypatch.setitem(app.config, "EVENT_RETRY_INTERVALS", intervals)
    live = get_redis()
    monkeypatch.setattr(
        jobs, "get_redis", lambda: Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    )
    with caplog.at_level(logging.WARNING, logger="challenges.core.events"):
        assert core_events._one_at_a_time([(award.event_id, "funding_post_to_ledger", "ledger")]) == 0
    left = f"the retry of funding_post_to_ledger for event {award.event_id} is left to the sweeper"
    assert (left in caplog.text) is bool(intervals)
    handling = db.session.get(EventHandling, (award.event_id, "funding_post_to_ledger"))
    assert (handling.state, handling.attempts) == (HandlingState.pending, 1)
    assert ScheduledJobRegistry(queue=Queue("ledger", connection=live)).get_job_ids() == []


def test_the_sweeper_wakes_a_drain_when_redis_lost_it(people, year, award_row, redis_server, drain, smtp):

    redis_server.stop()
    [award] = _pending_awards(award_row.proposal_id, year, 1)
    db.session.commit()  # the wake-up is lost with Redis
    redis_server.start()
    assert _ledger_jobs() == []
    sweep_events()
    [job_id] = _ledger_jobs()
    assert job_id.startswith("drain-funding_post_to_ledger-")
    sweep_events()
    assert _ledger_jobs() == [job_id]  # the drain it woke is waiting: no second one
    drain()
    db.session.expire_all()
    assert db.session.get(Award, award.id).status is AwardStatus.booked


def test_the_sweeper_wakes_a_drain_behind_a_long_line_of_single_retries(
    people, year, award_row, redis_server, drain, smtp
):

    handle_pending()  # nothing older waits
    retried = _pending_awards(
        award_row.proposal_id, year, 3
    )  # failed in a batch: each goes on as its own job
    db.session.flush()
    db.session.execute(
        sa.update(EventHandling)
        .where(EventHandling.event_id.in_([a.event_id for a in retried]))
        .values(attempts=1)
    )
    db.session.commit()
    redis_server.stop()
    [award] = _pending_awards(award_row.proposal_id, year, 1)
    db.session.commit()  # the wake-up is lost with Redis
    redis_server.start()
    sweep_events(limit=2)  # fewer than the older single retries
    assert any(job_id.startswith("drain-funding_post_to_ledger-") for job_id in _ledger_jobs())
    drain()
    db.session.expire_all()
    assert db.session.get(Award, award.id).status is AwardStatus.booked


def test_one_drain_at_a_time_books_in_commit_order(app, people, year, award_row, monkeypatch):
    from challenges.core.events import drain_lock_key, run_batches

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    key = drain_lock_key("funding_post_to_ledger")
    awards = _pending_awards(award_row.proposal_id, year, 3)
    db.session.commit()
    book_many, seen = booking.book_many, []

    def book_while_looking(rows, **kwargs):
        with db.engine.connect() as other:  # another drain would wait for this one
            seen.append(other.scalar(sa.select(sa.func.pg_try_advisory_lock(key))))
        book_many(rows, **kwargs)

    monkeypatch.setattr(booking, "book_many", book_while_looking)
    waiting = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(EventHandling)
        .where(
            EventHandling.handler == "funding_post_to_ledger", EventHandling.state == HandlingState.pending
        )
    )
    assert run_batches("funding_post_to_ledger") == f"{waiting} handled"
    assert seen == [False]
    with db.engine.connect() as other:  # and the lock is free once the drain is over
        assert other.scalar(sa.select(sa.func.pg_try_advisory_lock(key))) is True
        other.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
    db.session.expire_all()
    assert {db.session.get(Award, a.id).status for a in awards} == {AwardStatus.booked}


@pytest.mark.timeout(60)  # a drain that waited for the lock would wait on itself here
def test_a_drain_that_finds_another_running_ends_at_once_and_the_other_drains_again(
    app, people, year, award_row, monkeypatch
):
    from rq import Queue

    from challenges.core.events import run_batches
    from challenges.extensions import get_redis

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    _pending_awards(award_row.proposal_id, year, 2)
    db.session.commit()
    Queue("ledger", connection=get_redis()).empty()
    book_many, second = booking.book_many, []

    def book_while_another_drain_starts(rows, **kwargs):
        if not second:  # a second worker takes the drain woken by a new commit
            second.append(run_batches("funding_post_to_ledger"))
        book_many(rows, **kwargs)

    monkeypatch.setattr(booking, "book_many", book_while_another_drain_starts)
    waiting = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(EventHandling)
        .where(
            EventHandling.handler == "funding_post_to_ledger", EventHandling.state == HandlingState.pending
        )
    )
    assert run_batches("funding_post_to_ledger") == f"{waiting} handled"
    assert second == ["another drain is running: it drains again when it is done"]  # it did not wait
    assert [job_id.startswith("drain-funding_post_to_ledger-") for job_id in _ledger_jobs()] == [True]
    monkeypatch.setattr(booking, "book_many", book_many)
    assert run_batches("funding_post_to_ledger") == "0 handled"
    assert len(_ledger_jobs()) == 1  # a drain that nobody found busy wakes none


def test_a_batch_runs_as_many_statements_for_twenty_events_as_for_one(people, year, award_row):
    from tests.calls.test_catalogue import counting_queries

    counts = []
    for n in (1, 20):
        awards = _pending_awards(award_row.proposal_id, year, n)
        db.session.flush()
        rows = [db.session.get(Event, a.event_id) for a in awards]
        with counting_queries() as statements:
            booking.book_many(rows)
        if db.engine.dialect.name == "sqlite":  # SQLite hands back generated keys one row at a time
            statements = [
                s
                for s in statements
                if not s.startswith(("INSERT INTO ledger_account", "INSERT INTO ledger_transfer"))
            ]
        counts.append(len(statements))
        assert {a.status for a in awards} == {AwardStatus.booked}
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("kind", ["payment", "reduction"])
def test_what_a_batch_tells_the_applicants_costs_as_many_statements_for_twenty_as_for_one(
    people, year, award_row, kind
):
    """The events that tell the applicants of booked payments and reductions are written with the batch,
    not flushed one by one (and so are those that say an award or a posting was refused)."""
    from tests.calls.test_catalogue import counting_queries

    counts = []
    for n in (1, 20):
        awards = _pending_awards(award_row.proposal_id, year, n)
        db.session.flush()
        booking.book_many([db.session.get(Event, a.event_id) for a in awards])
        if kind == "payment":
            made = [
                events.PaymentApproved(
                    award_id=a.id, instalment_id=a.id, programme_year_id=year.id, amount_ore=1
                )
                for a in awards
            ]
        else:
            made = [
                events.AwardReduced(award_id=a.id, programme_year_id=year.id, amount_ore=1) for a in awards
            ]
        rows = [record(e) for e in made]
        db.session.flush()
        with counting_queries() as statements:
            booking.book_many(rows)
        told = "PaymentMade" if kind == "payment" else "AwardChangeBooked"
        assert sum(s.startswith("INSERT INTO event_log") for s in statements) == 1  # all of them at once
        counts.append(len([s for s in statements if not s.startswith("INSERT INTO ledger_")]))
        assert db.session.scalar(sa.select(sa.func.count()).where(Event.type == told)) >= n
    assert counts[0] == counts[1], counts


@pytest.mark.parametrize("kind", ["award", "admin cost"])
def test_the_refusals_of_a_batch_are_written_with_it(people, year, award_row, kind):
    from tests.calls.test_catalogue import counting_queries

    for n in (1, 20):
        if kind == "award":  # more than the year has: each refused
            rows = [
                db.session.get(Event, a.event_id)
                for a in _pending_awards(award_row.proposal_id, year, n, amount=9_000_000 * SEK)
            ]
        else:  # more than the administration envelope holds: each refused
            rows = [
                record(
                    events.AdminCostBooked(programme_year_id=year.id, amount_ore=500_000 * SEK, memo=f"{i}")
                )
                for i in range(n)
            ]
        db.session.flush()
        with counting_queries() as statements:
            booking.book_many(rows)
        told = "AwardRefused" if kind == "award" else "PostingRefused"
        assert sum(s.startswith("INSERT INTO event_log") for s in statements) == 1  # all of them at once
        assert db.session.scalar(sa.select(sa.func.count()).where(Event.type == told)) >= n


def test_the_cli_verifies_and_rebuilds(app, booked):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 0 and "The ledger is consistent." in result.output
    result = runner.invoke(args=["ledger", "rebuild"])
    assert result.exit_code == 0 and "every balance matches to the öre" in result.output
    account = db.session.scalar(sa.select(Account).where(Account.kind == AccountKind.available))
    account.balance_ore += 1  # a cached balance that drifted from its transfers
    db.session.commit()
    result = runner.invoke(args=["ledger", "verify"])
    assert result.exit_code == 1 and "transfers say" in result.output
    result = runner.invoke(args=["ledger", "rebuild"])
    assert result.exit_code == 1 and "DIFFERENCE" in result.output
    rebuilt, differences = checks.rebuild()
    (key,) = [key for key in rebuilt if key[1] is AccountKind.available]
    assert differences == [f"{key}: live {account.balance_ore} öre, rebuilt {account.balance_ore - 1} öre"]


KILLED_WORKER = """
import os, signal, sys
from challenges import create_app
from challenges.core.events import run_handler
from challenges.funding import ledger

real_move = ledger.DatabaseBook.move

def move(self, *args):
    real_move(self, *args)  # the transfer row is written and the balances moved, not committed ...
    os.kill(os.getpid(), signal.SIGKILL)  # ... when the process is killed

ledger.DatabaseBook.move = move
with create_app().app_context():
    run_handler(sys.argv[1], "funding_post_to_ledger")
"""


def test_a_worker_killed_mid_posting_is_booked_once_by_the_retry(
    app, year, award_row, redis_server, tmp_path
):
    event_id = record(
        events.FundingAwarded(award_id=award_row.id, programme_year_id=year.id, amount_ore=200_000 * SEK)
    ).id
    award_id = award_row.id
    db.session.commit()  # and no reads until the worker is gone: SQLite would hold its write lock
    env = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": redis_server.url,
        "INSTANCE_PATH": str(tmp_path),
        "SECRET_KEY": "test",
    }
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, event_id], env=env, capture_output=True, timeout=60
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    db.session.expire_all()
    transfers = sa.select(sa.func.count()).select_from(Transfer).where(Transfer.event_id == event_id)
    assert db.session.scalar(transfers) == 0
    assert run_handler(event_id, "funding_post_to_ledger") == "handled"  # the retry
    assert run_handler(event_id, "funding_post_to_ledger") == "already handled"
    assert db.session.scalar(transfers) == 1
    assert db.session.get(Award, award_id).status is AwardStatus.booked
    assert checks.verify() == [] and checks.rebuild()[1] == []


def test_the_ledger_page_and_its_csv_cost_the_same_with_more_awards(app, people, year, make_browser):
    from tests.calls.test_catalogue import counting_queries

    manager = make_browser("manager@agency.example.com")
    proposal = make_proposal(people["sme"], make_challenge(people["owner"]), title="=cmd|' /C calc'!A0")
    counts = []
    for n in (1, 4):
        while db.session.scalar(sa.select(sa.func.count()).select_from(Award)) < n:
            award = Award(proposal_id=proposal.id, programme_year_id=year.id, amount_ore=1_000 * SEK)
            db.session.add(award)
            db.session.flush()
            _book(
                events.FundingAwarded,
                award_id=award.id,
                programme_year_id=year.id,
                amount_ore=award.amount_ore,
            )
        db.session.commit()
        with counting_queries() as page_sql:
            assert manager.get(f"/admin/ledger/{year.id}").status_code == 200
        with counting_queries() as csv_sql:
            body = manager.get(f"/admin/ledger/{year.id}/transfers.csv").get_data(as_text=True)
        counts.append((len(page_sql), len(csv_sql)))
    assert counts[0] == counts[1]
    assert body.count("Commitment: =cmd") == 4  # each award's account is named by its proposal


def test_a_drain_that_loses_redis_right_after_taking_the_lock_lets_it_go(
    app, people, year, award_row, monkeypatch
):
    """Redis fails between the lock and the drain's work: the drain goes on, and the lock is freed
    after it (held for ever, every other worker's drain would end at once)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from challenges.core.events import drain_lock_key, run_batches
    from challenges.extensions import get_redis

    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    awards = _pending_awards(award_row.proposal_id, year, 2)
    db.session.commit()
    redis, deletes = get_redis(), []
    real_delete = type(redis).delete

    def delete_failing_on_the_note(self, *names):
        if any(str(n).startswith("challenges:drain-again:") for n in names) and not deletes:
            deletes.append(names)
            raise RedisConnectionError("Redis went away")
        return real_delete(self, *names)

    monkeypatch.setattr(type(redis), "delete", delete_failing_on_the_note)
    assert run_batches("funding_post_to_ledger").endswith(" handled")
    assert deletes  # the failure happened, right after the lock was taken
    with db.engine.connect() as other:
        key = drain_lock_key("funding_post_to_ledger")  # a pooled connection holding it would refuse this
        assert other.scalar(sa.select(sa.func.pg_try_advisory_lock(key))) is True
        other.scalar(sa.select(sa.func.pg_advisory_unlock(key)))
    db.session.expire_all()
    assert {db.session.get(Award, a.id).status for a in awards} == {AwardStatus.booked}


def test_an_admin_cost_of_exactly_what_is_left_is_booked_and_one_ore_more_is_not(year):
    envelope = _balances(year)[(AccountKind.admin_envelope, None)]
    over = _book(events.AdminCostBooked, programme_year_id=year.id, amount_ore=envelope + 1, memo="Too much")
    assert db.session.get(Posting, over.id).booked is False
    exact = _book(events.AdminCostBooked, programme_year_id=year.id, amount_ore=envelope, memo="All of it")
    assert db.session.get(Posting, exact.id).booked is True
    assert _balances(year)[(AccountKind.admin_envelope, None)] == 0


def test_the_ledger_posts_and_replays_an_event_stored_in_an_older_shape_under_a_name_given_up(
    app, ctx, people, monkeypatch
):
    """Say an administration cost was once stored as "AdministrationCost", version 1, in whole kronor: the
    ledger reads it through the contract's alias and upcaster, posts öre, and its rebuild agrees."""
    bus = app.extensions["event_bus"]
    monkeypatch.setattr(events.AdminCostBooked, "version", 2)
    monkeypatch.setattr(events.AdminCostBooked, "aliases", ("AdministrationCost",))
    monkeypatch.setitem(bus.event_types, "AdministrationCost", events.AdminCostBooked)
    monkeypatch.setattr(bus, "_upcasters", dict(bus._upcasters))

    @bus.upcaster(events.AdminCostBooked, 1)
    def _kronor(payload: dict) -> dict:
        return {
            "programme_year_id": payload["programme_year_id"],
            "amount_ore": payload["kronor"] * 100,
            "memo": payload.get("memo", ""),
        }

    bus.check()
    year = make_year(next(_years))
    services.open_year(year)
    old = Event(
        id="00000000-0000-4000-8000-000000000001",
        type="AdministrationCost",
        version=1,
        payload={"programme_year_id": year.id, "kronor": 1234},
        occurred_at=utcnow(),
    )
    db.session.add(old)
    db.session.flush()
    booking.book(bus.fact(old))
    assert _balances(year)[(AccountKind.admin_spent, None)] == 123_400
    posting = db.session.get(Posting, old.id)
    assert (posting.kind, posting.amount_ore, posting.booked) == ("AdminCostBooked", 123_400, True)
    booking.book(bus.fact(old))  # delivered again under its old name: the same posting, nothing more
    assert _balances(year)[(AccountKind.admin_spent, None)] == 123_400
    assert checks.replay(year_ids={year.id}).balances[(year.id, AccountKind.admin_spent, None)] == 123_400
    assert checks.rebuild()[1] == []
    # one beyond the envelope is refused, and the managers read its amount in today's shape
    too_much = Event(
        id="00000000-0000-4000-8000-000000000002",
        type="AdministrationCost",
        version=1,
        payload={"programme_year_id": year.id, "kronor": 9_000_000},
        occurred_at=utcnow(),
    )
    db.session.add(too_much)
    db.session.flush()
    booking.book(bus.fact(too_much))
    assert db.session.get(Posting, too_much.id).reason == "admin_cap"
    handle_pending()
    [told] = db.session.scalars(sa.select(MailMessage).where(MailMessage.notice == "posting_refused"))
    assert "An administration cost · 9,000,000 kr" in told.body_text


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (AwardStatus.refused, "refused, but 0 öre was committed (0 öre still)"),
        (AwardStatus.booked, "no booked posting commits its money"),
        (AwardStatus.pending, "posted, but still pending"),
    ],
)
def test_verify_finds_an_award_whose_booked_posting_moved_no_money(people, year, award_row, status, problem):
    """A posting that says booked, with no transfer behind it (a bug in the ledger's rules would leave one)."""
    award_row.status = status
    row = record(
        events.FundingAwarded(
            award_id=award_row.id, programme_year_id=year.id, amount_ore=award_row.amount_ore
        )
    )
    db.session.add(
        Posting(
            event_id=row.id,
            kind="FundingAwarded",
            amount_ore=award_row.amount_ore,
            booked=True,
            posted_at=utcnow(),
        )
    )
    db.session.flush()
    assert f"award {award_row.id} ({status.value}): {problem}" in checks.verify_awards()


def test_an_event_after_the_close_is_refused_live_and_again_in_the_rebuild(people, year, award_row):
    closed = _book(events.YearClosed, programme_year_id=year.id)
    assert db.session.get(Posting, closed.id).amount_ore == 0  # a close carries no amount of its own
    late = _book(events.AdminCostBooked, programme_year_id=year.id, amount_ore=100, memo="late")
    # an opening would move money out of the unbounded allocation: only the close refuses it
    reopened = _book(events.YearOpened, programme_year_id=year.id, amount_ore=1_000 * SEK, admin_cap_ore=0)
    for row in (late, reopened):
        posting = db.session.get(Posting, row.id)
        assert (posting.booked, posting.reason) == (False, "year_closed")
    replayed = checks.replay(year_ids={year.id}).balances
    assert (
        replayed[(year.id, AccountKind.admin_spent, None)],
        replayed[(year.id, AccountKind.available, None)],
    ) == (
        0,
        0,
    )
    assert checks.rebuild()[1] == [] and checks.verify() == []


def test_the_rebuild_sees_no_difference_in_an_account_that_holds_nothing_on_one_side(people, year, award_row):
    """A payment refused for an award with no commitment reads a commitment the live ledger never made; an
    empty account the events never touched: neither is a difference."""
    _book(
        events.PaymentApproved,
        award_id=award_row.id,
        instalment_id=1,
        programme_year_id=year.id,
        amount_ore=100,
    )
    db.session.add(
        Account(programme_year_id=year.id, kind=AccountKind.paid_out, award_id=None, balance_ore=0)
    )
    db.session.flush()
    assert checks.rebuild()[1] == []


def test_the_ledger_books_an_award_of_exactly_what_is_available(people, year, award_row):
    available = _balances(year)[(AccountKind.available, None)]
    row = _book(events.FundingAwarded, award_id=award_row.id, programme_year_id=year.id, amount_ore=available)
    assert db.session.get(Posting, row.id).booked
    assert _balances(year)[(AccountKind.available, None)] == 0


def test_closing_a_year_returns_its_own_commitments_only(people, award_row):
    """Two years, an award committed on each: closing one leaves the other's commitment where it is."""
    first, second = make_year(next(_years)), make_year(next(_years))
    for year in (first, second):
        services.open_year(year)
    awards = []
    for year in (first, second):
        award = Award(proposal_id=award_row.proposal_id, programme_year_id=year.id, amount_ore=1_000 * SEK)
        db.session.add(award)
        db.session.flush()
        _book(events.FundingAwarded, award_id=award.id, programme_year_id=year.id, amount_ore=1_000 * SEK)
        awards.append(award)
    _book(events.YearClosed, programme_year_id=first.id)
    assert _balances(first)[(AccountKind.commitment, awards[0].id)] == 0
    assert _balances(second)[(AccountKind.commitment, awards[1].id)] == 1_000 * SEK
    assert checks.rebuild()[1] == []


def test_the_rebuild_names_an_account_found_on_one_side_only(people, year, award_row):
    """An account the live ledger has and the events never made, and one the events make that the live
    ledger lacks (a posting recorded as booked that the live ledger never applied): each is named, with
    0 öre on the side that lacks it, in the accounts' order."""
    stray = Account(
        programme_year_id=year.id, kind=AccountKind.commitment, award_id=award_row.id, balance_ore=500
    )
    db.session.add(stray)
    cost = record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=1, memo="never applied"))
    db.session.flush()
    db.session.add(Posting(event_id=cost.id, kind="AdminCostBooked", amount_ore=1, booked=True))
    db.session.flush()
    envelope = _balances(year)[(AccountKind.admin_envelope, None)]
    assert checks.rebuild()[1] == sorted(
        [
            f"{(year.id, AccountKind.commitment, award_row.id)}: live 500 öre, rebuilt 0 öre",
            f"{(year.id, AccountKind.admin_spent, None)}: live 0 öre, rebuilt 1 öre",
            f"{(year.id, AccountKind.admin_envelope, None)}: live {envelope} öre, rebuilt {envelope - 1} öre",
        ]
    )


def test_the_default_plan_pays_sixty_percent_at_the_start_in_whole_ore():
    from challenges.funding.models import InstalmentCondition

    assert services.plan_for(333) == [
        (InstalmentCondition.start, 199),
        (InstalmentCondition.final_report, 134),
    ]
    assert services.plan_for(1) == [(InstalmentCondition.start, 0), (InstalmentCondition.final_report, 1)]


def _account(year: ProgrammeYear, kind: AccountKind) -> Account:
    return db.session.scalars(
        sa.select(Account).where(
            Account.programme_year_id == year.id, Account.kind == kind, Account.award_id.is_(None)
        )
    ).one()


def _stray_transfer(
    year: ProgrammeYear, kind, source: Account, target: Account, amount: int, **extra
) -> None:
    """A transfer written behind the ledger's back (a bug in its rules would leave one)."""
    event = record(events.AdminCostBooked(programme_year_id=year.id, amount_ore=amount, memo="stray"))
    db.session.flush()
    db.session.add(
        Transfer(
            programme_year_id=year.id,
            event_id=event.id,
            kind=kind,
            source_id=source.id,
            target_id=target.id,
            amount_ore=amount,
            **extra,
        )
    )
    db.session.flush()


def test_verify_names_an_account_below_zero_and_years_whose_debits_and_credits_differ(people, year):
    from challenges.funding.models import TransferKind

    other = make_year(next(_years))
    services.open_year(other)
    available, elsewhere = _account(year, AccountKind.available), _account(other, AccountKind.available)
    before = available.balance_ore
    _stray_transfer(
        year, TransferKind.payment, available, elsewhere, before + 1
    )  # more than it holds, to another year
    problems = checks.verify_accounts()
    name = f"account {available.id} (available, year {year.id})"
    assert f"{name}: balance {before} öre, transfers say -1 öre" in problems
    assert f"{name} is below zero: -1 öre" in problems
    assert f"year {year.id}: debits and credits differ by {-(before + 1)} öre" in problems
    assert f"year {other.id}: debits and credits differ by {before + 1} öre" in problems
    assert not any(
        p.startswith(f"account {_account(other, AccountKind.admin_envelope).id} ") for p in problems
    )


def test_verify_names_administration_above_the_cap_and_transfers_after_the_close(people, year):
    from challenges.funding.models import TransferKind

    other = make_year(next(_years))  # another year, with an envelope and a transfer after this one's close
    services.open_year(other)
    cap = _account(year, AccountKind.admin_envelope).balance_ore
    _book(events.AdminCostBooked, programme_year_id=year.id, amount_ore=cap, memo="all of it")
    spent = _account(year, AccountKind.admin_spent)
    _stray_transfer(year, TransferKind.admin_cost, _account(year, AccountKind.available), spent, 1)
    spent.balance_ore += 1  # the live balance follows, as a wrong rule would have it
    year.closed_at = utcnow()
    db.session.flush()
    _stray_transfer(  # at the close's own instant: not after it
        year, TransferKind.payment, _account(year, AccountKind.available), spent, 1, booked_at=year.closed_at
    )
    late = datetime.now(UTC) + timedelta(seconds=1)
    _stray_transfer(
        year, TransferKind.payment, _account(year, AccountKind.available), spent, 1, booked_at=late
    )
    _stray_transfer(
        year, TransferKind.year_close, _account(year, AccountKind.available), spent, 1, booked_at=late
    )
    _stray_transfer(
        other,
        TransferKind.payment,
        _account(other, AccountKind.available),
        _account(other, AccountKind.admin_envelope),
        1,
        booked_at=late,
    )
    problems = checks.verify_accounts()
    assert (
        f"year {year.year}: administration {cap + 1} öre is above the cap it opened with, {cap} öre"
        in problems
    )
    assert f"year {year.year}: 1 transfer(s) after the close" in problems  # the close's own transfers aside


def test_a_replay_until_an_instant_takes_what_was_posted_before_it_only(people, year):
    first = _book(events.AdminCostBooked, programme_year_id=year.id, amount_ore=100, memo="first")
    second = _book(events.AdminCostBooked, programme_year_id=year.id, amount_ore=200, memo="second")
    at = db.session.get(Posting, second.id).posted_at
    assert db.session.get(Posting, first.id).posted_at < at
    spent = (year.id, AccountKind.admin_spent, None)
    assert (
        checks.replay(until=at).balances[spent] == 100
    )  # the second was posted at that instant: not before it
    assert checks.replay().balances[spent] == 300


@pytest.mark.parametrize("event_type", [events.PaymentApproved, events.AwardReduced, events.AwardCancelled])
def test_more_than_an_award_has_committed_is_refused_as_such(people, year, award_row, event_type):
    extra = {"instalment_id": 1} if event_type is events.PaymentApproved else {}
    row = _book(event_type, award_id=award_row.id, programme_year_id=year.id, amount_ore=100, **extra)
    posting = db.session.get(Posting, row.id)
    assert (posting.booked, posting.reason) == (False, "exceeds_commitment")


def test_a_refused_reduction_and_cancellation_are_put_back_as_they_were(people, year, award_row):
    """The services mark a reduction or a cancellation at once; when the ledger then refuses it (here:
    nothing was ever committed for the award), the ledger worker puts the award back and says why."""
    from challenges.funding.models import Instalment, InstalmentCondition

    paid = Instalment(position=1, condition=InstalmentCondition.start, amount_ore=60_000 * SEK)
    paid.approved_at = utcnow()
    first = Instalment(position=2, condition=InstalmentCondition.start, amount_ore=40_000 * SEK)
    last = Instalment(position=3, condition=InstalmentCondition.final_report, amount_ore=70_000 * SEK)
    award_row.instalments.extend([paid, first, last])
    award_row.status = AwardStatus.cancelled  # as the cancellation's service left it
    award_row.amount_ore = (
        170_000 * SEK
    )  # as the reduction's service left it: 30 000 kr less, and its last unpaid instalment
    db.session.flush()
    reduced = record(
        events.AwardReduced(award_id=award_row.id, programme_year_id=year.id, amount_ore=30_000 * SEK)
    )
    cancelled = record(
        events.AwardCancelled(award_id=award_row.id, programme_year_id=year.id, amount_ore=170_000 * SEK)
    )
    db.session.flush()
    booking.book_many([reduced, cancelled])
    assert award_row.amount_ore == 200_000 * SEK
    assert [i.amount_ore for i in award_row.instalments] == [60_000 * SEK, 40_000 * SEK, 100_000 * SEK]
    assert award_row.status is AwardStatus.booked
    told = [
        e.payload
        for e in db.session.scalars(
            sa.select(Event).where(Event.type == "PostingRefused").order_by(Event.occurred_at)
        )
    ]
    assert sorted((p["refused_event_id"], p["kind"], p["reason"]) for p in told) == sorted(
        [
            (reduced.id, "AwardReduced", "exceeds_commitment"),
            (cancelled.id, "AwardCancelled", "exceeds_commitment"),
        ]
    )
