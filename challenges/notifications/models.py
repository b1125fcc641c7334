"""One row per (event, recipient) message: the delivery record and the local outbox."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import Event, UTCDateTime, enum_column, utcnow
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import Model

if TYPE_CHECKING:
    from challenges.accounts.models import ActionToken
    from challenges.calls.models import Challenge


class MessageState(enum.Enum):
    queued = "queued"  # waiting to be sent
    sending = "sending"  # claimed by a worker
    sent = "sent"  # accepted by the SMTP server
    stored = "stored"  # kept in the local outbox (no SMTP server configured)
    failed = "failed"  # a temporary failure: tried again later
    dead = "dead"  # refused for good, or out of tries: waits for a manager's resend
    held = "held"  # waits for the person's daily digest
    digested = "digested"  # went out in a daily digest
    muted = "muted"  # not emailed: the person turned these off (still on the site)


STATE_LABELS = {
    MessageState.queued: _l("Queued"),
    MessageState.sending: _l("Sending"),
    MessageState.sent: _l("Sent"),
    MessageState.stored: _l("Kept in the local outbox"),
    MessageState.failed: _l("Failed, will be tried again"),
    MessageState.dead: _l("Not delivered"),
    MessageState.held: _l("Waiting for the daily digest"),
    MessageState.digested: _l("Sent in a daily digest"),
    MessageState.muted: _l("Not emailed (turned off)"),
}

# States a worker may still send from, and states a manager may resend from.
SENDABLE = (MessageState.queued, MessageState.failed)
RESENDABLE = (MessageState.dead, MessageState.sent, MessageState.stored)


class MailContent(Model):
    """What a message says: its subject and its two bodies, written once for every recipient who gets
    the same words (a notice to a challenge's thousands of followers has one per language)."""

    __tablename__ = "mail_content"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text)


class MailMessage(Model):
    """One notice rendered for one recipient of one event: the delivery record, the local outbox and
    the person's in-app notification. Sent at most once per (event, notice, recipient), except by a
    manager's explicit resend. What it says is its :class:`MailContent`, shared with the recipients
    who get the same words."""

    __tablename__ = "mail_message"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "notice", "recipient", name="one_per_event_notice_recipient"),
        sa.Index("ix_mail_message_created", "created_at"),
        sa.Index("ix_mail_message_due", "state", "next_attempt_at"),
        sa.Index("ix_mail_message_unread", "user_id", "read_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("event_log.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(sa.String(254), index=True)
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    notice: Mapped[str] = mapped_column(sa.String(60))  # a key of the catalogue
    # A message about a proposal is sealed like the proposal: while this challenge is open the
    # outbox shows that it exists, not to whom or what it says.
    sealed_challenge_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("challenge.id", ondelete="SET NULL")
    )
    sealed_challenge: Mapped[Challenge | None] = relationship()
    event: Mapped[Event] = relationship()
    language: Mapped[str] = mapped_column(sa.String(2))
    message_id: Mapped[str] = mapped_column(sa.String(120), unique=True)
    content_id: Mapped[int] = mapped_column(sa.ForeignKey("mail_content.id"))
    # Loaded for many messages at once by one statement that reads each content once.
    content: Mapped[MailContent] = relationship(lazy="selectin")
    state: Mapped[MessageState] = mapped_column(
        enum_column(MessageState, "message_state"), default=MessageState.queued
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)  # since it was written or last resent
    last_reply: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a worker may next try it, and when a job for it was last put on the queue: the sweeper
    # re-enqueues what is due and was not enqueued within the lease (Redis may have lost it).
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(sa.String(100))  # the send job holding the claim
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    digest_id: Mapped[int | None] = mapped_column(sa.ForeignKey("mail_message.id", ondelete="SET NULL"))
    resent_count: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    resent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resent_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user_account.id", ondelete="SET NULL"))
    # A message with a one-time link (a password reset, an invitation) is stored with the link left out:
    # the link is made from this token only for the bytes handed to the SMTP server.
    link_token_id: Mapped[str | None] = mapped_column(sa.ForeignKey("action_token.id", ondelete="SET NULL"))
    link_token: Mapped[ActionToken | None] = relationship()

    def is_sealed(self, now: datetime | None = None) -> bool:
        """About a proposal to a challenge that is still open: not for the programme's eyes yet."""
        return self.sealed_challenge is not None and self.sealed_challenge.is_open(now)

    @property
    def subject(self) -> str:
        return self.content.subject

    @property
    def body_text(self) -> str:
        return self.content.body_text

    @property
    def body_html(self) -> str:
        return self.content.body_html

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])


class MailDigest(Model):
    """One daily digest per person and local day, written with the messages it gathers."""

    __tablename__ = "mail_digest"

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("event_log.id", ondelete="CASCADE"))
