"""The programme manager's view of the local mail outbox and of failed event handlers."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload

from challenges.accounts.forms import ConfirmForm
from challenges.accounts.views import manager_required
from challenges.calls.models import Challenge, ChallengeStatus
from challenges.core.errors import PermissionDenied
from challenges.core.events import retry_dead_handling
from challenges.core.models import Event, EventHandling, HandlingState, utcnow
from challenges.core.views import page_arg
from challenges.extensions import db
from challenges.notifications.models import MailMessage

bp = Blueprint("notifications", __name__, url_prefix="/admin")
inbox = Blueprint("inbox", __name__)


@bp.get("/outbox")
@manager_required
def outbox():
    q = (request.args.get("q") or "").strip()[:254].lower()
    page = page_arg()
    query = (sa.select(MailMessage).options(joinedload(MailMessage.sealed_challenge))
             .order_by(MailMessage.created_at.desc(), MailMessage.id.desc()))
    if q:  # a match on a sealed message's recipient would tell who applied
        sealed = (sa.select(Challenge.id).where(Challenge.id == MailMessage.sealed_challenge_id,
                                                 Challenge.status == ChallengeStatus.published,
                                                 Challenge.deadline > utcnow()).exists())
        query = query.where(sa.or_(MailMessage.recipient.contains(q, autoescape=True),
                                   MailMessage.template.contains(q, autoescape=True)), ~sealed)
    messages = db.paginate(query, page=page, per_page=50, error_out=False)
    return render_template("notifications/outbox.html", messages=messages, q=q, now=utcnow())


def _readable(message_id: int) -> MailMessage:
    message = db.get_or_404(MailMessage, message_id)
    if message.is_sealed():
        raise PermissionDenied(_("This message is about a proposal that is sealed until the challenge's deadline. "
                                 "It can be read after the deadline."))
    return message


@bp.get("/outbox/<int:message_id>")
@manager_required
def message(message_id: int):
    return render_template("notifications/message.html", message=_readable(message_id))


@bp.get("/outbox/<int:message_id>/body")
@manager_required
def message_body(message_id: int):
    """The HTML part, served in a sandboxed frame with a CSP that allows no script at all."""
    out = make_response(_readable(message_id).body_html)
    out.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    out.headers["X-Frame-Options"] = "SAMEORIGIN"
    return out


@bp.get("/events/failed")
@manager_required
def failed_handlers():
    rows = db.session.execute(
        sa.select(EventHandling, Event).join(Event)
        .where(EventHandling.state == HandlingState.dead)
        .order_by(Event.occurred_at.desc()).limit(200)
    ).all()
    return render_template("notifications/failed.html", rows=rows, form=ConfirmForm())


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
    db.session.commit()
    flash(_("The handler will run again."))
    return redirect(url_for("notifications.failed_handlers"), 303)


# --- each person's own mail ---------------------------------------------------------------------


@inbox.get("/messages")
@login_required
def messages():
    """The email this person has been sent, readable without a mail client."""
    query = (sa.select(MailMessage).where(MailMessage.user_id == current_user.id)
             .order_by(MailMessage.created_at.desc(), MailMessage.id.desc()))
    return render_template("notifications/messages.html",
                           messages=db.paginate(query, page=page_arg(), per_page=50, error_out=False))


@inbox.get("/messages/<int:message_id>")
@login_required
def my_message(message_id: int):
    message = db.get_or_404(MailMessage, message_id)
    if message.user_id != current_user.id:
        abort(404)
    return render_template("notifications/my_message.html", message=message)
