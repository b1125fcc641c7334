"""Notices: written with the event that caused them, then delivered once per (event, notice, recipient).

A handler calls :func:`notify` inside its own transaction: one row per recipient is written with
the rest of the handler's work (unique on the triple, so a re-run writes nothing new), rendered in
the recipient's language. After the commit the rows' ids go on the ``notifications`` queue, where
:func:`~challenges.notifications.jobs.send_mail` claims them, sends them over one SMTP connection (or keeps them in the local
outbox when no server is configured) and records each outcome:

* accepted → *sent*;
* a temporary failure (4xx, a dropped or failed connection) → *failed*, tried again after a
  growing delay (``MAIL_RETRY_DELAYS``: by default 6 tries over almost two hours);
* a permanent refusal (5xx), an unsafe address, or the last try failing → *dead*, listed for the
  programme manager, who may *resend*.

Every step is recorded in the database first, so Redis may lose any job: ``jobs.sweep_mail``
re-enqueues what is due and was not picked up within the lease. A worker killed between the
server's acceptance and the record can send that one message again on retry; it carries the same
Message-ID, so it is recognisable as the same message.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app, has_request_context, render_template
from flask_babel import force_locale
from jinja2 import meta

from challenges.accounts.models import ActionToken, MailMode, User
from challenges.accounts.sessions import SESSION_COUNTS
from challenges.core.bus import get_bus
from challenges.core.models import Event, utcnow
from challenges.core.security import is_header_safe
from challenges.core.transaction import commit_part
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import db
from challenges.notifications.catalogue import CATALOGUE, Notice
from challenges.notifications.models import RESENDABLE, MailContent, MailMessage, MessageState

log = logging.getLogger(__name__)

MAIL_KEY = "challenges_mail"
BATCH = 500  # messages per send job (one SMTP connection, one claim); fewer per job cost more jobs
PART = BATCH  # messages written and committed together by a notice written in parts
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
    in_parts: bool = False,
    **context: Any,
) -> list[int]:
    """Write notice *key* of *record_* for each recipient who does not have it yet; flush, never commit;
    return the messages' ids, in the order of *recipients*.

    The messages go on the queue when the handler's transaction commits. A message about a sealed
    proposal names its challenge in *sealed_challenge_id*: the outbox hides it from programme
    managers until that challenge closes. A message with a one-time link gets the link's token in
    *link_token*: it is stored, and shown in the outbox and on the site, with the link left out, and
    only the copy handed to the SMTP server carries it (unless OUTBOX_SHOWS_LINKS, for development).

    With *in_parts*, run by a handler whose work up to here may be kept before the rest (a notice to a
    challenge's followers, thousands of them), the messages are written and committed ``PART`` at a
    time, and each part goes on the queue as it is committed: the first are sent while the rest are
    written. A run stopped between two parts is run again and writes only the messages not yet written.
    """
    shows_link = link_token is not None and current_app.config["OUTBOX_SHOWS_LINKS"]
    notice = CATALOGUE[key]
    if not get_bus().same_type(record_.type, notice.event):
        raise ValueError(f"notice {key!r} is sent for {notice.event}, not {record_.type}")
    wanted = {r.email.lower(): r for r in recipients}
    ids: dict[str, int] = dict(
        db.session.execute(
            sa.select(MailMessage.recipient, MailMessage.id).where(
                MailMessage.event_id == record_.id, MailMessage.notice == key
            )
        ).all()
    )
    rows: list[dict[str, Any]] = []
    contents: list[dict[str, str]] = []  # each content once; a row names its place here until written
    rendered: dict[str, int] = {}  # the content by language, when the templates do not name the recipient
    personal = any(_names_recipient(f"email/{notice.template}.{kind}") for kind in ("txt", "html"))
    with _rendering_context():  # one request context for all the messages, not one each
        for address, recipient in wanted.items():
            if address in ids:
                continue
            language = _language(recipient.language)
            if personal or language not in rendered:
                if link_token is not None:
                    context["link"] = link_token.link() if shows_link else _link_left_out(language)
                subject, text, html = render_message(
                    notice, language, dict(context, recipient=recipient), subject_args
                )
                rendered[language] = len(contents)
                contents.append(dict(subject=subject, body_text=text, body_html=html))
            rows.append(
                dict(
                    event_id=record_.id,
                    recipient=address,
                    user_id=recipient.user_id,
                    notice=key,
                    sealed_challenge_id=sealed_challenge_id,
                    language=language,
                    message_id=message_id_for(record_.id, key, address),
                    content_id=rendered[language],
                    state=_first_state(notice, recipient),
                    link_token_id=link_token.id if link_token is not None and not shows_link else None,
                )
            )
    if contents:
        content_ids = (
            db.session.execute(
                sa.insert(MailContent).returning(MailContent.id, sort_by_parameter_order=True), contents
            )
            .scalars()
            .all()
        )
        for row in rows:
            row["content_id"] = content_ids[row["content_id"]]
    size = PART if in_parts else max(len(rows), 1)
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        if start:
            commit_part()  # the part before is kept, and goes on the queue
        # Written without RETURNING, which would make the driver parse one statement with a placeholder
        # for each value of the part, then read back: the ids only grow, and this handler alone writes
        # this event's notice (its handling is locked).
        floor = max(ids.values(), default=0)
        db.session.execute(sa.insert(MailMessage), part)
        written = db.session.execute(
            sa.select(MailMessage.recipient, MailMessage.id, MailMessage.state).where(
                MailMessage.event_id == record_.id, MailMessage.notice == key, MailMessage.id > floor
            )
        ).all()
        ids.update((recipient, id_) for recipient, id_, _state in written)
        db.session.info.setdefault(MAIL_KEY, []).extend(
            id_ for _recipient, id_, state in written if state is MessageState.queued
        )
    return [ids[a] for a in wanted]


# --- a manager's resend ----------------------------------------------------------------------------


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


SESSION_COUNTS["unread_messages"] = unread_of  # in the header of every page


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
