"""The daily digest: one email per person and day, listing the messages held for it."""

from __future__ import annotations

import sqlalchemy as sa

from challenges.accounts.models import User
from challenges.core.bus import NOTIFICATIONS_QUEUE, EventBus
from challenges.core.models import Event
from challenges.extensions import db
from challenges.notifications import events
from challenges.notifications.models import MailMessage
from challenges.notifications.services import notify, recipient_for


def send_digest(e: events.DigestCompiled, record: Event) -> None:
    user = db.session.get(User, e.user_id)
    if user is None:
        return  # the account is gone; its messages went with it
    messages = list(
        db.session.scalars(
            sa.select(MailMessage)
            .where(MailMessage.id.in_(e.message_ids))
            .order_by(MailMessage.created_at, MailMessage.id)
        )
    )
    if not messages:
        return  # nothing to send: an empty digest is never sent
    [digest_id] = notify(record, "digest", [recipient_for(user)], messages=messages, user=user)  # essential
    for message in messages:
        message.digest_id = digest_id


def register(bus: EventBus) -> None:
    bus.declare(*events.ALL)
    bus.subscribe(
        events.DigestCompiled, send_digest, name="notifications_send_digest", queue=NOTIFICATIONS_QUEUE
    )
