"""What became of each message a send job handed over: delivered (recorded before the next message's
data goes out, on PostgreSQL by a thread of its own), kept in the local outbox, refused, or to be tried
again, each recorded only while the job still holds the message's claim."""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from challenges.core.models import utcnow
from challenges.core.transaction import commit
from challenges.extensions import db
from challenges.notifications.models import MailMessage, MessageState

log = logging.getLogger(__name__)


# Run by the driver itself, prepared once per connection: a send job records thousands of these, one
# between each two messages, and SQLAlchemy's own work per run (its cache, parameters and result)
# cost more than the database's.
_DELIVERED = (
    "UPDATE mail_message SET state = 'sent', last_reply = '250', sent_at = %(now)s"
    " WHERE id = %(row)s AND state = 'sending' AND claimed_at = %(claimed)s"
)


class Deliveries:
    """PostgreSQL: each delivery recorded by a thread of its own on a connection of its own, which commits
    each statement as it runs, without waiting for the disk (``synchronous_commit`` off, for it alone),
    while the next message's envelope goes to the SMTP server. :meth:`settle` waits for the record;
    the next message's data is handed over only after it (see :class:`_Connection`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._connection: Any = None  # the pool's connection; its driver's runs the statements
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deliveries")
        self._pending: Future[None] | None = None

    def _write(self, row: int, claimed: datetime | None, now: datetime) -> None:
        if self._connection is None:
            self._connection = self._engine.raw_connection()
            driver = self._connection.driver_connection
            driver.autocommit = True
            driver.execute("SET synchronous_commit TO OFF")  # this connection, while held
        cursor = self._connection.driver_connection.execute(
            _DELIVERED, {"row": row, "claimed": claimed, "now": now}, prepare=True
        )
        if cursor.rowcount != 1:
            log.warning("message %s was claimed again before its delivery was recorded", row)

    def record(self, message: MailMessage) -> None:
        self.settle()
        self._pending = self._thread.submit(self._write, message.id, message.claimed_at, utcnow())

    def settle(self) -> None:
        """Wait for the last delivery's record; its failure (the database gone) stops the job here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _disconnect(self) -> None:
        if self._connection is not None:
            driver = self._connection.driver_connection
            with suppress(self._engine.dialect.loaded_dbapi.Error):
                driver.execute("RESET synchronous_commit")
                driver.autocommit = False
            self._connection.close()  # back to the pool, which drops it if it is broken
            self._connection = None

    def close(self) -> None:
        try:
            self.settle()
        except (
            SQLAlchemyError,
            self._engine.dialect.loaded_dbapi.Error,
        ) as exc:  # the message stays claimed: the sweeper frees it, it is sent again
            log.warning("a delivery could not be recorded: %s", exc)
        finally:
            if self._connection is not None:  # settled: the thread is idle
                self._thread.submit(self._disconnect).result()
            self._thread.shutdown()


class Outcomes:
    """Each outcome recorded only while this job still holds the claim: a message that the sweeper gave
    to another worker meanwhile is left to that worker.

    A delivery to the SMTP server is recorded as soon as the server has accepted it, in a commit of its
    own, and that commit is done before the next message's data is handed over: a worker killed at any
    moment sends again at most the one message it was handing over, under the same Message-ID (SMTP
    cannot do better: the server's acceptance and our record of it are two machines' commits). On
    PostgreSQL the record runs while the next envelope is sent (:class:`Deliveries`); that commit
    does not wait for the disk: it must survive a killed worker, and does; a crash of the database
    server itself may lose the last few, which are sent again. SQLite takes one writer at a time:
    there the session records each delivery, as every other outcome. Messages kept in the local
    outbox leave nothing behind to repeat and are recorded together."""

    def __init__(self, retries: dict[float, list[int]]) -> None:
        self.retries = retries
        self.stored: list[MailMessage] = []
        self._deliveries = Deliveries(db.engine) if db.engine.dialect.name == "postgresql" else None

    def _delivered(self, message: MailMessage) -> None:
        if self._deliveries is None:
            self._record(message, state=MessageState.sent, last_reply="250", sent_at=utcnow())
        else:
            self._deliveries.record(message)

    def settle(self) -> None:
        """Called before a message's data is handed to the SMTP server: every earlier delivery is recorded."""
        if self._deliveries is not None:
            self._deliveries.settle()

    def close(self) -> None:
        if self._deliveries is not None:
            self._deliveries.close()

    @staticmethod
    def _held(message: MailMessage) -> sa.ColumnElement[bool]:
        """The message is still this job's: claimed, and by this very claim."""
        return sa.and_(
            MailMessage.id == message.id,
            MailMessage.state == MessageState.sending,
            MailMessage.claimed_at == message.claimed_at,
        )

    def _record(self, message: MailMessage, **values: Any) -> None:
        result = db.session.execute(
            sa.update(MailMessage)
            .where(self._held(message))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        commit()
        if result.rowcount != 1:  # type: ignore[attr-defined]
            log.warning("message %s was claimed again before its outcome was recorded", message.id)

    def finish(self, message: MailMessage, state: MessageState, reply: str | None) -> None:
        if state is MessageState.stored:
            self.stored.append(message)
        elif state is MessageState.sent:
            self._delivered(message)
        else:
            self._record(message, state=state, last_reply=reply[:2000] if reply else reply, sent_at=None)

    def record_stored(self) -> None:
        """Record the messages kept in the local outbox: one statement per claim, one commit."""
        stored, self.stored = self.stored, []
        by_claim: dict[datetime | None, list[int]] = {}
        for message in stored:
            by_claim.setdefault(message.claimed_at, []).append(message.id)
        now = utcnow()
        for claimed_at, ids in by_claim.items():
            db.session.execute(
                sa.update(MailMessage)
                .where(
                    MailMessage.id.in_(ids),
                    MailMessage.state == MessageState.sending,
                    MailMessage.claimed_at == claimed_at,
                )
                .values(state=MessageState.stored, last_reply=None, sent_at=now)
                .execution_options(synchronize_session=False)
            )
        commit()

    def retry(self, message: MailMessage, reply: str) -> None:
        """A temporary failure: try again after the next delay, or give up after the last try."""
        delays = current_app.config["MAIL_RETRY_DELAYS"]
        if message.attempts > len(delays):
            log.warning("message %s gave up after %d tries: %s", message.id, message.attempts, reply)
            self.finish(message, MessageState.dead, f"{reply} (gave up after {message.attempts} tries)")
            return
        self._again(message, delays[message.attempts - 1], reply, attempts=message.attempts)

    @classmethod
    def still_held(cls, message: MailMessage) -> bool:
        """Whether this job still holds the claim, asked right before sending once the claim is old
        enough for the sweeper to have freed it (it frees the messages of a job that Redis lost or that
        stopped beating, and that job may still be running)."""
        held = db.session.scalar(sa.select(MailMessage.id).where(cls._held(message)))
        db.session.rollback()
        if held is None:
            log.warning(
                "message %s was freed for another job before it was sent; left to that job", message.id
            )
        return held is not None

    def release(self, message: MailMessage, reason: str, *, at_once: bool = False) -> None:
        """Not tried (the server could not be reached or refused us, not this message, or the batch
        ran long): back as it was, without counting a try, and tried again after the first delay
        (or *at_once*, by a new job)."""
        delays = current_app.config["MAIL_RETRY_DELAYS"]
        delay = 0 if at_once or not delays else delays[0]
        self._again(message, delay, reason, attempts=message.attempts - 1)

    def _again(self, message: MailMessage, delay: float, reply: str, *, attempts: int) -> None:
        at = utcnow() + timedelta(seconds=delay)
        self._record(
            message,
            state=MessageState.failed,
            last_reply=reply[:2000],
            attempts=attempts,
            next_attempt_at=at,
            enqueued_at=at,
        )
        self.retries.setdefault(delay, []).append(message.id)
