"""What every package's pages share: one change posted, and kept or its refusals put on the form; a
button that posts one change and goes back; the one way a view says who may open it (:func:`requires`, :func:`allow`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn

from flask import flash, redirect
from flask_login import current_user, login_required

from challenges.core.errors import InvalidInput, PermissionDenied, ServiceError
from challenges.core.forms import ConfirmForm
from challenges.core.translation import lazy_gettext as _l
from challenges.extensions import db

NO_ACCESS = _l("You do not have access to this page.")


def deny() -> NoReturn:
    """The 403 page: one place answers :class:`PermissionDenied`, whichever door asked."""
    raise PermissionDenied(str(NO_ACCESS))


def allow(allowed: bool) -> None:
    """A view's check of whether the person may see or do this: if not, the 403 page."""
    if not allowed:
        deny()


def requires(question: Callable[[Any], bool]) -> Callable[[Callable], Callable]:
    """A view only for signed-in people for whom *question*(person) holds (a role, a membership);
    others get the 403 page, and visitors the login page."""

    def decorate(view: Callable) -> Callable:
        @wraps(view)
        @login_required
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            allow(question(current_user))
            return view(*args, **kwargs)

        return wrapped

    return decorate


manager_required = requires(lambda person: person.is_programme_manager)


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
