"""The audit trail is guarded in the database itself: the event log and the ledger's postings and
transfers are never changed or removed, accounts and awards never removed, by anyone; and on
PostgreSQL the platform runs as a role that owns nothing (DATABASE_OWNER_URL is the owner)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from challenges.core.roles import APPEND_ONLY, NEVER_REMOVED
from challenges.extensions import db

CHANGES = [
    ("UPDATE event_log SET type = 'Forged'", "event_log"),
    ("DELETE FROM event_log", "event_log"),
    ("UPDATE ledger_posting SET amount_ore = amount_ore * 2", "ledger_posting"),
    ("DELETE FROM ledger_posting", "ledger_posting"),
    ("UPDATE ledger_transfer SET amount_ore = 1", "ledger_transfer"),
    ("DELETE FROM ledger_transfer", "ledger_transfer"),
    ("DELETE FROM ledger_account", "ledger_account"),
    ("UPDATE ledger_account SET kind = 'returned'", "ledger_account"),
    ("DELETE FROM award", "award"),
]


def _counts(connection) -> dict[str, int]:
    return {
        t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()  # noqa: S608 - our tables
        for t in (*APPEND_ONLY, *NEVER_REMOVED)
    }


@pytest.mark.parametrize(("statement", "table"), CHANGES, ids=[c[0] for c in CHANGES])
def test_even_the_owner_cannot_change_the_audit_trail(booked, owner, statement, table):
    with owner.connect() as conn:
        before = _counts(conn)
        assert before[table] > 0
        with pytest.raises(sa.exc.DatabaseError, match="immutable"):
            conn.execute(sa.text(statement))
        conn.rollback()
        assert _counts(conn) == before


def test_a_truncate_is_refused_too(booked, owner):
    if owner.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE: its DELETE without WHERE meets the row triggers")
    for table in (*APPEND_ONLY, *NEVER_REMOVED):
        with owner.connect() as conn, pytest.raises(sa.exc.DatabaseError, match="immutable"):
            conn.execute(sa.text(f"TRUNCATE {table} CASCADE"))


def test_the_platforms_role_owns_nothing_and_may_only_read_and_write_rows(app, booked, owner):
    if not app.config["DATABASE_OWNER_URL"]:
        pytest.skip("the platform runs as its own role only on PostgreSQL with DATABASE_OWNER_URL")
    refused = [
        "TRUNCATE mail_message",  # no TRUNCATE, anywhere
        "CREATE TABLE intruder (id integer)",  # no DDL
        "ALTER TABLE ledger_transfer DISABLE TRIGGER USER",  # only an owner switches a trigger off
        "ALTER TABLE award ADD COLUMN note text",
        "DROP TABLE follow",
        "UPDATE alembic_version SET version_num = 'x'",
        "UPDATE event_log SET type = 'Forged'",
    ]
    for statement in refused:
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied|must be owner"),
            db.engine.connect() as c,
        ):
            c.execute(sa.text(statement))
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT current_user")).scalar_one() != owner.url.username
        assert (
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = current_user"
                )
            ).scalar_one()
            == 0
        )
