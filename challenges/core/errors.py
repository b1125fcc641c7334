"""Domain errors raised by services, and the error pages (no traceback ever reaches a user)."""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from challenges.extensions import db

log = logging.getLogger(__name__)


class ServiceError(Exception):
    """A refusal with a message the person can act on; optionally tied to a form field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class PermissionDenied(Exception):
    """The acting person may not do this: not a refusal to put beside a form's field, but the 403 page,
    answered in one place (below), whichever door asked."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(ServiceError):
    """Several fields were refused at once; *errors* maps each field name to its message."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(next(iter(errors.values())), next(iter(errors)))
        self.errors = errors


def _page(status: int, title: str, message: str):
    return render_template("errors/error.html", status=status, title=title, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return _page(
            400,
            _("The form could not be accepted"),
            _(
                "The form was missing its security token or it had expired. "
                "Go back, reload the page and try again."
            ),
        )

    @app.errorhandler(PermissionDenied)
    def permission_denied(exc: PermissionDenied):
        db.session.rollback()
        return _page(403, _("Not allowed"), exc.message)

    @app.errorhandler(429)
    def too_many(exc: HTTPException):
        return _page(
            429,
            _("Too many attempts"),
            _("Too many failed attempts in a short time. Wait a minute and try again."),
        )

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError):
        db.session.rollback()
        log.exception("database unavailable on %s %s", request.method, request.path)
        return _page(503, _("Temporarily unavailable"), _("Please try again in a moment."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {
            400: _("The request could not be understood."),
            403: _("You do not have access to this page."),
            404: _("There is nothing at this address."),
            405: _("This page cannot be used that way."),
            413: _("The upload is too large."),
        }
        status = exc.code or 500
        return _page(status, exc.name, messages.get(status, exc.description or ""))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        db.session.rollback()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _page(
            500,
            _("Something went wrong"),
            _("The error has been logged. Nothing was saved from this request."),
        )
