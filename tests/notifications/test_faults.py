"""Delivery against an SMTP server that fails: temporary replies and dropped connections are retried
until the message arrives once; permanent refusals become dead letters that a manager can resend."""

from __future__ import annotations

import smtplib
import time
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from rq import Queue
from rq.registry import ScheduledJobRegistry

from challenges.accounts.models import Role
from challenges.config import from_environment
from challenges.core.models import Event, clock_at, utcnow
from challenges.extensions import db, get_redis
from challenges.notifications import jobs, outcomes, sending, services
from challenges.notifications.jobs import sweep_mail
from challenges.notifications.models import MailMessage, MessageState
from challenges.notifications.services import Recipient, notify
from tests.factories import make_user

FAST = [0, 0, 0, 0, 0]  # retries at once, so that one drain runs every try


def _event() -> Event:
    """A bare event row (no handlers), to send notices for it directly."""
    event = Event(id=str(uuid.uuid4()), type="UserRegistered", version=1, payload={}, occurred_at=utcnow())
    db.session.add(event)
    db.session.flush()
    return event


def _send(addresses: list[str], user=None) -> str:
    user = user or make_user("someone@example.com", name="Someone")
    event = _event()
    notify(event, "welcome", [Recipient(email=a) for a in addresses], user=user)
    event_id = event.id
    db.session.commit()
    return event_id


def _states(event_id: str) -> dict[str, MailMessage]:
    db.session.rollback()
    return {
        m.recipient: m
        for m in db.session.scalars(sa.select(MailMessage).where(MailMessage.event_id == event_id))
    }


def test_every_deliverable_message_arrives_exactly_once_through_faults(app, ctx, smtp, drain, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RETRY_DELAYS", FAST)
    addresses = [f"person{i:02d}@example.com" for i in range(60)]
    temporary = {a for i, a in enumerate(addresses) if i % 4 == 0}
    dropped = {a for i, a in enumerate(addresses) if i % 7 == 1}
    refused = {a for i, a in enumerate(addresses) if i % 10 == 3}
    for a in temporary:
        smtp.first_replies[a] = "451 4.3.0 greylisted, try again later"
    smtp.drop_first.update(dropped)
    for a in refused:
        smtp.refuse_recipients[a] = "550 5.1.1 no such mailbox"

    event_id = _send(addresses)
    drain()

    received: dict[str, int] = {}
    for message in smtp.messages:
        received[message["To"]] = received.get(message["To"], 0) + 1
    deliverable = set(addresses) - refused
    assert received == dict.fromkeys(deliverable, 1)  # each exactly once: no process was killed
    rows = _states(event_id)
    assert {a for a, m in rows.items() if m.state is MessageState.sent} == deliverable
    assert {a for a, m in rows.items() if m.state is MessageState.dead} == refused
    assert all(rows[a].last_reply.startswith("550") and rows[a].attempts == 1 for a in refused)
    assert all(rows[a].attempts == 2 for a in (temporary | dropped) - refused)
    assert all(rows[a].attempts == 1 for a in deliverable - temporary - dropped)
    # the dropped ones were dropped for real: the client saw the connection go
    assert smtp.attempts[sorted(dropped - refused)[0]] == 2


def test_a_dead_letter_is_listed_for_the_manager_and_a_resend_delivers(app, ctx, smtp, drain, make_browser):
    smtp.refuse_recipients["gone@example.com"] = "550 5.1.1 no such mailbox"
    event_id = _send(["gone@example.com", "here@example.com"])
    drain()
    dead = _states(event_id)["gone@example.com"]
    dead_id = dead.id
    assert dead.state is MessageState.dead
    make_user("pm@example.com", roles=(Role.programme_manager,))
    db.session.commit()

    pm = make_browser("pm@example.com")
    outbox = pm.get("/admin/outbox").get_data(as_text=True)
    assert "1 message could not be delivered" in outbox
    listing = pm.get("/admin/outbox?state=dead").get_data(as_text=True)
    assert "gone@example.com" in listing and "here@example.com" not in listing
    assert "550 5.1.1 no such mailbox" in listing
    assert len(smtp.to("gone@example.com")) == 0

    del smtp.refuse_recipients["gone@example.com"]  # the address works again
    response = pm.submit(
        f"/admin/outbox/{dead_id}/resend", {"back": "dead"}, page_url="/admin/outbox?state=dead"
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/outbox?state=dead")
    drain()
    assert len(smtp.to("gone@example.com")) == 1
    row = _states(event_id)["gone@example.com"]
    assert (row.state, row.resent_count, row.attempts) == (MessageState.sent, 1, 1)
    assert row.resent_by_id is not None
    [copy] = smtp.to("gone@example.com")  # a new Message-ID that refers to the first
    assert copy["Message-ID"] != row.message_id and copy["References"] == row.message_id
    # a second click on the same (now delivered) message is one more resend, not two
    first = pm.submit(f"/admin/outbox/{dead_id}/resend", {}, page_url=f"/admin/outbox/{dead_id}")
    assert first.status_code == 303
    drain()
    assert len(smtp.to("gone@example.com")) == 2
    # a message still on its way cannot be resent
    db.session.execute(
        sa.update(MailMessage).where(MailMessage.id == dead_id).values(state=MessageState.queued)
    )
    db.session.commit()
    page = pm.submit(f"/admin/outbox/{dead_id}/resend", {}, page_url=f"/admin/outbox/{dead_id}")
    assert page.status_code == 303
    assert "still on its way" in pm.get(page.headers["Location"]).get_data(as_text=True)


def test_resend_is_for_programme_managers_only(app, ctx, smtp, drain, make_browser):
    smtp.refuse_recipients["gone@example.com"] = "550 5.1.1 no such mailbox"
    event_id = _send(["gone@example.com"])
    drain()
    message_id = _states(event_id)["gone@example.com"].id
    make_user("eve@example.com")
    db.session.commit()
    eve = make_browser("eve@example.com")
    assert eve.get("/admin/outbox?state=dead").status_code == 403
    response = eve.submit(f"/admin/outbox/{message_id}/resend", {}, page_url="/messages")
    assert response.status_code == 403
    del smtp.refuse_recipients["gone@example.com"]
    drain()
    assert _states(event_id)["gone@example.com"].state is MessageState.dead
    assert smtp.to("gone@example.com") == []


def test_retries_stop_after_the_last_try_and_the_message_is_dead(app, ctx, smtp, drain, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RETRY_DELAYS", FAST)
    smtp.always_replies["busy@example.com"] = "452 4.2.2 mailbox full"
    event_id = _send(["busy@example.com"])
    drain()
    row = _states(event_id)["busy@example.com"]
    assert (row.state, row.attempts) == (MessageState.dead, 6)
    assert row.last_reply.startswith("452") and "gave up after 6 tries" in row.last_reply
    assert smtp.attempts["busy@example.com"] == 6


def test_the_default_schedule_tries_at_least_five_times_over_at_least_an_hour(tmp_path):
    delays = from_environment(tmp_path)["MAIL_RETRY_DELAYS"]
    assert len(delays) + 1 >= 5 and sum(delays) >= 3600
    assert delays == sorted(delays) and delays[0] > 0  # growing, never at once


def test_the_schedule_can_be_set_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MAIL_RETRY_DELAYS", "2,4, 8,")
    assert from_environment(tmp_path)["MAIL_RETRY_DELAYS"] == [2, 4, 8]


def test_a_temporary_failure_is_scheduled_after_the_first_delay(app, ctx, smtp, drain, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RETRY_DELAYS", [60, 300, 900, 1800, 3600])
    smtp.first_replies["later@example.com"] = "451 4.3.0 try again later"
    event_id = _send(["later@example.com"])
    before = utcnow()
    drain()
    row = _states(event_id)["later@example.com"]
    assert row.state is MessageState.failed and row.last_reply.startswith("451")
    assert before + timedelta(seconds=55) < row.next_attempt_at < utcnow() + timedelta(seconds=65)
    registry = ScheduledJobRegistry(queue=Queue("notifications", connection=get_redis()))
    assert len(registry.get_job_ids()) == 1  # RQ's scheduler holds the retry
    assert smtp.to("later@example.com") == []
    # the sweeper does not send it early, and does once it is due (asked at set instants: a slow or
    # stepped clock on a loaded machine must not decide the outcome)
    with clock_at(row.next_attempt_at - timedelta(seconds=1)):
        assert sweep_mail() == 0
    with clock_at(row.next_attempt_at):
        assert sweep_mail() == 1


def test_the_sweeper_sends_what_redis_lost_and_what_a_dead_worker_held(
    app, ctx, smtp, drain, monkeypatch, redis_server
):
    monkeypatch.setitem(app.config, "EVENT_LEASE_SECONDS", 120)
    redis_server.stop()  # the commit cannot enqueue: only the database knows
    event_id = _send(["lost@example.com", "held@example.com"])
    redis_server.start()
    assert sweep_mail() == 0  # within the lease nothing is taken from its first job
    long_ago = utcnow() - timedelta(hours=1)
    rows = _states(event_id)
    db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.id == rows["lost@example.com"].id)
        .values(enqueued_at=long_ago)
    )
    # a worker claimed this one an hour ago and died before recording the outcome
    db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.id == rows["held@example.com"].id)
        .values(state=MessageState.sending, claimed_at=long_ago, enqueued_at=long_ago, attempts=1)
    )
    db.session.commit()
    assert sweep_mail() == 2
    assert sweep_mail() == 0  # enqueued once, not on every sweep
    drain()
    assert len(smtp.to("lost@example.com")) == 1 and len(smtp.to("held@example.com")) == 1
    rows = _states(event_id)
    assert rows["held@example.com"].attempts == 2 and rows["held@example.com"].state is MessageState.sent


@pytest.mark.parametrize(("holder", "freed"), [("gone", True), ("stalled", True), ("beating", False)])
def test_a_killed_send_jobs_messages_are_freed_within_the_stall_time(
    app, ctx, smtp, drain, monkeypatch, holder, freed
):
    """A worker killed mid-batch leaves its messages "sending": the sweeper frees them once the job
    holding them is gone from Redis or has stopped beating, long before the claim's lease ends; a job
    still beating keeps them."""
    from rq.job import JobStatus

    monkeypatch.setitem(app.config, "EVENT_LEASE_SECONDS", 3600)  # only the freeing can enqueue them now
    queue = Queue("notifications", connection=get_redis())
    event_id = _send(["killed@example.com"])
    drain()
    smtp.reset()
    message = _states(event_id)["killed@example.com"]
    job = queue.enqueue("builtins.print", job_id=f"send-{uuid.uuid4().hex}")
    queue.remove(job)
    if holder == "gone":
        job.delete()
    else:
        job.set_status(JobStatus.STARTED)
        job.heartbeat(utcnow() - timedelta(seconds=120 if holder == "stalled" else 5), 600)
    claimed = utcnow() - timedelta(minutes=2)  # well within the claim's lease of 15 minutes
    db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.id == message.id)
        .values(
            state=MessageState.sending, claimed_at=claimed, claimed_by=job.id, attempts=1, enqueued_at=claimed
        )
    )
    db.session.commit()
    assert sweep_mail() == (1 if freed else 0)
    drain()
    row = _states(event_id)["killed@example.com"]
    if freed:
        assert (
            len(smtp.to("killed@example.com")) == 1 and row.state is MessageState.sent and row.attempts == 2
        )
        assert row.claimed_by != job.id  # the job that sent it holds it now
    else:
        assert smtp.to("killed@example.com") == [] and row.state is MessageState.sending


def test_a_job_that_lost_its_claim_while_running_does_not_send(app, ctx, smtp, drain, monkeypatch):
    """The sweeper may free the messages of a job that Redis lost while it still runs, once their claim
    is older than the stall time: from half of it on, the job checks before each message that it still
    holds it, so the message goes out once, from the new job."""
    event_id = _send(["first@example.com", "second@example.com"])
    rows = _states(event_id)
    second = rows["second@example.com"].id
    build = sending._Composer.bytes_of
    now = [0.0]
    monkeypatch.setattr(sending, "_clock", lambda: now[0])

    def build_and_free(composer, message):
        if message.recipient == "first@example.com":  # the stall time passes, the sweeper frees the second
            now[0] += app.config["EVENT_STALL_SECONDS"] + 1
            db.session.execute(
                sa.update(MailMessage)
                .where(MailMessage.id == second)
                .values(state=MessageState.failed, next_attempt_at=utcnow(), claimed_by=None)
            )
            db.session.commit()
        return build(composer, message)

    monkeypatch.setattr(sending._Composer, "bytes_of", build_and_free)
    assert jobs.send_mail(sorted(m.id for m in rows.values())) == "1 of 2 sent"
    assert smtp.to("second@example.com") == [] and len(smtp.to("first@example.com")) == 1
    monkeypatch.setattr(sending._Composer, "bytes_of", build)
    jobs.send_mail([second])  # the job the sweeper enqueued
    assert (
        len(smtp.to("second@example.com")) == 1
        and _states(event_id)["second@example.com"].state is MessageState.sent
    )


class Killed(BaseException):
    """What a SIGKILL would leave: the job stops between two statements, nothing runs after it."""


@pytest.mark.parametrize("killed_at", [1, 3, 7])
def test_a_worker_killed_mid_batch_sends_again_at_most_the_message_it_was_handing_over(
    app, ctx, smtp, monkeypatch, killed_at
):
    """Each delivery is recorded before the next message is sent; killed between the server's acceptance
    of message *killed_at* and its record, the job sends that one again (and no other) once freed."""
    addresses = [f"batch{i}@example.com" for i in range(1, 11)]
    event_id = _send(addresses)
    ids = sorted(m.id for m in _states(event_id).values())
    record, accepted = outcomes.Outcomes._delivered, []

    def killed_before_the_record(outcomes, message):
        accepted.append(message.recipient)
        if len(accepted) == killed_at:
            raise Killed
        record(outcomes, message)

    monkeypatch.setattr(outcomes.Outcomes, "_delivered", killed_before_the_record)
    with pytest.raises(Killed):
        jobs.send_mail(ids)
    monkeypatch.setattr(outcomes.Outcomes, "_delivered", record)
    db.session.rollback()
    states = {m.recipient: m.state for m in _states(event_id).values()}
    assert [a for a in addresses if states[a] is MessageState.sent] == addresses[: killed_at - 1]
    db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.state == MessageState.sending)  # the sweeper
        .values(state=MessageState.failed, next_attempt_at=utcnow(), claimed_by=None)
    )
    db.session.commit()
    jobs.send_mail(ids)
    received = [m["To"] for m in smtp.messages]
    assert sorted(set(received)) == sorted(addresses)
    assert [a for a in addresses if received.count(a) > 1] == [addresses[killed_at - 1]]  # one duplicate


def test_a_message_is_handed_over_only_once_the_one_before_it_is_recorded(app, ctx, smtp, monkeypatch):
    """On PostgreSQL a delivery is recorded while the next envelope goes out; the next message's data
    waits for that record (here made slow), so a kill at any moment leaves at most one unrecorded."""
    event_id = _send([f"order{i}@example.com" for i in range(1, 6)])
    ids = sorted(m.id for m in _states(event_id).values())
    data, unrecorded = smtplib.SMTP.data, []
    if db.engine.dialect.name == "postgresql":
        write = outcomes.Deliveries._write

        def slow_write(deliveries, *args):
            time.sleep(0.05)
            write(deliveries, *args)

        monkeypatch.setattr(outcomes.Deliveries, "_write", slow_write)

    def checked(connection, msg):
        with db.engine.connect() as other:  # what another worker, or the sweeper, would read
            recorded = other.scalar(
                sa.select(sa.func.count()).where(
                    MailMessage.id.in_(ids), MailMessage.state == MessageState.sent
                )
            )
        unrecorded.append(len(smtp.messages) - recorded)
        return data(connection, msg)

    monkeypatch.setattr(smtplib.SMTP, "data", checked)  # the moment the data is handed over
    assert jobs.send_mail(ids) == "5 of 5 sent"
    assert unrecorded == [0, 0, 0, 0, 0]
    assert {m.state for m in _states(event_id).values()} == {MessageState.sent}


def test_a_delivery_that_cannot_be_recorded_stops_the_batch_before_the_next_message(
    app, ctx, smtp, monkeypatch
):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite records each delivery in the job's own session, before going on")
    addresses = [f"stop{i}@example.com" for i in range(1, 5)]
    event_id = _send(addresses)
    ids = sorted(m.id for m in _states(event_id).values())
    write = outcomes.Deliveries._write

    def database_gone_at_the_second(deliveries, row, *args):
        if row == ids[1]:
            raise sa.exc.OperationalError(
                "UPDATE mail_message", {}, Exception("server closed the connection")
            )
        write(deliveries, row, *args)

    monkeypatch.setattr(outcomes.Deliveries, "_write", database_gone_at_the_second)
    with pytest.raises(sa.exc.OperationalError):
        jobs.send_mail(ids)
    assert [m["To"] for m in smtp.messages] == addresses[:2]
    states = _states(event_id)
    assert [states[a].state for a in addresses] == [
        MessageState.sent,
        MessageState.sending,
        MessageState.sending,
        MessageState.sending,
    ]


def test_a_message_is_sent_once_when_two_workers_get_its_job(app, ctx, smtp, drain):
    event_id = _send(["once@example.com"])
    message_id = _states(event_id)["once@example.com"].id
    jobs.enqueue_send([message_id])  # a duplicate job, e.g. from a sweep racing the first
    drain()
    assert len(smtp.to("once@example.com")) == 1


@pytest.mark.parametrize(
    "address", ["x@example.com\r\nBcc: evil@example.com", "x@example.com\nBcc: evil@example.com"]
)
def test_an_address_with_a_line_break_is_never_sent(app, ctx, smtp, drain, address):
    event_id = _send([address, "fine@example.com"])
    drain()
    rows = _states(event_id)
    bad = rows[address.lower()]
    assert bad.state is MessageState.dead and "line break" in bad.last_reply
    assert [m["To"] for m in smtp.messages] == ["fine@example.com"]
    assert all("evil" not in str(rcpts) for _, rcpts in smtp.envelopes)


def test_without_a_smtp_server_the_outbox_keeps_it_and_a_server_down_is_retried(
    app, ctx, smtp, drain, monkeypatch
):
    monkeypatch.setitem(app.config, "MAIL_RETRY_DELAYS", [3600])
    monkeypatch.setitem(app.config, "SMTP_PORT", 1)  # nothing listens there
    event_id = _send(["a@example.com", "b@example.com", "c@example.com"])
    drain()
    rows = _states(event_id)
    # the server's trouble is not the messages': handed back without using a try, for later
    assert {m.state for m in rows.values()} == {MessageState.failed}
    assert [m.attempts for m in rows.values()] == [0, 0, 0]
    assert all("could not be used" in m.last_reply for m in rows.values())
    assert all(m.next_attempt_at > utcnow() + timedelta(minutes=59) for m in rows.values())


def test_a_server_that_will_not_let_us_log_in_uses_no_tries(app, ctx, smtp, drain, monkeypatch):
    monkeypatch.setitem(app.config, "SMTP_USERNAME", "platform")  # the test server offers no AUTH
    monkeypatch.setitem(app.config, "SMTP_PASSWORD", "secret")
    event_id = _send([f"p{i}@example.com" for i in range(5)])
    drain()
    rows = _states(event_id)
    assert {(m.state, m.attempts) for m in rows.values()} == {(MessageState.failed, 0)}
    assert smtp.messages == []


def test_a_421_to_one_recipient_reconnects_for_the_next(app, ctx, smtp, drain, monkeypatch):
    monkeypatch.setitem(app.config, "MAIL_RETRY_DELAYS", FAST)
    smtp.refuse_recipients["closing@example.com"] = "421 4.7.0 too busy, closing"
    event_id = _send(["closing@example.com", "next@example.com"])
    drain()
    rows = _states(event_id)
    assert (rows["next@example.com"].state, rows["next@example.com"].attempts) == (MessageState.sent, 1)
    assert rows["closing@example.com"].state is MessageState.dead  # a 421 every time: six tries, then dead
    assert rows["closing@example.com"].last_reply.startswith("421")
    assert len(smtp.to("next@example.com")) == 1


def test_a_refused_sender_hands_the_messages_back_and_a_too_big_message_is_dead(app, ctx, smtp, drain):
    smtp.mail_from_reply = "550 5.7.1 sender not allowed"
    event_id = _send(["a@example.com", "b@example.com"])
    drain()
    assert {(m.state, m.attempts) for m in _states(event_id).values()} == {(MessageState.failed, 0)}
    assert "refused the sender" in _states(event_id)["a@example.com"].last_reply
    smtp.mail_from_reply = "552 5.3.4 message too big"
    event_id = _send(["c@example.com"], user=db.session.scalar(sa.select(services.User)))
    drain()
    row = _states(event_id)["c@example.com"]
    assert (row.state, row.attempts) == (MessageState.dead, 1) and row.last_reply.startswith("552")


def test_a_long_batch_hands_the_rest_to_a_new_job_without_using_tries(app, ctx, smtp, drain, monkeypatch):
    clock = iter(
        range(0, 10**6, 100)
    )  # every look at the clock is 100 s later: 120 s pass by the 2nd message
    monkeypatch.setattr(sending, "_clock", lambda: next(clock))
    addresses = [f"slow{i}@example.com" for i in range(5)]
    event_id = _send(addresses)
    drain()
    rows = _states(event_id)
    assert {(m.state, m.attempts) for m in rows.values()} == {(MessageState.sent, 1)}
    assert sorted(m["To"] for m in smtp.messages) == addresses  # each once


def test_a_batch_records_each_delivery_and_asks_nothing_else_while_its_claim_is_young(
    app, ctx, smtp, monkeypatch
):
    from tests.calls.test_catalogue import counting_queries

    addresses = [f"each{i}@example.com" for i in range(25)]
    event_id = _send(addresses)
    ids = sorted(m.id for m in _states(event_id).values())
    by_driver: list[int] = []  # PostgreSQL: each delivery recorded by the driver, beside the session
    if db.engine.dialect.name == "postgresql":
        write = outcomes.Deliveries._write

        def counted(deliveries, row, *args):
            by_driver.append(row)
            write(deliveries, row, *args)

        monkeypatch.setattr(outcomes.Deliveries, "_write", counted)
    with counting_queries() as statements:
        assert jobs.send_mail(ids) == f"{len(ids)} of {len(ids)} sent"
    statements = [s for s in statements if not s.startswith(("BEGIN", "SET synchronous_commit", "RESET"))]
    writes = [s for s in statements if s.startswith("UPDATE mail_message")]
    if db.engine.dialect.name == "postgresql":
        assert by_driver == ids and len(writes) == 1  # the claim; then each delivery as it is made
    else:
        assert len(writes) == 1 + len(ids)
    # and the claimed rows read once, with what they say (one content for all 25): nothing asked per message
    reads = [s for s in statements if s.startswith("SELECT")]
    assert len(statements) == len(reads) + len(writes) and len(reads) == 2
    assert [s for s in reads if "FROM mail_content" in s.split("WHERE")[0]] == [reads[1]]
    assert {m.state for m in _states(event_id).values()} == {MessageState.sent}
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses)
