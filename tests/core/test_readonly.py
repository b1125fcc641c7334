"""A transaction that only read ends with COMMIT, so that PostgreSQL keeps its prepared statements;
one that wrote, or has something to write, or failed, ends with the rollback it always did."""

import pytest
import sqlalchemy as sa

from challenges.accounts.models import Organisation, OrganisationKind
from challenges.core import readonly
from challenges.extensions import db
from tests.factories import valid_org_number


@pytest.fixture(autouse=True)
def _postgres_only(app, ctx):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only psycopg forgets its prepared statements on a rollback")


def _end_request(exc: BaseException | None = None) -> None:
    """What the end of a request does: this module's teardown, then Flask-SQLAlchemy's."""
    readonly._end(exc)
    db.session.remove()


def _names() -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Organisation).where(Organisation.name.like("Readonly %"))
    )


def test_a_page_that_only_read_keeps_its_statements_prepared():
    query = sa.select(Organisation.id).where(Organisation.org_number == sa.bindparam("number"))
    for _ in range(30):  # enough for each pooled connection to use the statement five times
        db.session.execute(query, {"number": "000000-0000"}).all()
        _end_request()
    kept = db.session.scalars(sa.text("SELECT statement FROM pg_prepared_statements")).all()
    assert any("organisation.org_number = $1" in s for s in kept), kept


def test_what_was_flushed_but_not_committed_is_rolled_back():
    db.session.add(
        Organisation(name="Readonly flushed", org_number=valid_org_number(), kind=OrganisationKind.industrial)
    )
    db.session.flush()
    assert not readonly.only_read()
    _end_request()
    assert _names() == 0


def test_what_is_pending_is_never_committed():
    db.session.execute(sa.select(1)).all()
    db.session.add(
        Organisation(name="Readonly pending", org_number=valid_org_number(), kind=OrganisationKind.industrial)
    )
    assert not readonly.only_read()
    _end_request()
    assert _names() == 0


def test_a_write_in_plain_sql_is_rolled_back():
    db.session.execute(
        sa.text(
            "INSERT INTO organisation (name, org_number, kind, created_at) "
            "VALUES ('Readonly text', :n, 'industrial', now())"
        ),
        {"n": valid_org_number()},
    )
    assert not readonly.only_read()
    _end_request()
    assert _names() == 0


def test_locking_rows_counts_as_writing():
    db.session.execute(sa.select(Organisation.id).with_for_update()).all()
    assert not readonly.only_read()
    _end_request()
    db.session.execute(sa.select(Organisation.id)).all()
    assert readonly.only_read()  # a new transaction starts clean


def test_a_request_that_failed_commits_nothing_even_what_went_unseen():
    db.session.execute(sa.select(Organisation.id)).all()
    cursor = db.session.connection().connection.dbapi_connection.cursor()  # behind SQLAlchemy's back
    cursor.execute(
        "INSERT INTO organisation (name, org_number, kind, created_at) "
        "VALUES ('Readonly failed', %s, 'industrial', now())",
        (valid_org_number(),),
    )
    assert readonly.only_read()  # not seen
    _end_request(RuntimeError("the view failed"))
    assert _names() == 0


def test_a_transaction_that_never_reached_the_database_takes_no_connection_to_end():
    db.session.remove()
    db.session.begin()
    assert not readonly.only_read()
    assert db.engine.pool.checkedout() == 0
    _end_request()


def test_a_select_into_counts_as_writing():
    db.session.execute(sa.text("SELECT 1 AS x INTO TEMPORARY readonly_probe"))
    assert not readonly.only_read()
    _end_request()


def test_what_a_commit_would_hand_on_is_dropped_with_a_rollback(people):
    """A watched row assigned its own value: the flush writes nothing, but the transaction would tell the
    public pages they changed. It ends as before, with a rollback, and the kept pages stay."""
    from challenges.core.pagecache import VERSION_KEY
    from challenges.extensions import get_redis

    before = get_redis().get(VERSION_KEY)
    org = db.session.scalars(sa.select(Organisation).limit(1)).one()
    org.name = org.name
    db.session.execute(sa.select(Organisation.id)).all()  # flushes
    assert not readonly.only_read()
    _end_request()
    assert get_redis().get(VERSION_KEY) == before
