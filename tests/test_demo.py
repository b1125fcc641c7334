"""The demo data of a first run: the 2016–2017 programme and a person in every role."""

from __future__ import annotations

import sqlalchemy as sa

from challenges.accounts.models import User
from challenges.demo import DEMO_PASSWORD, demo_logins, load_demo
from challenges.extensions import db
from challenges.funding.models import Programme


def test_demo_data_loads_once_and_every_login_works(app, ctx, make_browser):
    assert load_demo() is True
    db.session.commit()
    assert load_demo() is False
    programme = db.session.scalar(sa.select(Programme))
    assert [(y.year, y.allocation_ore, y.admin_cap_ore) for y in programme.years] == [
        (2016, 800_000_000, 40_000_000), (2017, 800_000_000, 40_000_000)]
    logins = demo_logins()
    assert [r for r, _n, _e in logins].count("evaluator") == 2 and len(logins) == 8
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 8
    for _role, _name, email in logins:
        assert make_browser().login(email, DEMO_PASSWORD).status_code == 303
