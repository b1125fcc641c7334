"""One row per (event, recipient) message: the delivery record and the local outbox."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from challenges.core.models import UTCDateTime, enum_column, utcnow
from challenges.extensions import Model

if TYPE_CHECKING:
    from challenges.calls.models import Challenge


class MessageState(enum.Enum):
    queued = "queued"
    sending = "sending"
    sent = "sent"  # accepted by the SMTP server
    stored = "stored"  # kept in the local outbox (no SMTP server configured)
    failed = "failed"  # refused permanently by the SMTP server


class MailMessage(Model):
    """An email rendered for one recipient of one event; sent at most once per pair."""

    __tablename__ = "mail_message"
    __table_args__ = (
        sa.UniqueConstraint("event_id", "recipient", name="one_per_event_recipient"),
        sa.Index("ix_mail_message_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.ForeignKey("event_log.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(sa.String(254), index=True)
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="SET NULL"), index=True
    )
    template: Mapped[str] = mapped_column(sa.String(60))
    # A message about a proposal is sealed like the proposal: while this challenge is open the
    # outbox shows that it exists, not to whom or what it says.
    sealed_challenge_id: Mapped[int | None] = mapped_column(sa.ForeignKey("challenge.id", ondelete="SET NULL"))
    sealed_challenge: Mapped[Challenge | None] = relationship()
    language: Mapped[str] = mapped_column(sa.String(2))
    message_id: Mapped[str] = mapped_column(sa.String(120), unique=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    body_text: Mapped[str] = mapped_column(sa.Text)
    body_html: Mapped[str] = mapped_column(sa.Text)
    state: Mapped[MessageState] = mapped_column(
        enum_column(MessageState, "message_state"), default=MessageState.queued
    )
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    last_reply: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def is_sealed(self, now: datetime | None = None) -> bool:
        """About a proposal to a challenge that is still open: not for the programme's eyes yet."""
        return self.sealed_challenge is not None and self.sealed_challenge.is_open(now)
