"""What every package's pages share: one change posted, and kept or its refusals put on the form; a
button that posts one change and goes back; the pages only programme managers open."""

from __future__ import annotations

from functools import wraps

from flask import abort, flash, redirect
from flask_login import current_user, login_required

from challenges.core.errors import InvalidInput, ServiceError
from challenges.core.forms import ConfirmForm
from challenges.extensions import db


def manager_required(view):
    """Only programme managers; others get 403, anonymous visitors the login page."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_programme_manager:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def form_error(form, exc: ServiceError) -> None:
    """Show a service's refusal beside its field, or at the top of the form."""
    db.session.rollback()
    refusals = exc.errors if isinstance(exc, InvalidInput) else {exc.field: exc.message}
    for name, message in refusals.items():
        field = getattr(form, name, None) if name else None
        if field is not None:
            field.errors = [*field.errors, message]
        else:
            form.form_errors.append(message)


def commit_change(form, change) -> bool:
    """Run one service call, kept when the request ends (``core.transaction``); on a refusal put its
    messages on *form*, change nothing and return False. A permission refusal becomes the 403 page."""
    try:
        change()
        db.session.flush()
    except ServiceError as exc:
        form_error(form, exc)
        return False
    return True


def change_and_return(change, done: str, target: str, form=None):
    """A button (or a small form) that posts one change: run it, flash *done* or every
    refusal, and go back to *target*. CSRF is checked for every POST by CSRFProtect."""
    form = form or ConfirmForm()
    if form.validate_on_submit() and commit_change(form, change):
        flash(done)
    else:
        for message in [
            *form.form_errors,
            *(m for f in form if f.type != "CSRFTokenField" for m in f.errors),
        ]:
            flash(str(message), "error")
    return redirect(target, 303)
