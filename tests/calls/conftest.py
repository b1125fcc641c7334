"""Nouns for the challenge tests: an owner, another owner, an SME member, an evaluator, a manager."""

from __future__ import annotations

import pytest

from challenges.accounts.models import OrganisationKind, Role
from challenges.extensions import db
from tests.factories import make_manager, make_org, make_user, make_year, topics


@pytest.fixture
def people(app, ctx):
    """Everyone the access rules tell apart, committed, with the default topics and a year."""
    owner_org = make_org(OrganisationKind.industrial, name="Steel Works AB")
    cast = {
        "owner": make_user("owner@steel.example.com", org=owner_org, name="Olle Owner"),
        "colleague": make_user("colleague@steel.example.com", org=owner_org),
        "other_owner": make_user("owner@cars.example.com", org=make_org(OrganisationKind.industrial)),
        "sme": make_user("sara@sensors.example.com", org=make_org(OrganisationKind.sme, name="Sensors AB")),
        "other_sme": make_user("jonas@robots.example.com", org=make_org(OrganisationKind.sme)),
        "evaluator": make_user("eva@evaluators.example.com", roles=(Role.evaluator,)),
        "manager": make_manager(),
    }
    topics()
    make_year()
    db.session.commit()
    return cast
