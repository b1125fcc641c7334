"""The programme manager's view of the local mail outbox, of failed event handlers, and of how the
background work goes (the health page)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core import health
from challenges.core.bus import get_bus
from challenges.core.errors import PermissionDenied
from challenges.core.forms import ConfirmForm
from challenges.core.models import Event, EventHandling, HandlingState, utcnow
from challenges.core.pages import manager_required
from challenges.core.sweeper import retry_dead_handling
from challenges.core.views import page_arg
from challenges.extensions import db
from challenges.notifications import services
from challenges.notifications.catalogue import CATALOGUE, NOTICES
from challenges.notifications.models import RESENDABLE, STATE_LABELS, MailMessage, MessageState

bp = Blueprint("notifications", __name__, url_prefix="/admin")
inbox = Blueprint("inbox", __name__)


def _outbox_query(q: str, event_type: str, state: MessageState | None):
    query = (
        sa.select(MailMessage)
        .options(joinedload(MailMessage.sealed_challenge))
        .order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
    )
    if state is not None:
        query = query.where(MailMessage.state == state)
    if event_type:
        bus = get_bus()  # the names it was ever stored under
        query = query.where(
            MailMessage.event.has(Event.type.in_(bus.stored_names(bus.event_types[event_type])))
        )
    if q:
        query = query.where(
            sa.or_(
                MailMessage.recipient.contains(q, autoescape=True),
                MailMessage.notice.contains(q, autoescape=True),
            )
        )
    if q or event_type:  # a match on a sealed message would tell who applied, or how many did
        sealed = (
            sa.select(Challenge.id)
            .where(
                Challenge.id == MailMessage.sealed_challenge_id,
                Challenge.status == ChallengeStatus.published,
                Challenge.deadline > utcnow(),
            )
            .exists()
        )
        query = query.where(~sealed)
    return query


@bp.get("/outbox")
@manager_required
def outbox():
    """Every message, searchable by recipient and event, filtered by state; the dead letters first
    among the filters."""
    q = (request.args.get("q") or "").strip()[:254].lower()
    event_type = request.args.get("event") or ""
    event_types = sorted({n.event for n in NOTICES})
    if event_type not in event_types:
        event_type = ""
    try:
        state = MessageState(request.args.get("state")) if request.args.get("state") else None
    except ValueError:
        state = None
    messages = db.paginate(_outbox_query(q, event_type, state), page=page_arg(), per_page=50, error_out=False)
    dead = db.session.scalar(
        sa.select(sa.func.count()).select_from(MailMessage).where(MailMessage.state == MessageState.dead)
    )
    return render_template(
        "notifications/outbox.html",
        messages=messages,
        q=q,
        now=utcnow(),
        event=event_type,
        event_types=event_types,
        state=state,
        states=list(MessageState),
        dead=dead,
        labels=STATE_LABELS,
        form=ConfirmForm(),
    )


@bp.post("/outbox/<int:message_id>/resend")
@manager_required
def resend(message_id: int):
    message = _readable(message_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.resend(message, by=current_user)
    except ValueError:
        flash(
            _("Only a delivered or undelivered message can be resent; this one is still on its way."), "error"
        )
        return redirect(url_for("notifications.message", message_id=message.id), 303)
    flash(_("The message will be sent again to %(address)s.", address=message.recipient))
    if request.form.get("back") == "dead":  # resent from the dead-letter list: back to the list
        return redirect(url_for("notifications.outbox", state="dead"), 303)
    return redirect(url_for("notifications.message", message_id=message.id), 303)


def _readable(message_id: int) -> MailMessage:
    message = db.get_or_404(MailMessage, message_id)
    if message.is_sealed():
        raise PermissionDenied(
            _(
                "This message is about a proposal that is sealed until the challenge's deadline. "
                "It can be read after the deadline."
            )
        )
    return message


@bp.get("/outbox/<int:message_id>")
@manager_required
def message(message_id: int):
    return render_template(
        "notifications/message.html",
        message=_readable(message_id),
        form=ConfirmForm(),
        catalogue=CATALOGUE,
        resendable=RESENDABLE,
    )


@bp.get("/outbox/<int:message_id>/body")
@manager_required
def message_body(message_id: int):
    """The HTML part, served in a sandboxed frame with a CSP that allows no script at all."""
    out = make_response(_readable(message_id).body_html)
    out.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    out.headers["X-Frame-Options"] = "SAMEORIGIN"
    return out


def _dead_handlings(limit: int):
    return db.session.execute(
        sa.select(EventHandling, Event)
        .join(Event)
        .where(EventHandling.state == HandlingState.dead)
        .order_by(Event.occurred_at.desc())
        .limit(limit)
    ).all()


@bp.get("/events/failed")
@manager_required
def failed_handlers():
    return render_template("notifications/failed.html", rows=_dead_handlings(200), form=ConfirmForm())


@bp.get("/health")
@manager_required
def health_page():
    """What ``python -m worker health`` says, with the dead letters and the mail not yet delivered."""
    found = health.report()
    return render_template(
        "notifications/health.html",
        report=found,
        mail=services.mail_backlog(),
        rows=_dead_handlings(20),
        form=ConfirmForm(),
    )


@bp.post("/events/<event_id>/<handler>/rerun")
@manager_required
def rerun_handler(event_id: str, handler: str):
    handling = db.get_or_404(EventHandling, (event_id, handler))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        retry_dead_handling(handling, by=current_user)
    except ValueError:
        abort(409)
    flash(_("The handler will run again."))
    back = (
        "notifications.health_page"
        if request.form.get("back") == "health"
        else "notifications.failed_handlers"
    )
    return redirect(url_for(back), 303)


# --- each person's own mail ---------------------------------------------------------------------


@inbox.get("/messages")
@login_required
def messages():
    """This person's notifications: every message written for them, emailed or not."""
    return render_template(
        "notifications/messages.html",
        form=ConfirmForm(),
        messages=db.paginate(
            services.my_messages_query(current_user), page=page_arg(), per_page=50, error_out=False
        ),
    )


@inbox.get("/messages/<int:message_id>")
@login_required
def my_message(message_id: int):
    message = db.get_or_404(MailMessage, message_id)
    if message.user_id != current_user.id or message.notice == "digest":
        abort(404)
    if message.read_at is None:
        services.mark_read(current_user, message)
    return render_template("notifications/my_message.html", message=message)


@inbox.post("/messages/read")
@login_required
def mark_all_read():
    if not ConfirmForm().validate_on_submit():
        abort(400)
    count = services.mark_read(current_user)
    flash(ngettext("%(num)d message marked as read.", "%(num)d messages marked as read.", count))
    return redirect(url_for("inbox.messages"), 303)


@inbox.app_context_processor
def unread_messages() -> dict:
    """The unread count in the header, for a signed-in person (read with the login session)."""

    def count() -> int:
        return services.unread_count(current_user) if current_user.is_authenticated else 0

    return {"unread_messages": count}
