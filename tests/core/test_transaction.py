"""Where a request's transaction ends: kept when the response says the request succeeded, dropped
when it says it did not, and dropped when the commit itself fails."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import Response

from challenges.accounts.models import User
from challenges.core import transaction
from challenges.extensions import db


def _rename(user_id: int, name: str) -> None:
    db.session.get(User, user_id).name = name
    db.session.flush()


def _name(user_id: int) -> str:
    db.session.rollback()
    return db.session.get(User, user_id).name


@pytest.mark.parametrize(
    ("status", "kept"), [(200, True), (303, True), (399, True), (400, False), (404, False)]
)
def test_a_request_keeps_what_it_did_only_when_it_succeeded(app, people, status, kept):
    user_id, before = people["sme"].id, people["sme"].name
    with app.test_request_context("/", method="POST"):
        _rename(user_id, "Renamed in the request")
        app.process_response(Response(status=status))  # the request ends
    assert _name(user_id) == ("Renamed in the request" if kept else before)


def test_a_commit_that_fails_at_the_end_of_a_request_raises_and_keeps_nothing(app, people):
    user_id, before = people["sme"].id, people["sme"].name

    def refuse(session):
        raise RuntimeError("the database refused the commit")

    with app.test_request_context("/", method="POST"):
        _rename(user_id, "Renamed in the request")
        sa.event.listen(db.session, "before_commit", refuse)
        try:
            with pytest.raises(RuntimeError):
                transaction._end_request(Response(status=200))
        finally:
            sa.event.remove(db.session, "before_commit", refuse)
    assert _name(user_id) == before


def test_what_was_done_outside_the_database_is_undone_only_when_the_transaction_does_not_commit(app, people):
    undone: list[str] = []
    _rename(people["sme"].id, "First")
    transaction.on_rollback(lambda: undone.append("first"))
    db.session.rollback()
    _rename(people["sme"].id, "Second")
    transaction.on_rollback(lambda: undone.append("second"))
    db.session.commit()
    db.session.rollback()
    assert undone == ["first"]
