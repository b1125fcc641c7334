"""Sending: a batch of messages claimed, composed and handed to the SMTP server over one connection,
each outcome recorded as it is known (see :mod:`challenges.notifications.services` for the states).

A delivery is recorded before the next message's data is handed over, so a worker killed at any
moment sends again at most the one message it was handing over, under the same Message-ID.
"""

from __future__ import annotations

import logging
import smtplib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from markupsafe import escape
from redis.exceptions import RedisError
from rq import get_current_job
from sqlalchemy.orm import Session, joinedload

from challenges.core.jobs import lost_jobs
from challenges.core.models import utcnow
from challenges.core.security import is_header_safe
from challenges.core.transaction import commit
from challenges.extensions import db
from challenges.notifications.models import SENDABLE, MailMessage, MessageState
from challenges.notifications.outcomes import Outcomes
from challenges.notifications.services import CLAIM_LEASE, _link_left_out

log = logging.getLogger(__name__)


BATCH_SECONDS = 120  # a batch hands what it has not reached to a new job after this long


MESSAGE_SIZE_CODES = (452, 552)  # a refusal at MAIL FROM that is about the message's size


_clock = time.monotonic  # for the batch's time budget (a test replaces it)


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
    commit()
    if not claimed:
        return []
    # Read in a session of its own, which hands them over detached as they were read, each content read
    # once: the job's own commits must not reload them one by one.
    with Session(db.engine) as reading:
        return list(
            reading.scalars(
                sa.select(MailMessage)
                .where(MailMessage.id.in_(claimed))
                .order_by(MailMessage.id)
                .options(joinedload(MailMessage.link_token))
            )
        )


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


def send(message_ids: list[int], retries: dict[float, list[int]]) -> str:
    """Send the due messages among *message_ids* over one SMTP connection; those to be tried again
    are added to *retries* under their delay, even when this raises.

    A message that fails on its own (a reply about it) uses a try; when the server cannot be
    reached, does not let us log in, or refuses the sender, the messages are handed back without
    using one. A batch that runs longer than ``BATCH_SECONDS`` hands the rest back to a new job.
    """
    started = _clock()  # no later than the claim
    messages = _claim(message_ids)
    # The sweeper frees only claims older than the stall time: until half of it has passed (a margin
    # for the clocks of other machines) this job's claim is certainly its own.
    unchecked_until = started + current_app.config["EVENT_STALL_SECONDS"] / 2
    outcomes, composer = Outcomes(retries), _Composer()
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
    return f"{sent} of {len(messages)} sent"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply_text(exc.smtp_code, exc.smtp_error)
    return str(exc) or type(exc).__name__


def release_abandoned(now: datetime) -> list[int]:
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
    commit()
    if released:
        log.warning("mail sweeper freed %d message(s) held by stopped send jobs", len(released))
    return released
