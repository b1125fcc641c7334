"""The ledger pipeline under faults, with real worker processes (the smaller version of the fault
driver): a worker SIGKILLed mid-run, Redis restarted with nothing kept, awards committed while Redis
is down, and every job delivered twice. At the end the ledger equals a model to the öre, no event
is lost and none is applied twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from bench.faults import (
    DEAD,
    PENDING,
    busy_worker,
    commit_award,
    count,
    deliver_twice,
    queues_empty,
    stop_workers,
    wait,
)
from bench.faults import (
    balances as year_balances,
)
from bench.faults import supervisor as start_supervisor
from challenges import create_app
from challenges.accounts.models import User
from challenges.core.inline import handle_pending
from challenges.core.models import Event
from challenges.core.sweeper import sweep_events
from challenges.extensions import db
from challenges.funding import checks
from challenges.funding import services as funding
from challenges.funding.models import (
    AccountKind,
    Award,
    AwardStatus,
    InstalmentCondition,
    ProgrammeYear,
    Transfer,
    TransferKind,
)
from challenges.projects.models import Project
from tests.conftest import test_config as base_config
from tests.factories import make_challenge
from tests.proposals.conftest import make_proposal
from tests.services import RedisServer

pytestmark = pytest.mark.timeout(300)
SEK = 100


@pytest.fixture
def faulty_app(app, tmp_path) -> Iterator:
    """The session's database with a Redis of its own that the test may kill."""
    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.start()
    config = base_config(tmp_path, server.url, app.config["SMTP_PORT"])
    # the same database; the rate limiter (one object for every app) keeps the session's Redis
    config.update(
        SQLALCHEMY_DATABASE_URI=app.config["SQLALCHEMY_DATABASE_URI"],
        SMTP_HOST="",
        EVENT_STALL_SECONDS=3,
        RATELIMIT_STORAGE_URI=app.config["RATELIMIT_STORAGE_URI"],
    )
    faulty = create_app(config)
    faulty.redis_server = server  # type: ignore[attr-defined]
    try:
        yield faulty
    finally:
        with faulty.app_context():
            db.engine.dispose()
        server.stop()


def test_the_ledger_survives_killed_workers_a_lost_redis_and_double_delivery(people, faulty_app):
    rng = random.Random(20161015)
    challenge = make_challenge(people["owner"])
    proposal = make_proposal(people["sme"], challenge)
    proposal_id, manager_id = proposal.id, people["manager"].id
    db.session.commit()  # and touch no row of this session again: on SQLite it would hold the write lock
    faults: list[str] = []
    supervisor: subprocess.Popen | None = None
    with faulty_app.app_context():
        year = db.session.scalars(sa.select(ProgrammeYear)).one()
        year_id, allocation, cap = year.id, year.allocation_ore, year.admin_cap_ore
        funding.open_year(year)
        handle_pending()  # the ledger opens before the awards arrive
        amounts = [rng.randrange(1_000, 20_000) * SEK for _ in range(120)]
        for amount in amounts[:80]:
            commit_award(proposal_id, year_id, amount)
        db.session.commit()
        try:
            supervisor = start_supervisor(
                faulty_app,
                SMTP_HOST="",
                EVENT_LEASE_SECONDS="0",
                EVENT_STALL_SECONDS="3",
                SWEEP_INTERVAL_SECONDS="2",
            )
            booked = (
                sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == TransferKind.award)
            )
            assert wait(lambda: count(booked) >= 10, 60, sweep=False), "the workers never started"

            # Redis restarted with nothing kept: every queued job is gone; awards keep coming meanwhile
            faulty_app.redis_server.stop()
            for amount in amounts[80:100]:  # the web's commits succeed while Redis is down
                commit_award(proposal_id, year_id, amount)
                db.session.commit()
            faulty_app.redis_server.start()
            faults.append("Redis restarted empty, 20 awards committed while it was down")

            # a worker killed in the middle of a job (the supervisor starts another): the job stays
            # "started" in Redis, and only the sweeper's stall rule gets it run again
            sweep_events()
            victim = busy_worker(faulty_app.config["REDIS_URL"])
            os.kill(victim, signal.SIGKILL)
            faults.append("a worker SIGKILLed mid-job")
            for amount in amounts[100:]:
                commit_award(proposal_id, year_id, amount)
            db.session.commit()

            # payments for the awards booked by now, and an administration cost
            db.session.expire_all()
            paid = []
            for award in db.session.scalars(sa.select(Award).where(Award.status == AwardStatus.booked)).all()[
                :40
            ]:
                start = next(i for i in award.instalments if i.condition is InstalmentCondition.start)
                funding.approve_payment(start, by=db.session.get(User, manager_id))
                paid.append(start.amount_ore)
            funding.book_admin_cost(
                db.session.get(ProgrammeYear, year_id),
                10_000 * SEK,
                "Evaluators",
                by=db.session.get(User, manager_id),
            )
            db.session.commit()

            assert wait(lambda: count(PENDING) == 0, 120), f"{count(PENDING)} handlings still pending"

            # every handler job delivered a second time: nothing may happen twice
            faults.append(f"{deliver_twice()} jobs delivered twice")
            assert wait(lambda: queues_empty(faulty_app.config["REDIS_URL"]), 120, sweep=False)
            time.sleep(1)  # the last jobs taken finish
        finally:
            stop_workers(supervisor)  # a warm shutdown (killed after a minute)

        # the invariants
        assert count(DEAD) == 0
        assert checks.verify() == []
        assert checks.rebuild()[1] == []
        balances = year_balances(year_id)
        awarded, spent = sum(amounts), sum(paid)
        assert balances[AccountKind.commitment] == awarded - spent
        assert balances[AccountKind.paid_out] == spent
        assert balances[AccountKind.admin_spent] == 10_000 * SEK
        assert balances[AccountKind.available] == allocation - cap - awarded
        per_award = db.session.execute(
            sa.select(Transfer.event_id, sa.func.count())
            .where(Transfer.kind == TransferKind.award)
            .group_by(Transfer.event_id)
        ).all()
        assert len(per_award) == len(amounts) and {n for _, n in per_award} == {1}  # each booked once
        assert count(
            sa.select(sa.func.count()).select_from(Transfer).where(Transfer.kind == TransferKind.payment)
        ) == len(paid)
        assert count(sa.select(sa.func.count()).select_from(Event).where(Event.type == "AwardBooked")) == len(
            amounts
        )
        assert count(sa.select(sa.func.count()).select_from(Project)) == len(amounts)  # one project per award
        print(
            f"faults: {'; '.join(faults)}. Held: {len(amounts)} awards booked once, {len(paid)} payments, "
            "ledger equal to the model to the öre, debits = credits, nothing pending or dead"
        )
