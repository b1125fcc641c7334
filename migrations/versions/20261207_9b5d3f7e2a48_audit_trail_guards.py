"""The audit trail is guarded in the database: the event log, the ledger's postings and transfers take
no UPDATE, DELETE or TRUNCATE; accounts and awards are never removed, and an account never changes
which year, kind or award it is.

Revision ID: 9b5d3f7e2a48
Revises: 8a4c2e6d1f37
Create Date: 2026-12-07 07:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '9b5d3f7e2a48'
down_revision = '8a4c2e6d1f37'
branch_labels = None
depends_on = None

APPEND_ONLY = ('event_log', 'ledger_posting')  # (ledger_transfer has had its row triggers since the ledger)
NEVER_REMOVED = ('ledger_account', 'award')
TRUNCATE_GUARDED = (*APPEND_ONLY, 'ledger_transfer', *NEVER_REMOVED)
ACCOUNT_IDENTITY = ('programme_year_id', 'kind', 'award_id')


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION audit_trail_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% on % refused: the audit trail is immutable', TG_OP, TG_TABLE_NAME;
            END $$""")
        op.execute(f"""
            CREATE FUNCTION ledger_account_identity_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF {' OR '.join(f'NEW.{c} IS DISTINCT FROM OLD.{c}' for c in ACCOUNT_IDENTITY)} THEN
                    RAISE EXCEPTION 'an account''s year, kind and award are immutable';
                END IF;
                RETURN NEW;
            END $$""")
        for table in APPEND_ONLY:
            op.execute(f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION audit_trail_immutable()")
        for table in NEVER_REMOVED:
            op.execute(f"CREATE TRIGGER {table}_never_removed BEFORE DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION audit_trail_immutable()")
        for table in TRUNCATE_GUARDED:  # a row trigger does not see a TRUNCATE
            op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_immutable()")
        op.execute("CREATE TRIGGER ledger_account_identity BEFORE UPDATE ON ledger_account "
                   "FOR EACH ROW EXECUTE FUNCTION ledger_account_identity_immutable()")
    else:  # SQLite has no TRUNCATE: a DELETE without WHERE fires the row triggers
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{action} on {table} refused: the audit trail is immutable'); END")
        for table in NEVER_REMOVED:
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       f"BEGIN SELECT RAISE(ABORT, 'DELETE on {table} refused: the audit trail is immutable'); END")
        changed = ' OR '.join(f'NEW.{c} IS NOT OLD.{c}' for c in ACCOUNT_IDENTITY)
        op.execute(f"CREATE TRIGGER ledger_account_identity BEFORE UPDATE OF {', '.join(ACCOUNT_IDENTITY)} "
                   f"ON ledger_account WHEN {changed} "
                   "BEGIN SELECT RAISE(ABORT, 'an account''s year, kind and award are immutable'); END")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_immutable ON {table}")
        for table in NEVER_REMOVED:
            op.execute(f"DROP TRIGGER {table}_never_removed ON {table}")
        for table in TRUNCATE_GUARDED:
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
        op.execute("DROP TRIGGER ledger_account_identity ON ledger_account")
        op.execute("DROP FUNCTION ledger_account_identity_immutable()")
        op.execute("DROP FUNCTION audit_trail_immutable()")
    else:
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        for table in NEVER_REMOVED:
            op.execute(f"DROP TRIGGER {table}_no_delete")
        op.execute("DROP TRIGGER ledger_account_identity")
