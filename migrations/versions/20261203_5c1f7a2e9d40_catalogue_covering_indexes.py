"""On PostgreSQL the catalogue's order indexes carry what its search and filters test (status, area,
publication or deadline, the search vector), so that reading the list in order to find the first
matches never visits the table.

Built CONCURRENTLY under a new name, then swapped for the old index: writes to challenges go on.

Revision ID: 5c1f7a2e9d40
Revises: b33280427cce
Create Date: 2026-12-03 09:40:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '5c1f7a2e9d40'
down_revision = 'b33280427cce'
branch_labels = None
depends_on = None

INDEXES = {  # name: (key, what else it carries)
    "ix_challenge_deadline_id": ("deadline, id", "status, area_id, published_at, search_vector"),
    "ix_challenge_published_id": ("published_at, id", "status, area_id, deadline, search_vector"),
}


def _rebuild(covering: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no INCLUDE; its search is FTS5
    with op.get_context().autocommit_block():
        for name, (key, carried) in INDEXES.items():
            include = f" INCLUDE ({carried})" if covering else ""
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}_new")  # left by an interrupted run
            op.execute(f"CREATE INDEX CONCURRENTLY {name}_new ON challenge ({key}){include}")
            op.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            op.execute(f"ALTER INDEX {name}_new RENAME TO {name}")


def upgrade():
    _rebuild(covering=True)


def downgrade():
    _rebuild(covering=False)
