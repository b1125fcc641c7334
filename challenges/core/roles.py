"""The database role the platform runs as, on PostgreSQL: it owns nothing and may only read and write
rows, and not even that where the audit trail is concerned.

Migrations run as the owner (``DATABASE_OWNER_URL``); after them the role in ``DATABASE_URL`` gets
exactly these privileges. It cannot TRUNCATE, change the schema, or switch a trigger off (only an
owner may), and it cannot change or remove a row of the event log or of the ledger's postings and
transfers, nor remove an account or an award: the triggers refuse those to the owner too.
"""

from __future__ import annotations

import sqlalchemy as sa

APPEND_ONLY = ("event_log", "ledger_posting", "ledger_transfer")  # read and added to, never changed
NEVER_REMOVED = ("ledger_account", "award")  # changed as the money moves, never removed


def grant_app_role(connection: sa.Connection, role: str) -> None:
    """Give *role* what the platform needs, and no more, on every table and sequence there is now."""
    quote = connection.dialect.identifier_preparer.quote
    who = quote(role)
    for statement in (
        f"GRANT USAGE ON SCHEMA public TO {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
        f"REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {who}",
        f"REVOKE UPDATE, DELETE ON {', '.join(APPEND_ONLY)} FROM {who}",
        f"REVOKE DELETE ON {', '.join(NEVER_REMOVED)} FROM {who}",
    ):
        connection.execute(sa.text(statement))
