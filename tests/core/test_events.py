"""The event log and outbox: nothing reaches Redis before the commit, and nothing is lost."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from rq import Queue

from challenges.accounts import people
from challenges.accounts import services as accounts
from challenges.core import inline
from challenges.core.events import enqueue_handlings, record, run_handler
from challenges.core.inline import handle_pending
from challenges.core.jobs import lost_jobs, stalled
from challenges.core.models import Event, EventHandling, HandlingState, clock_at, job_id_for, utcnow
from challenges.core.sweeper import retry_dead_handling, sweep_events
from challenges.extensions import db, get_redis
from challenges.notifications.models import MailMessage
from tests.factories import TEST_PASSWORD, make_user


def _register(email: str = "sara@example.com"):
    return accounts.register_user(name="Sara", email=email, password=TEST_PASSWORD, language="en")


def _queued_ids(queue: str = "notifications") -> list[str]:
    return Queue(queue, connection=get_redis()).get_job_ids()


def test_commit_records_the_event_and_enqueues_one_job_per_handler(app, ctx):
    user = _register()
    assert _queued_ids() == []  # flushed, not committed: Redis has nothing yet
    db.session.commit()
    event = db.session.scalar(sa.select(Event).where(Event.type == "UserRegistered"))
    assert event.payload == {"user_id": user.id}
    [handling] = event.handlings
    assert _queued_ids() == [job_id_for(event.id, handling.handler)]


def test_rolled_back_transaction_enqueues_nothing(app, ctx):
    _register()
    db.session.rollback()
    assert _queued_ids() == []
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0


def test_handler_delivered_twice_has_one_effect(app, ctx, smtp, drain):
    _register()
    db.session.commit()
    handling = db.session.scalar(sa.select(EventHandling))
    # RQ delivers at least once: put the same (event, handler) job on the queue again.
    enqueue_handlings([(handling.event_id, handling.handler, handling.queue)])
    Queue("notifications", connection=get_redis()).enqueue(
        "challenges.core.events.run_handler", handling.event_id, handling.handler
    )
    drain()
    assert len(smtp.to("sara@example.com")) == 1
    assert db.session.scalar(sa.select(sa.func.count(MailMessage.id))) == 1
    db.session.refresh(handling)
    assert handling.state is HandlingState.done
    assert run_handler(handling.event_id, handling.handler) == "already handled"


def test_redis_down_at_commit_loses_nothing(app, ctx, smtp, drain, redis_server):
    redis_server.stop()
    _register()
    db.session.commit()  # the relay cannot reach Redis; the commit still stands
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 1
    redis_server.start()  # back, and empty
    assert _queued_ids() == []
    drain()
    assert smtp.messages == []
    assert sweep_events() == 1  # the sweeper finds the pending handler
    drain()
    assert len(smtp.to("sara@example.com")) == 1
    assert sweep_events() == 0
    drain()
    assert len(smtp.to("sara@example.com")) == 1


def test_sweeper_leaves_jobs_that_redis_still_holds(app, ctx):
    _register()
    db.session.commit()
    assert len(_queued_ids()) == 1
    assert sweep_events() == 0
    assert len(_queued_ids()) == 1


@pytest.mark.parametrize(("beat_seconds_ago", "rerun"), [(10, 0), (120, 1)])
def test_sweeper_runs_again_a_started_job_whose_heartbeat_stopped(app, ctx, beat_seconds_ago, rerun):
    """A worker killed mid-job leaves its job "started"; a job still beating is left alone."""
    from datetime import timedelta

    from rq.job import Job, JobStatus

    _register()
    db.session.commit()
    [job_id] = _queued_ids()
    job = Job.fetch(job_id, connection=get_redis())
    job.set_status(JobStatus.STARTED)
    job.heartbeat(utcnow() - timedelta(seconds=beat_seconds_ago), 600)
    assert app.config["EVENT_STALL_SECONDS"] == 60
    assert sweep_events() == rerun


def test_a_job_that_redis_holds_only_in_part_counts_as_lost(app, ctx):
    """A heartbeat written after Redis lost the job leaves a hash without the job: lost, not an error."""

    _register()
    db.session.commit()
    [live] = _queued_ids()
    get_redis().hset("rq:job:ev-half", "last_heartbeat", "2026-11-22T10:00:00.000000Z")
    assert lost_jobs(["ev-half", live, "ev-missing"]) == {"ev-half", "ev-missing"}


def test_sweeper_waits_for_the_lease(app, ctx, redis_server, monkeypatch):
    monkeypatch.setitem(app.config, "EVENT_LEASE_SECONDS", 3600)
    redis_server.stop()
    _register()
    db.session.commit()
    redis_server.start()
    assert sweep_events() == 0


def test_failing_handler_retries_then_lands_in_the_failed_list(
    app, ctx, drain, monkeypatch, make_browser, caplog
):
    monkeypatch.setitem(app.config, "EVENT_MAX_ATTEMPTS", 2)
    caplog.set_level(logging.INFO, logger="challenges.core.events")
    caplog.set_level(logging.INFO, logger="challenges.core.sweeper")  # the re-run
    from challenges.notifications import services as mail

    render = mail.render_message

    def broken(*args, **kwargs):
        raise RuntimeError("the template is broken")

    monkeypatch.setattr(mail, "render_message", broken)
    _register()
    db.session.commit()
    drain()
    handling = db.session.scalar(sa.select(EventHandling))
    assert (handling.state, handling.attempts) == (HandlingState.pending, 1)
    assert "the template is broken" in handling.last_error
    assert sweep_events() == 1
    drain()
    db.session.refresh(handling)
    assert (handling.state, handling.attempts) == (HandlingState.dead, 2)
    assert handling.last_error == "RuntimeError: the template is broken"
    gave_up = f"handler accounts_send_welcome gave up on event {handling.event_id}: the template is broken"
    assert gave_up in [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]

    pm_user = make_user("pm@example.com", roles=(accounts.Role.programme_manager,))
    db.session.commit()
    pm = make_browser()
    assert pm.login("pm@example.com").status_code == 303
    response = pm.get("/admin/events/failed")
    page = response.get_data(as_text=True)
    assert response.status_code == 200, page
    assert "accounts_send_welcome" in page
    monkeypatch.setattr(mail, "render_message", render)
    response = pm.submit(
        f"/admin/events/{handling.event_id}/{handling.handler}/rerun", {}, page_url="/admin/events/failed"
    )
    assert response.status_code == 303
    db.session.refresh(handling)
    assert (handling.state, handling.attempts) == (HandlingState.pending, 0)
    # the re-run is the manager's, in the log, and its job is on the queue again
    rerun = f"user {pm_user.id} re-ran handler accounts_send_welcome for event {handling.event_id}"
    assert rerun in [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert (
        job_id_for(handling.event_id, handling.handler)
        in Queue("notifications", connection=get_redis()).job_ids
    )
    drain()
    db.session.refresh(handling)
    assert (handling.state, handling.attempts) == (HandlingState.done, 1)


def test_only_a_dead_handling_is_re_run_and_a_failure_is_not_recorded_on_one_done(app, ctx):
    from challenges.core.events import _record_failure

    _register()
    db.session.commit()
    handling = db.session.scalar(sa.select(EventHandling))
    with pytest.raises(ValueError, match="^only failed handlers can be re-run$"):
        retry_dead_handling(handling, by=None)
    assert run_handler(handling.event_id, handling.handler) == "handled"
    _record_failure(handling.event_id, handling.handler, RuntimeError("late"))  # a re-delivery that failed
    db.session.refresh(handling)
    assert (handling.state, handling.attempts, handling.last_error) == (HandlingState.done, 1, None)


def test_rerun_of_a_healthy_handler_is_refused(app, ctx, make_browser):
    _register()
    make_user("pm@example.com", roles=(accounts.Role.programme_manager,))
    db.session.commit()
    handling = db.session.scalar(sa.select(EventHandling))
    pm = make_browser()
    pm.login("pm@example.com")
    response = pm.submit(
        f"/admin/events/{handling.event_id}/{handling.handler}/rerun", {}, page_url="/admin/events/failed"
    )
    assert response.status_code == 409


def test_unknown_event_type_cannot_be_recorded(app, ctx):
    from dataclasses import dataclass

    from challenges.core.bus import DomainEvent
    from challenges.core.events import record

    @dataclass(frozen=True)
    class Undeclared(DomainEvent, type_name="Undeclared"):
        x: int

    @dataclass(frozen=True)
    class Impostor(DomainEvent, type_name="ProposalSubmitted"):  # a declared name on another class
        x: int

    with pytest.raises(LookupError):
        record(Undeclared(x=1))
    with pytest.raises(LookupError):
        record(Impostor(x=1))


def test_clock_at_stops_utcnow_for_its_block_only():
    then = datetime(2016, 10, 15, 10, 0, tzinfo=UTC)
    with clock_at(then):
        assert utcnow() == then
        with clock_at(datetime(2017, 3, 31, tzinfo=UTC)):
            assert utcnow().year == 2017
        assert utcnow() == then
    assert utcnow().year > 2017
    with pytest.raises(ValueError), clock_at(datetime(2016, 1, 1)):  # noqa: DTZ001 - refused
        pass


def test_handle_pending_runs_the_handlers_here_at_the_clocks_time_and_queues_none(app, ctx):
    then = datetime(2016, 1, 11, 8, 0, tzinfo=UTC)
    with clock_at(then):
        _register()
        assert handle_pending() == 1
    handling = db.session.scalar(sa.select(EventHandling))
    assert handling.state is HandlingState.done and handling.completed_at == then
    assert db.session.scalar(sa.select(MailMessage.created_at)) == then
    assert not [
        j for q in ("ledger", "workflow", "notifications") for j in _queued_ids(q) if j.startswith("ev-")
    ]
    assert handle_pending() == 0


def test_a_handler_failing_under_handle_pending_leaves_the_queues_working(app, ctx, monkeypatch):
    """handle_pending keeps jobs off the queues while it runs the handlers itself; a failure must not
    leave it that way for what the process commits afterwards."""
    from challenges.core import events as core_events

    _register()

    def fails(event_id, handler):
        raise RuntimeError("a handler failed")

    fails.job = core_events.run_handler.job  # type: ignore[attr-defined]  # as declared: the relay reads it
    monkeypatch.setattr(core_events, "run_handler", fails)
    with pytest.raises(RuntimeError):
        inline.handle_pending()
    assert _queued_ids() == []  # the failed run put nothing on the queue
    _register("later@example.com")
    db.session.commit()
    assert len(_queued_ids()) >= 1


def test_a_commit_that_fails_after_the_flush_puts_nothing_on_redis(app, ctx):
    """The relay runs after the commit, not before it: a commit refused at the last moment (here by a
    hook, as the database might at COMMIT) leaves Redis empty, and the event is not in the log."""
    _register()
    db.session.flush()

    def refuse(session):
        raise RuntimeError("the database refused the commit")

    sa.event.listen(db.session, "before_commit", refuse)
    try:
        with pytest.raises(RuntimeError):
            db.session.commit()
    finally:
        sa.event.remove(db.session, "before_commit", refuse)
    db.session.rollback()
    assert _queued_ids() == []
    assert db.session.scalar(sa.select(sa.func.count(Event.id))) == 0


def test_after_a_rollback_only_the_next_commits_events_reach_redis(app, ctx):
    _register("first@example.com")
    db.session.flush()
    db.session.rollback()  # the first event is gone, and so are its jobs
    _register("second@example.com")
    db.session.commit()
    [event] = db.session.scalars(sa.select(Event)).all()
    assert event.payload["user_id"] == people.user_by_email("second@example.com").id
    assert _queued_ids() == [job_id_for(event.id, h.handler) for h in event.handlings]


def test_a_batch_handlers_event_whose_retry_job_redis_lost_is_enqueued_again(app, ctx, people):
    """A ledger event that failed once goes on as its own job (not the drain's); if Redis loses that job
    the sweeper enqueues it again, as for any other handler."""
    from challenges.funding import events as funding
    from tests.factories import make_year

    year = make_year(2032)
    row = record(funding.YearOpened(programme_year_id=year.id, amount_ore=1, admin_cap_ore=0))
    db.session.commit()
    get_redis().flushdb()  # the drain's wake-up and everything else is lost
    [handling] = row.handlings
    handling.attempts, handling.last_error = 1, "RuntimeError: a failed first try"
    db.session.commit()
    assert sweep_events() == 1
    assert _queued_ids("ledger") == [job_id_for(row.id, handling.handler)]


def test_a_drains_lock_key_is_the_same_in_every_process_and_release():
    """Workers of two releases, side by side during an upgrade, must take the same advisory lock: the key is
    the first eight bytes of the SHA-256 of ``drain:<handler>``, signed, as PostgreSQL's bigint takes it."""
    from challenges.core.events import drain_lock_key

    assert drain_lock_key("funding_post_to_ledger") == 3554757926269592030
    assert drain_lock_key("a") == -3401114423167353864  # a first byte of 0x80 or more is negative


def test_handle_pending_runs_every_waiting_handler_in_the_order_they_were_recorded(app, ctx, monkeypatch):
    """By the handlings' time, then the event's id, then the handler's name; it returns how many ran and puts
    no job on a queue meanwhile, and after it a commit hands its jobs to the queues again."""
    import uuid
    from types import SimpleNamespace

    from challenges.core import events as core_events
    from challenges.core.bus import Handler
    from challenges.funding.events import ExchangeRateSet

    bus = app.extensions["event_bus"]
    ran: list[tuple[int, str]] = []

    def handler(name: str) -> Handler:
        return Handler(name, "workflow", lambda e, record: ran.append((e.eur_rate_ore, name)))

    second, first = handler("test_b"), handler("test_a")  # subscribed in this order: run by name
    monkeypatch.setitem(bus.handlers, ExchangeRateSet.type_name, [second, first])
    monkeypatch.setitem(bus._by_name, "test_a", first)
    monkeypatch.setitem(bus._by_name, "test_b", second)
    ids = iter([uuid.UUID(int=n) for n in (9, 8, 7, 3, 2, 1)])  # each event's id sorts before the one before
    monkeypatch.setattr(core_events, "uuid", SimpleNamespace(uuid4=lambda: next(ids, None) or uuid.uuid4()))
    for rate, instant in ((1, 10), (2, 11), (3, 12)):  # recorded one after another
        with clock_at(datetime(2026, 1, 1, 12, 0, instant, tzinfo=UTC)):
            record(ExchangeRateSet(programme_id=1, eur_rate_ore=rate))
    with clock_at(datetime(2026, 1, 1, 13, 0, tzinfo=UTC)):  # recorded at one instant: by the event's id
        for rate in (4, 5, 6):
            record(ExchangeRateSet(programme_id=1, eur_rate_ore=rate))
    assert handle_pending() == 12
    assert ran == [(rate, name) for rate in (1, 2, 3, 6, 5, 4) for name in ("test_a", "test_b")]
    assert Queue("workflow", connection=get_redis()).count == 0  # nothing was put on a queue
    assert handle_pending() == 0
    record(ExchangeRateSet(programme_id=1, eur_rate_ore=7))
    db.session.commit()
    assert Queue("workflow", connection=get_redis()).count == 2  # jobs are relayed again


def test_a_started_job_is_stalled_only_when_its_last_beat_is_older_than_the_limit():
    from datetime import timedelta
    from types import SimpleNamespace

    from rq.job import JobStatus

    limit = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    earlier = limit - timedelta(microseconds=1)

    def job(beat, started=None):
        return SimpleNamespace(last_heartbeat=beat, started_at=started)

    assert stalled(job(earlier), JobStatus.STARTED, limit)
    assert not stalled(job(limit), JobStatus.STARTED, limit)  # a beat at the limit is alive
    assert not stalled(job(earlier), JobStatus.QUEUED, limit)
    assert stalled(job(None, started=earlier), JobStatus.STARTED, limit)  # no beat yet: since it started
    assert not stalled(job(None, started=limit), JobStatus.STARTED, limit)
    assert not stalled(job(None), JobStatus.STARTED, limit)


def test_the_sweeper_re_enqueues_the_oldest_lost_jobs_past_the_lease_and_wakes_a_lost_drain(
    app, ctx, monkeypatch, caplog
):
    from challenges.core.bus import Handler
    from challenges.funding.events import ExchangeRateSet, YearOpened

    caplog.set_level(logging.INFO, logger="challenges.core.sweeper")
    monkeypatch.setitem(app.config, "EVENT_LEASE_SECONDS", 60)
    bus = app.extensions["event_bus"]
    handler = Handler("test_sweep", "workflow", lambda e, record: None)
    monkeypatch.setitem(bus.handlers, ExchangeRateSet.type_name, [handler])
    monkeypatch.setitem(bus._by_name, handler.name, handler)
    t = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    with clock_at(t):
        younger = record(ExchangeRateSet(programme_id=1, eur_rate_ore=1))
        record(YearOpened(programme_year_id=1, amount_ore=1, admin_cap_ore=0))  # for the ledger's drain
    with clock_at(t - timedelta(seconds=5)):
        older = record(ExchangeRateSet(programme_id=1, eur_rate_ore=2))
    db.session.commit()
    get_redis().flushdb()  # Redis lost every job
    workflow, ledger = Queue("workflow", connection=get_redis()), Queue("ledger", connection=get_redis())

    def swept() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("sweeper")]

    with clock_at(t + timedelta(seconds=54)):  # none a lease old yet: nothing, not even the drain
        assert sweep_events() == 0
    with clock_at(t + timedelta(seconds=60)):  # the lease to the microsecond
        assert sweep_events(limit=1) == 2  # the oldest job, and the drain
        assert workflow.job_ids == [job_id_for(older.id, "test_sweep")] and len(ledger.job_ids) == 1
        assert swept() == ["sweeper re-enqueued 1 handler job(s) and 1 drain(s)"]
        assert sweep_events() == 1  # the other job; the drain waits on its queue
        assert set(workflow.job_ids) == {job_id_for(e.id, "test_sweep") for e in (older, younger)}
        assert swept()[-1] == "sweeper re-enqueued 1 handler job(s) and 0 drain(s)"
        assert sweep_events() == 0 and len(swept()) == 2  # all waiting: nothing to say
        ledger.empty()  # the drain is lost while its key says it waits
        assert sweep_events() == 1 and len(ledger.job_ids) == 1
        assert swept()[-1] == "sweeper re-enqueued 0 handler job(s) and 1 drain(s)"


def test_a_drain_job_keeps_its_result_ten_minutes_and_a_failure_thirty_days(app, ctx):
    """A drain's outcome stays for a look in the job list; a failed drain stays a month, as every
    failed event's job does, for a manager to find."""
    from rq.job import Job

    from challenges.core.events import enqueue_drain

    enqueue_drain("funding_post_to_ledger", job_id="drain-for-the-test")
    job = Job.fetch("drain-for-the-test", connection=get_redis())
    assert (job.result_ttl, job.failure_ttl, job.description, job.origin) == (
        600,
        30 * 24 * 3600,
        "funding_post_to_ledger: every waiting event",
        "ledger",
    )
