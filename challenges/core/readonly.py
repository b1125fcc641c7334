"""A request (or job) that only read ends its transaction with COMMIT, not ROLLBACK.

The two are the same to PostgreSQL for a transaction that wrote nothing, but not to psycopg: a
ROLLBACK empties its cache of prepared statements (something rolled back might have dropped what
they name). Every GET ending in a rollback means every statement of every page is parsed and
planned afresh; a page's eager loads join up to ten tables, and planning them costs more than
running them. Ended with a commit, a statement is prepared on its fifth use on a pooled connection
and planned once.

A transaction counts as having written when any statement other than a plain SELECT went through
its connection (an INSERT, an UPDATE, a DELETE, a SAVEPOINT, a SET, a WITH that might hide a write,
a SELECT … INTO, a SELECT … FOR UPDATE), when the session has anything to flush, or when it holds
something a commit would hand on (a job to enqueue, a change to the public pages): those still end
with the rollback they always did, as does anything that ends with an exception. What goes behind
SQLAlchemy's back (the driver's own cursor, a function with side effects called by a SELECT) is not
seen; the application does neither.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session, SessionTransaction

from challenges.core.events import RELAYED
from challenges.extensions import db

log = logging.getLogger(__name__)

_WROTE = "challenges_wrote"
_CONNECTION = "challenges_connection"
_PLAIN_SELECT = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_WRITING_SELECT = re.compile(
    r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE|KEY\s+SHARE)\b|\bINTO\b", re.IGNORECASE
)


def _note(conn: sa.Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if not _PLAIN_SELECT.match(statement) or _WRITING_SELECT.search(statement):
        conn.info[_WROTE] = True


def _forget(conn: sa.Connection) -> None:
    conn.info.pop(_WROTE, None)


@sa.event.listens_for(Session, "after_begin")
def _began(session: Session, _transaction: Any, connection: sa.Connection) -> None:
    session.info[_CONNECTION] = connection


@sa.event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTION, None)


def only_read() -> bool:
    """Whether the session's open transaction reached the database, has written nothing there, has
    nothing to write and nothing for a commit to hand on."""
    session = db.session()
    connection = session.info.get(_CONNECTION)
    if connection is None or session.new or session.dirty or session.deleted:
        return False
    if any(session.info.get(key) for key in RELAYED):
        return False
    return not connection.info.get(_WROTE)


def _end(exc: BaseException | None) -> None:
    if exc is not None:
        return
    try:
        if only_read():
            db.session.commit()
    except sa.exc.SQLAlchemyError:  # the rollback that follows (Flask-SQLAlchemy's) ends it instead
        log.warning("a read-only transaction did not commit", exc_info=True)


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
    if engine.dialect.name != "postgresql":
        return
    sa.event.listen(engine, "before_cursor_execute", _note)
    for name in ("commit", "rollback"):
        sa.event.listen(engine, name, _forget)
    app.teardown_appcontext(_end)  # runs before Flask-SQLAlchemy's, which was registered earlier
