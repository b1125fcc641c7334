"""Where transactions end: once per request, and at the steps a job names.

Services flush and never commit. A request's transaction is committed in one place, when the
response is ready and says the request succeeded (a status below 400), and rolled back otherwise;
a view that shows a refusal rolls back first (``form_error``), so what a refused change flushed
is never kept. A commit that fails there (the database gone, a unique row written first by
another request) becomes the error page, as any other exception does, and nothing is kept.

A job's transaction is committed by :func:`commit`, called by the job runner after a handler and
by the few jobs that must keep each step as it is made (a sending job records each delivery before
the next message). :func:`commit_first` is the one commit that expects to lose a race, and :func:`commit_part` keeps a
handler's work in parts when it is many independent rows (a notice to thousands of followers).

Something done outside the database while a transaction is open (a file written before its row)
is undone with :func:`on_rollback` when that transaction does not commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlalchemy as sa
from flask import Flask, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, SessionTransaction

from challenges.core.models import EventHandling, HandlingState
from challenges.extensions import db

log = logging.getLogger(__name__)

_UNDO = "challenges_undo"


def commit() -> None:
    """End the session's transaction, keeping what it did: the job runner's boundary, and a step of a
    job that keeps each step."""
    db.session.commit()


def commit_first() -> bool:
    """Commit; or, when another transaction wrote the same unique row first, roll back and say so."""
    try:
        commit()
    except IntegrityError:
        db.session.rollback()
        return False
    return True


# session.info: the (event, handler) whose handler events.run_handler is running
RUNNING_HANDLING = "challenges_running_handling"


class HandledElsewhere(Exception):
    """Another run of the same handling finished it while this one had let go of its lock."""


def commit_part() -> None:
    """For a handler whose work is many rows each written once (a notice to thousands): keep what it
    has written so far, so that it can be acted on while the rest is written, then lock its handling
    again. A second run of the handling waits on that lock and finds what was kept; a run that finds
    the handling finished by another stops with :class:`HandledElsewhere`. Outside a handler's run,
    nothing is committed."""
    running = db.session.info.get(RUNNING_HANDLING)
    if running is None:
        return
    commit()
    handling = db.session.get(EventHandling, running, with_for_update=True, populate_existing=True)
    if handling is None or handling.state is not HandlingState.pending:
        raise HandledElsewhere(running)


def on_rollback(undo: Callable[[], None]) -> None:
    """Run *undo* if the session's transaction ends without a commit (a rollback, an error, a close)."""
    db.session.info.setdefault(_UNDO, []).append(undo)


@sa.event.listens_for(Session, "after_commit")
def _kept(session: Session) -> None:
    session.info.pop(_UNDO, None)


@sa.event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is not None:
        return
    for undo in session.info.pop(_UNDO, []):
        try:
            undo()
        except Exception:  # one undo failing must not stop the others, nor hide the first error
            log.exception("undoing what a rolled-back transaction did outside the database failed")


def _end_request(response: Response) -> Response:
    if response.status_code < 400:
        try:
            commit()
        except BaseException:
            db.session.rollback()
            raise
    else:
        db.session.rollback()
    return response


def init_app(app: Flask) -> None:
    app.after_request(_end_request)
