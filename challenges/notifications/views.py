"""The programme manager's view of the local mail outbox and of failed event handlers."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from challenges.accounts.forms import ConfirmForm
from challenges.accounts.views import manager_required
from challenges.core.events import retry_dead_handling
from challenges.core.models import Event, EventHandling, HandlingState
from challenges.core.views import page_arg
from challenges.extensions import db
from challenges.notifications.models import MailMessage

bp = Blueprint("notifications", __name__, url_prefix="/admin")


@bp.get("/outbox")
@manager_required
def outbox():
    q = (request.args.get("q") or "").strip()[:254].lower()
    page = page_arg()
    query = sa.select(MailMessage).order_by(MailMessage.created_at.desc(), MailMessage.id.desc())
    if q:
        query = query.where(sa.or_(MailMessage.recipient.contains(q, autoescape=True),
                                   MailMessage.template.contains(q, autoescape=True)))
    messages = db.paginate(query, page=page, per_page=50, error_out=False)
    return render_template("notifications/outbox.html", messages=messages, q=q)


@bp.get("/outbox/<int:message_id>")
@manager_required
def message(message_id: int):
    return render_template("notifications/message.html", message=db.get_or_404(MailMessage, message_id))


@bp.get("/outbox/<int:message_id>/body")
@manager_required
def message_body(message_id: int):
    """The HTML part, served in a sandboxed frame with a CSP that allows no script at all."""
    out = make_response(db.get_or_404(MailMessage, message_id).body_html)
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
