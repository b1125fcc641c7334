"""Render an event's email for each recipient, then deliver it once per (event, recipient).

Rows are written first (one per recipient, unique on the pair), then each queued row is
claimed, sent over one SMTP connection (or stored in the local outbox), and marked. A
crash after the SMTP server accepted a message but before the mark is recorded can send
that one message again on retry; it then carries the same Message-ID, so it is
recognisable as the same message. A refused address is recorded and does not stop the rest.
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template
from flask_babel import force_locale

from challenges.core.models import Event, utcnow
from challenges.core.security import is_header_safe
from challenges.extensions import db
from challenges.notifications.models import MailMessage, MessageState

log = logging.getLogger(__name__)

CLAIM_LEASE = timedelta(minutes=10)


class TemporaryDeliveryFailure(Exception):
    """The SMTP server asked us to try later, or the connection failed."""


@dataclass(frozen=True)
class Recipient:
    email: str
    language: str = "en"
    user_id: int | None = None


def recipient_for(user) -> Recipient:
    return Recipient(email=user.email, language=user.language, user_id=user.id)


def message_id_for(event_id: str, recipient: str) -> str:
    """A Message-ID derived from (event, recipient), identical on every retry."""
    digest = hashlib.sha256(f"{event_id}:{recipient.lower()}".encode()).hexdigest()[:40]
    return f"<{digest}@{current_app.config['MAIL_DOMAIN']}>"


@contextmanager
def _rendering_context() -> Iterator[None]:
    """Templates need a request context for absolute links; workers have none."""
    if has_request_context():
        yield
        return
    with current_app.test_request_context(base_url=current_app.config["BASE_URL"]):
        yield


def render_message(template: str, subject, language: str, context: dict) -> tuple[str, str, str]:
    """(subject, text, html) of *template* in *language*; subjects never hold user text."""
    with _rendering_context(), force_locale(language):
        subject_text = str(subject)
        text = render_template(f"email/{template}.txt", **context)
        html = render_template(f"email/{template}.html", subject=subject_text, **context)
    if not is_header_safe(subject_text) or len(subject_text) > 200:
        raise ValueError(f"subject of {template!r} is not a safe header")
    return subject_text, text, html


def deliver(
    event: Event, template: str, subject, recipients: Iterable[Recipient], *,
    sealed_challenge_id: int | None = None, **context
) -> list[MailMessage]:
    """Write one message per recipient of *event* (once) and deliver those not yet delivered.

    A message about a sealed proposal names its challenge in *sealed_challenge_id*: the
    outbox hides it from programme managers until that challenge closes.
    """
    wanted = {r.email.lower(): r for r in recipients}
    existing = {
        m.recipient: m
        for m in db.session.scalars(sa.select(MailMessage).where(MailMessage.event_id == event.id))
    }
    for address, recipient in wanted.items():
        if address in existing:
            continue
        subject_text, text, html = render_message(
            template, subject, recipient.language, dict(context, recipient=recipient)
        )
        message = MailMessage(
            event_id=event.id,
            recipient=address,
            user_id=recipient.user_id,
            template=template,
            sealed_challenge_id=sealed_challenge_id,
            language=recipient.language,
            message_id=message_id_for(event.id, address),
            subject=subject_text,
            body_text=text,
            body_html=html,
        )
        db.session.add(message)
        existing[address] = message
    db.session.commit()
    messages = [existing[a] for a in wanted]
    _send_pending(messages)
    return messages


def build_email(message: MailMessage) -> EmailMessage:
    """The MIME message; only configured values and validated addresses reach headers."""
    config = current_app.config
    for value in (message.recipient, message.subject, config["MAIL_FROM"]):
        if not is_header_safe(value):
            raise ValueError("refusing a header with a line break or an encoded word")
    email = EmailMessage(policy=SMTP)
    email["From"] = config["MAIL_FROM"]
    email["To"] = message.recipient
    email["Subject"] = message.subject
    email["Date"] = format_datetime(message.created_at)
    email["Message-ID"] = message.message_id
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.body_text)
    email.add_alternative(message.body_html, subtype="html")
    email["Content-Language"] = message.language  # after set_content(), which clears Content-*
    return email


def _claim(message: MailMessage) -> bool:
    """Mark *message* as being sent, unless another worker holds it or it is done."""
    now = utcnow()
    result = db.session.execute(
        sa.update(MailMessage)
        .where(
            MailMessage.id == message.id,
            sa.or_(
                MailMessage.state == MessageState.queued,
                sa.and_(
                    MailMessage.state == MessageState.sending,
                    MailMessage.claimed_at < now - CLAIM_LEASE,
                ),
            ),
        )
        .values(state=MessageState.sending, claimed_at=now, attempts=MailMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return result.rowcount == 1  # type: ignore[attr-defined]


def _mark(message: MailMessage, state: MessageState, reply: str | None = None) -> None:
    message.state = state
    message.last_reply = reply
    if state in (MessageState.sent, MessageState.stored):
        message.sent_at = utcnow()
    db.session.commit()


def _send_pending(messages: list[MailMessage]) -> None:
    pending = [m for m in messages if m.state in (MessageState.queued, MessageState.sending)]
    if not pending:
        return
    config = current_app.config
    if not config["SMTP_HOST"]:
        for message in pending:
            if _claim(message):
                _mark(message, MessageState.stored)
        return
    try:
        smtp = smtplib.SMTP(config["SMTP_HOST"], config["SMTP_PORT"], timeout=config["SMTP_TIMEOUT"])
    except OSError as exc:
        raise TemporaryDeliveryFailure(f"cannot connect to the SMTP server: {exc}") from exc
    try:
        if config["SMTP_STARTTLS"]:
            smtp.starttls()
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"])
        failures = []
        for message in pending:
            if _claim(message):
                try:
                    _send_one(smtp, message)
                except TemporaryDeliveryFailure as exc:
                    failures.append(exc)
        if failures:
            # The others went out; the job is retried with backoff for these.
            raise failures[0]
    finally:
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _send_one(smtp: smtplib.SMTP, message: MailMessage) -> None:
    try:
        email = build_email(message)
    except ValueError as exc:
        _mark(message, MessageState.failed, str(exc))
        return
    try:
        refused = smtp.send_message(email, from_addr=current_app.config["MAIL_FROM"],
                                    to_addrs=[message.recipient])
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        _after_refusal(message, code, reply)
        return
    except smtplib.SMTPResponseException as exc:
        _after_refusal(message, exc.smtp_code, exc.smtp_error)
        return
    except (smtplib.SMTPException, OSError) as exc:
        _mark(message, MessageState.queued, str(exc))
        raise TemporaryDeliveryFailure(str(exc)) from exc
    if refused:
        code, reply = next(iter(refused.values()))
        _after_refusal(message, code, reply)
        return
    _mark(message, MessageState.sent, "250")


def _after_refusal(message: MailMessage, code: int, reply: bytes | str) -> None:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    if 400 <= code < 500:
        _mark(message, MessageState.queued, f"{code} {text}")
        raise TemporaryDeliveryFailure(f"{code} {text}")
    log.warning("SMTP server refused message %s: %s %s", message.id, code, text)
    _mark(message, MessageState.failed, f"{code} {text}")
