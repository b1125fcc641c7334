"""Notices: written with the event that caused them, then delivered once per (event, notice, recipient).

A handler calls :func:`notify` inside its own transaction: one row per recipient is written with
the rest of the handler's work (unique on the triple, so a re-run writes nothing new), rendered in
the recipient's language. After the commit the rows' ids go on the ``notifications`` queue, where
:func:`send_mail` claims them, sends them over one SMTP connection (or keeps them in the local
outbox when no server is configured) and records each outcome:

* accepted → *sent*;
* a temporary failure (4xx, a dropped or failed connection) → *failed*, tried again after a
  growing delay (``MAIL_RETRY_DELAYS``: by default 6 tries over almost two hours);
* a permanent refusal (5xx), an unsafe address, or the last try failing → *dead*, listed for the
  programme manager, who may *resend*.

Every step is recorded in the database first, so Redis may lose any job: :func:`sweep_mail`
re-enqueues what is due and was not picked up within the lease. A worker killed between the
server's acceptance and the record can send that one message again on retry; it carries the same
Message-ID, so it is recognisable as the same message.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import smtplib
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template
from flask_babel import force_locale
from jinja2 import meta
from markupsafe import escape
from redis.exceptions import RedisError
from rq import Queue, get_current_job
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import joinedload

from challenges.accounts.models import ActionToken, MailMode, User
from challenges.core.bus import NOTIFICATIONS_QUEUE, get_bus
from challenges.core.events import lost_jobs, record, relay_after_commit
from challenges.core.formatting import to_local
from challenges.core.models import Event, commit_first, utcnow
from challenges.core.security import is_header_safe
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import db, get_redis
from challenges.notifications.catalogue import CATALOGUE, Notice
from challenges.notifications.events import DigestCompiled
from challenges.notifications.models import RESENDABLE, SENDABLE, MailDigest, MailMessage, MessageState

log = logging.getLogger(__name__)

MAIL_KEY = "challenges_mail"
BATCH = 500  # messages per send job (one SMTP connection, one claim); fewer per job cost more jobs
BATCH_SECONDS = 120  # a batch hands what it has not reached to a new job after this long
MESSAGE_SIZE_CODES = (452, 552)  # a refusal at MAIL FROM that is about the message's size
_clock = time.monotonic  # for the batch's time budget (a test replaces it)
JOB_TIMEOUT = 300  # RQ stops a send job after this long
# A claimed message not marked within this time is taken to be abandoned by a stopped worker: well
# beyond the job's timeout. The sweeper frees the claim much sooner when the job holding it is gone
# from Redis, ended, or its worker stopped beating; a job still running then finds, right before
# sending, that the message is no longer its own.
CLAIM_LEASE = timedelta(seconds=3 * JOB_TIMEOUT)


class TemporaryDeliveryFailure(Exception):
    """The SMTP server asked us to try later, or the connection failed."""


@dataclass(frozen=True)
class Recipient:
    email: str
    language: str = "en"
    user_id: int | None = None
    mode: MailMode = MailMode.immediate  # for non-essential notices


def recipient_for(user: User) -> Recipient:
    return Recipient(
        email=user.email, language=user.language, user_id=user.id, mode=user.mail_mode or MailMode.immediate
    )


def recipients_for(users: Iterable[User]) -> list[Recipient]:
    return [recipient_for(u) for u in users]


def recipients_of(user_ids: sa.Select[int]) -> list[Recipient]:
    """The users *user_ids* selects, in the order of their ids, read as the four columns a notice
    needs (not as whole users with what they load along: a published challenge has thousands)."""
    rows = db.session.execute(
        sa.select(User.email, User.language, User.id, User.mail_mode)
        .where(User.id.in_(user_ids))
        .order_by(User.id)
    )
    return [
        Recipient(email=email, language=language, user_id=id_, mode=mode or MailMode.immediate)
        for email, language, id_, mode in rows
    ]


def message_id_for(event_id: str, notice: str, recipient: str) -> str:
    """A Message-ID derived from (event, notice, recipient), identical on every retry and resend."""
    key = f"{event_id}:{notice}:{recipient.lower()}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@{current_app.config['MAIL_DOMAIN']}>"


# --- writing ---------------------------------------------------------------------------------------


@contextmanager
def _rendering_context() -> Iterator[None]:
    """Templates need a request context for absolute links; workers have none."""
    if has_request_context():
        yield
        return
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        yield


def _language(language: str) -> str:
    if language in current_app.config["LANGUAGES"]:
        return language
    log.warning("no templates in language %r: writing in English", language)
    return "en"


def render_message(
    notice: Notice, language: str, context: dict, subject_args: dict | None = None
) -> tuple[str, str, str]:
    """(subject, text, html) of *notice* in *language*; subjects never hold user text."""
    with _rendering_context(), force_locale(language):
        subject = str(notice.subject) % subject_args if subject_args else str(notice.subject)
        text = render_template(f"email/{notice.template}.txt", notice=notice, **context)
        html = render_template(f"email/{notice.template}.html", notice=notice, subject=subject, **context)
    if not is_header_safe(subject) or len(subject) > 200:
        raise ValueError(f"subject of {notice.key!r} is not a safe header")
    if not text.strip() or not html.strip():
        raise ValueError(f"{notice.key!r} rendered an empty message")
    return subject, text, html


@functools.cache
def _names_recipient(template: str) -> bool:
    """Whether *template*, or a template it extends or includes, uses ``recipient``: if not, a notice
    reads the same for everyone with the same language, and is rendered once for them all."""
    env = current_app.jinja_env
    seen, todo = set(), [template]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        assert env.loader is not None
        tree = env.parse(env.loader.get_source(env, name)[0])
        referenced = list(meta.find_referenced_templates(tree))
        if (
            "recipient" in meta.find_undeclared_variables(tree) or None in referenced
        ):  # None: a name made at run time
            return True
        todo.extend(t for t in referenced if t is not None)
    return False


def _first_state(notice: Notice, recipient: Recipient) -> MessageState:
    if notice.essential or recipient.mode is MailMode.immediate:
        return MessageState.queued
    return MessageState.held if recipient.mode is MailMode.daily else MessageState.muted


# Where a one-time link stands in a stored message; the bytes handed to the SMTP server carry the link.
LINK_LEFT_OUT = _l("[link left out: sent only to the recipient]")


def _link_left_out(language: str) -> str:
    with force_locale(language):
        return str(LINK_LEFT_OUT)


def notify(
    record_: Event,
    key: str,
    recipients: Iterable[Recipient],
    *,
    sealed_challenge_id: int | None = None,
    subject_args: dict | None = None,
    link_token: ActionToken | None = None,
    **context: Any,
) -> list[int]:
    """Write notice *key* of *record_* for each recipient who does not have it yet; flush, never commit;
    return the messages' ids, in the order of *recipients*.

    The messages go on the queue when the handler's transaction commits. A message about a sealed
    proposal names its challenge in *sealed_challenge_id*: the outbox hides it from programme
    managers until that challenge closes. A message with a one-time link gets the link's token in
    *link_token*: it is stored, and shown in the outbox and on the site, with the link left out, and
    only the copy handed to the SMTP server carries it (unless OUTBOX_SHOWS_LINKS, for development).
    """
    shows_link = link_token is not None and current_app.config["OUTBOX_SHOWS_LINKS"]
    notice = CATALOGUE[key]
    if not get_bus().same_type(record_.type, notice.event):
        raise ValueError(f"notice {key!r} is sent for {notice.event}, not {record_.type}")
    wanted = {r.email.lower(): r for r in recipients}
    written = sa.select(MailMessage.recipient, MailMessage.id).where(
        MailMessage.event_id == record_.id, MailMessage.notice == key
    )
    existing = set(db.session.scalars(written.with_only_columns(MailMessage.recipient)))
    rows: list[dict[str, Any]] = []
    rendered: dict[
        str, tuple[str, str, str]
    ] = {}  # by language, when the templates do not name the recipient
    personal = any(_names_recipient(f"email/{notice.template}.{kind}") for kind in ("txt", "html"))
    with _rendering_context():  # one request context for all the messages, not one each
        for address, recipient in wanted.items():
            if address in existing:
                continue
            language = _language(recipient.language)
            if personal or language not in rendered:
                if link_token is not None:
                    context["link"] = link_token.link() if shows_link else _link_left_out(language)
                rendered[language] = render_message(
                    notice, language, dict(context, recipient=recipient), subject_args
                )
            subject, text, html = rendered[language]
            rows.append(
                dict(
                    event_id=record_.id,
                    recipient=address,
                    user_id=recipient.user_id,
                    notice=key,
                    sealed_challenge_id=sealed_challenge_id,
                    language=language,
                    message_id=message_id_for(record_.id, key, address),
                    subject=subject,
                    body_text=text,
                    body_html=html,
                    state=_first_state(notice, recipient),
                    link_token_id=link_token.id if link_token is not None and not shows_link else None,
                )
            )
    if rows:  # one statement for them all, run row by row by the driver (a published challenge has thousands)
        db.session.execute(sa.insert(MailMessage), rows)
    ids: dict[str, int] = dict(db.session.execute(written).all())
    db.session.info.setdefault(MAIL_KEY, []).extend(
        ids[row["recipient"]] for row in rows if row["state"] is MessageState.queued
    )
    return [ids[a] for a in wanted]


def enqueue_send(message_ids: list[int], delay: float = 0) -> None:
    """Put *message_ids* on the notifications queue, in batches; at once, or after *delay* seconds."""
    queue = Queue(NOTIFICATIONS_QUEUE, connection=get_redis())
    for i in range(0, len(message_ids), BATCH):
        batch = message_ids[i : i + BATCH]
        options = dict(
            job_timeout=JOB_TIMEOUT,
            result_ttl=600,
            failure_ttl=7 * 24 * 3600,
            description=f"send {len(batch)} message(s)",
        )
        if delay > 0:
            queue.enqueue_in(
                timedelta(seconds=delay), "challenges.notifications.services.send_mail", batch, **options
            )
        else:
            queue.enqueue("challenges.notifications.services.send_mail", batch, **options)


relay_after_commit(MAIL_KEY, lambda ids: enqueue_send(sorted(set(ids))), "message(s)")


# --- sending ---------------------------------------------------------------------------------------


def build_email(message: MailMessage) -> EmailMessage:
    """The MIME message; only configured values and validated addresses reach headers."""
    email = _content(message)
    for name, value in _own_headers(message):
        email[name] = value
    return email


def _own_headers(message: MailMessage) -> list[tuple[str, str]]:
    """The headers that differ between the recipients of the same content."""
    if not is_header_safe(message.recipient):
        raise ValueError("refusing a header with a line break or an encoded word")
    headers = [("To", message.recipient), ("Date", format_datetime(message.created_at))]
    if message.resent_count:  # a new copy: some servers drop a Message-ID they have seen
        headers += [
            ("Message-ID", message.message_id.replace("@", f".resent{message.resent_count}@", 1)),
            ("References", message.message_id),
        ]
    else:
        headers.append(("Message-ID", message.message_id))
    return headers


def _bodies(message: MailMessage) -> tuple[str, str]:
    """The text and HTML bodies to send: as stored, with a one-time link put where it was left out."""
    if message.link_token is None:
        return message.body_text, message.body_html
    left_out, link = _link_left_out(message.language), message.link_token.link()
    return (
        message.body_text.replace(left_out, link),
        message.body_html.replace(str(escape(left_out)), str(escape(link))),
    )


def _content(message: MailMessage) -> EmailMessage:
    """The sender, the subject and the body: the same for every recipient of one notice and language."""
    config = current_app.config
    for value in (message.subject, config["MAIL_FROM"]):
        if not is_header_safe(value):
            raise ValueError("refusing a header with a line break or an encoded word")
    email = EmailMessage(policy=SMTP)
    email["From"] = config["MAIL_FROM"]
    email["Subject"] = message.subject
    email["Auto-Submitted"] = "auto-generated"
    text, html = _bodies(message)
    email.set_content(text)
    email.add_alternative(html, subtype="html")
    email["Content-Language"] = message.language  # after set_content(), which clears Content-*
    return email


class _Composer:
    """The bytes of each message. The email package composes (and encodes) a content once for all its
    recipients in a batch; each message adds its own To, Date and Message-ID, folded by the same
    package. A fan-out's messages differ only in those."""

    def __init__(self) -> None:
        self.contents: dict[tuple[str, str, str, str], bytes] = {}

    def bytes_of(self, message: MailMessage) -> bytes:
        own = b"".join(SMTP.fold_binary(name, value) for name, value in _own_headers(message))
        key = (message.subject, *_bodies(message), message.language)
        if key not in self.contents:
            self.contents[key] = _content(message).as_bytes()
        return own + self.contents[key]


def _claim(message_ids: list[int]) -> list[MailMessage]:
    """Mark the due messages among *message_ids* as being sent by this job, and return them."""
    now = utcnow()
    job = get_current_job()
    due = sa.or_(
        sa.and_(MailMessage.state.in_(SENDABLE), MailMessage.next_attempt_at <= now),
        sa.and_(MailMessage.state == MessageState.sending, MailMessage.claimed_at < now - CLAIM_LEASE),
    )
    claimed = db.session.scalars(
        sa.update(MailMessage)
        .where(MailMessage.id.in_(message_ids), due)
        .values(
            state=MessageState.sending,
            claimed_at=now,
            claimed_by=job.id if job else None,
            attempts=MailMessage.attempts + 1,
        )
        .returning(MailMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    db.session.commit()
    if not claimed:
        return []
    messages = list(
        db.session.scalars(
            sa.select(MailMessage)
            .where(MailMessage.id.in_(claimed))
            .order_by(MailMessage.id)
            .options(joinedload(MailMessage.link_token))
            .execution_options(populate_existing=True)
        )
    )
    for message in messages:  # read as they were claimed: the job's commits must not reload each one
        db.session.expunge(message)
    db.session.rollback()
    return messages


# Run by the driver itself, prepared once per connection: a send job records thousands of these, one
# between each two messages, and SQLAlchemy's own work per run (its cache, parameters and result)
# cost more than the database's.
_DELIVERED = (
    "UPDATE mail_message SET state = 'sent', last_reply = '250', sent_at = %(now)s"
    " WHERE id = %(row)s AND state = 'sending' AND claimed_at = %(claimed)s"
)


class _Deliveries:
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


class _Outcomes:
    """Each outcome recorded only while this job still holds the claim: a message that the sweeper gave
    to another worker meanwhile is left to that worker.

    A delivery to the SMTP server is recorded as soon as the server has accepted it, in a commit of its
    own, and that commit is done before the next message's data is handed over: a worker killed at any
    moment sends again at most the one message it was handing over, under the same Message-ID (SMTP
    cannot do better: the server's acceptance and our record of it are two machines' commits). On
    PostgreSQL the record runs while the next envelope is sent (:class:`_Deliveries`); that commit
    does not wait for the disk: it must survive a killed worker, and does; a crash of the database
    server itself may lose the last few, which are sent again. SQLite takes one writer at a time:
    there the session records each delivery, as every other outcome. Messages kept in the local
    outbox leave nothing behind to repeat and are recorded together."""

    def __init__(self) -> None:
        self.retries: dict[float, list[int]] = {}
        self.stored: list[MailMessage] = []
        self._deliveries = _Deliveries(db.engine) if db.engine.dialect.name == "postgresql" else None

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
        db.session.commit()
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
        db.session.commit()

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

    def schedule_retries(self) -> None:
        retries, self.retries = self.retries, {}
        for delay, ids in retries.items():
            try:
                enqueue_send(ids, delay)
            except RedisError:
                log.warning("Redis unavailable: %d retry(ies) left to the sweeper", len(ids))


def _reply_text(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return f"{code} {text}"


class _Connection(smtplib.SMTP):
    """smtplib's client, which calls *before_data* between a message's envelope and its data."""

    def __init__(self, *args: Any, before_data: Callable[[], None], **kwargs: Any) -> None:
        self.before_data = before_data
        super().__init__(*args, **kwargs)

    def data(self, msg: Any) -> tuple[int, bytes]:
        self.before_data()
        return super().data(msg)


def _connect(before_data: Callable[[], None]) -> smtplib.SMTP:
    config = current_app.config
    smtp = _Connection(
        config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"], before_data=before_data
    )
    try:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
    except BaseException:
        smtp.close()
        raise
    return smtp


def _close(smtp: smtplib.SMTP | None) -> None:
    if smtp is None:
        return
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def send_mail(message_ids: list[int]) -> str:
    """RQ job: send the due messages among *message_ids* over one SMTP connection.

    A message that fails on its own (a reply about it) uses a try; when the server cannot be
    reached, does not let us log in, or refuses the sender, the messages are handed back without
    using one. A batch that runs longer than ``BATCH_SECONDS`` hands the rest back to a new job.
    """
    started = _clock()  # no later than the claim
    messages = _claim(message_ids)
    # The sweeper frees only claims older than the stall time: until half of it has passed (a margin
    # for the clocks of other machines) this job's claim is certainly its own.
    unchecked_until = started + current_app.config["EVENT_STALL_SECONDS"] / 2
    outcomes, composer = _Outcomes(), _Composer()
    if not current_app.config["SMTP_HOST"]:
        for message in messages:
            outcomes.finish(message, MessageState.stored, None)
        outcomes.record_stored()
        return f"{len(messages)} kept in the local outbox"
    max_tries = len(current_app.config["MAIL_RETRY_DELAYS"]) + 1
    smtp: smtplib.SMTP | None = None
    server_trouble: str | None = None
    handed_on = False  # a long batch hands the rest to a new job at once, not after a delay
    connection_failures = 0
    sent = 0
    refused: dict[str, Any]
    try:
        for position, message in enumerate(messages):
            # (never before the first: a job that handed every message on would be followed by another)
            if server_trouble is None and position and _clock() - started > BATCH_SECONDS:
                handed_on = True
                server_trouble = "not tried yet: the batch ran long and handed it on"
            if server_trouble is not None:
                outcomes.release(message, server_trouble, at_once=handed_on)
                continue
            if message.attempts > max_tries:  # reclaimed from workers that kept stopping mid-send
                outcomes.finish(
                    message,
                    MessageState.dead,
                    f"gave up after {message.attempts - 1} tries: the worker stopped while sending it",
                )
                continue
            try:
                data = composer.bytes_of(message)
            except ValueError as exc:
                log.warning("message %s not sent: %s", message.id, exc)
                outcomes.finish(message, MessageState.dead, f"not sent: {exc}")
                continue
            if smtp is None:
                try:
                    smtp = _connect(outcomes.settle)
                except (smtplib.SMTPException, OSError) as exc:
                    connection_failures += 1
                    reason = f"the SMTP server could not be used: {_describe(exc)}"
                    log.warning("%s", reason)
                    outcomes.release(message, reason)
                    if connection_failures >= 2 or isinstance(exc, smtplib.SMTPAuthenticationError):
                        server_trouble = reason
                    continue
            if _clock() > unchecked_until and not outcomes.still_held(message):
                continue
            sender = current_app.config["MAIL_FROM"]
            try:
                if sender.isascii() and message.recipient.isascii():
                    refused = smtp.sendmail(sender, [message.recipient], data)
                else:  # an international address: smtplib asks the server for SMTPUTF8
                    refused = smtp.send_message(
                        build_email(message), from_addr=sender, to_addrs=[message.recipient]
                    )
            except smtplib.SMTPSenderRefused as exc:
                if exc.smtp_code in MESSAGE_SIZE_CODES:  # about this message (its size), not about us
                    refused = {message.recipient: (exc.smtp_code, exc.smtp_error)}
                else:
                    server_trouble = f"the SMTP server refused the sender: {_describe(exc)}"
                    log.warning("%s", server_trouble)
                    outcomes.release(message, server_trouble)
                    continue
            except smtplib.SMTPRecipientsRefused as exc:
                refused = exc.recipients
            except smtplib.SMTPResponseException as exc:
                refused = {message.recipient: (exc.smtp_code, exc.smtp_error)}
            except (smtplib.SMTPException, OSError) as exc:
                connection_failures += 1
                _close(smtp)
                smtp = None
                outcomes.retry(message, f"connection failed: {_describe(exc)}")
                if connection_failures >= 2:
                    server_trouble = "not tried: the connection to the SMTP server kept failing"
                continue
            if refused:
                code, reply = next(iter(refused.values()))
                if code == 421:  # the server closes the connection after saying so (to any command)
                    _close(smtp)
                    smtp = None
                if 400 <= code < 500:
                    outcomes.retry(message, _reply_text(code, reply))
                else:
                    log.warning("SMTP server refused message %s: %s", message.id, _reply_text(code, reply))
                    outcomes.finish(message, MessageState.dead, _reply_text(code, reply))
                continue
            outcomes.finish(message, MessageState.sent, "250")
            sent += 1
    finally:
        _close(smtp)
        outcomes.close()
        db.session.rollback()
        outcomes.schedule_retries()
    return f"{sent} of {len(messages)} sent"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_text(exc.smtp_code, exc.smtp_error)
    return str(exc) or type(exc).__name__


def _release_abandoned(now: datetime) -> list[int]:
    """Free the claims of send jobs that will not finish (their worker was killed, or Redis lost
    them): those messages are due again at once, each having used the try it was on."""
    stall = timedelta(seconds=current_app.config["EVENT_STALL_SECONDS"])
    holders = [
        job_id
        for job_id in db.session.scalars(
            sa.select(MailMessage.claimed_by)
            .where(
                MailMessage.state == MessageState.sending,
                MailMessage.claimed_by.is_not(None),
                MailMessage.claimed_at < now - stall,
            )
            .distinct()
        )
        if job_id
    ]
    db.session.rollback()
    if not holders:
        return []
    try:
        abandoned = lost_jobs(holders)
    except RedisError as exc:  # the lease still frees them, later
        log.warning("mail sweeper could not ask Redis about send jobs: %s", exc)
        return []
    if not abandoned:
        return []
    released = list(
        db.session.scalars(
            sa.update(MailMessage)
            .where(MailMessage.state == MessageState.sending, MailMessage.claimed_by.in_(abandoned))
            .values(
                state=MessageState.failed,
                next_attempt_at=now,
                claimed_by=None,
                last_reply="the worker sending it stopped",
            )
            .returning(MailMessage.id)
            .execution_options(synchronize_session=False)
        )
    )
    db.session.commit()
    if released:
        log.warning("mail sweeper freed %d message(s) held by stopped send jobs", len(released))
    return released


def sweep_mail(limit: int = 1000) -> int:
    """RQ job: put back on the queue what is due but was not enqueued within the lease, and what a
    dead worker claimed. Returns how many messages were enqueued."""
    now = utcnow()
    released = _release_abandoned(now)
    lease = timedelta(seconds=current_app.config["EVENT_LEASE_SECONDS"])
    ids = list(
        db.session.scalars(
            sa.select(MailMessage.id)
            .where(
                sa.or_(MailMessage.id.in_(released), MailMessage.enqueued_at <= now - lease),
                sa.or_(
                    sa.and_(MailMessage.state.in_(SENDABLE), MailMessage.next_attempt_at <= now),
                    sa.and_(
                        MailMessage.state == MessageState.sending, MailMessage.claimed_at < now - CLAIM_LEASE
                    ),
                ),
            )
            .order_by(MailMessage.id)
            .limit(limit)
        )
    )
    if not ids:
        db.session.rollback()
        return 0
    db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.id.in_(ids))
        .values(enqueued_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    enqueue_send(ids)
    log.info("mail sweeper enqueued %d message(s)", len(ids))
    return len(ids)


def resend(message: MailMessage, *, by: User) -> None:
    """A programme manager's explicit resend of a dead (or delivered) message; flush, never commit.

    The state is checked in the same statement that changes it, so two clicks resend once."""
    now = utcnow()
    result = db.session.execute(
        sa.update(MailMessage)
        .where(MailMessage.id == message.id, MailMessage.state.in_(RESENDABLE))
        .values(
            state=MessageState.queued,
            attempts=0,
            next_attempt_at=now,
            enqueued_at=now,
            resent_count=MailMessage.resent_count + 1,
            resent_at=now,
            resent_by_id=by.id,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise ValueError("only delivered or undelivered messages can be resent")
    db.session.refresh(message)
    db.session.info.setdefault(MAIL_KEY, []).append(message.id)
    log.info("user %s resent message %s to %s", by.id, message.id, message.recipient)


# --- the daily digest ------------------------------------------------------------------------------


def compile_digests(now: datetime | None = None) -> int:
    """RQ job: once a day, from ``DIGEST_HOUR`` (Stockholm time), gather each person's held messages
    into one digest event. Nobody with nothing held gets one. Returns how many were compiled."""
    now = now or utcnow()
    local = to_local(now)
    if local.hour < current_app.config["DIGEST_HOUR"]:
        return 0
    day = local.date()
    user_ids = list(
        db.session.scalars(
            sa.select(MailMessage.user_id)
            .join(User, User.id == MailMessage.user_id)
            .where(
                User.active.is_(True),
                MailMessage.state == MessageState.held,
                MailMessage.user_id.is_not(None),
                MailMessage.created_at <= now,
            )
            .distinct()
        )
    )
    db.session.rollback()
    compiled = 0
    for user_id in user_ids:
        if db.session.get(MailDigest, (user_id, day)) is not None:
            db.session.rollback()
            continue
        held = list(
            db.session.scalars(
                sa.select(MailMessage)
                .where(
                    MailMessage.user_id == user_id,
                    MailMessage.state == MessageState.held,
                    MailMessage.created_at <= now,
                )
                .order_by(MailMessage.created_at, MailMessage.id)
                .with_for_update()
            )
        )
        if not held:
            db.session.rollback()
            continue
        assert user_id is not None
        event = record(DigestCompiled(user_id=user_id, day=day.isoformat(), message_ids=[m.id for m in held]))
        db.session.add(MailDigest(user_id=user_id, day=day, event_id=event.id))
        for message in held:
            message.state = MessageState.digested
        if commit_first():
            compiled += 1
    return compiled


# --- each person's messages on the site --------------------------------------------------------------


@dataclass(frozen=True)
class MailBacklog:
    """The outbox's mail not yet delivered, for the health report."""

    waiting: int  # queued, being sent, or failed and to be tried again
    dead: int  # refused for good or out of tries: waits for a manager's resend
    oldest_waiting: datetime | None


def mail_backlog() -> MailBacklog:
    waiting = (MessageState.queued, MessageState.sending, MessageState.failed)
    rows = db.session.execute(
        sa.select(MailMessage.state, sa.func.count(), sa.func.min(MailMessage.created_at))
        .where(MailMessage.state.in_([*waiting, MessageState.dead]))
        .group_by(MailMessage.state)
    ).all()
    db.session.rollback()
    return MailBacklog(
        waiting=sum(n for state, n, _o in rows if state in waiting),
        dead=sum(n for state, n, _o in rows if state is MessageState.dead),
        oldest_waiting=min((o for state, _n, o in rows if state in waiting), default=None),
    )


def my_messages_query(user: User):
    return (
        sa.select(MailMessage)
        .where(MailMessage.user_id == user.id, MailMessage.notice != "digest")
        .order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
    )


def unread_of(user_id) -> sa.ScalarSelect:
    """How many of a person's messages on the site are unread, as a scalar subquery on *user_id*
    (a value or a column): one COUNT on an index."""
    return (
        sa.select(sa.func.count())
        .select_from(MailMessage)
        .where(MailMessage.user_id == user_id, MailMessage.read_at.is_(None), MailMessage.notice != "digest")
        .scalar_subquery()
    )


def unread_count(user: User) -> int:
    """The header's unread count: read with the login session when it was, asked for otherwise."""
    if "unread_messages" not in user.counts:
        user.counts = {
            **user.counts,
            "unread_messages": db.session.scalar(sa.select(unread_of(user.id))) or 0,
        }
    return user.counts["unread_messages"]


def mark_read(user: User, message: MailMessage | None = None) -> int:
    """Mark *message* (or every message of *user*) as read; flush, never commit."""
    query = sa.update(MailMessage).where(MailMessage.user_id == user.id, MailMessage.read_at.is_(None))
    if message is not None:
        query = query.where(MailMessage.id == message.id)
    result = db.session.execute(query.values(read_at=utcnow()).execution_options(synchronize_session="fetch"))
    user.counts = {
        name: n for name, n in user.counts.items() if name != "unread_messages"
    }  # read again if asked
    return result.rowcount  # type: ignore[attr-defined]
