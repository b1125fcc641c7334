"""Fault injection: the platform's real processes under faults, checked against a reference model.

    python -m bench.faults [--awards 400] [--challenges 6] [--seed 1]

A private PostgreSQL, Redis and SMTP server (aiosmtpd, in this process, answering 451 to some
first tries and dropping the connection on others), the web app under gunicorn, and the workers'
supervisor (two RQ worker processes and the periodic scheduler). A seeded driver commits awards,
payments, administration costs and challenges whose deadlines fall during the run, and injects: a
worker SIGKILLed mid-job, another SIGKILLed while it sends a batch of mail, Redis restarted empty,
Redis down for 60 seconds while writes go on (awards, and costs a manager books on the ledger page
through gunicorn), PostgreSQL restarted, and every job delivered twice. Then it checks: the ledger
equals the model to the öre, debits equal credits, every event handled once (nothing pending,
nothing dead, each award and payment booked once), every deadline closed once and its closing
reminder sent once, every message delivered at least once (and how many twice), everything drained
within two minutes of the last fault, and every write made while Redis was down committed. It
prints one line.

The smaller version runs in the test suite (tests/faults), with the helpers below.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import http.cookiejar
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from email import message_from_bytes

import sqlalchemy as sa
from redis import Redis
from rq import Queue, Worker

from challenges.core.bus import WORKER_QUEUES, get_bus
from challenges.core.events import enqueue_drain, enqueue_handlings, record
from challenges.core.models import EventHandling, HandlingState
from challenges.core.sweeper import sweep_events
from challenges.extensions import db
from challenges.funding import checks

SEK = 100


# --- helpers shared with tests/faults -------------------------------------------------------------------


def commit_award(proposal_id: int, year_id: int, amount: int) -> None:
    """A pending award with its payment plan and its FundingAwarded event (the caller commits)."""
    from challenges.funding import events, services
    from challenges.funding.models import Award, AwardStatus, Instalment

    award = Award(
        proposal_id=proposal_id, programme_year_id=year_id, amount_ore=amount, status=AwardStatus.pending
    )
    award.instalments = [
        Instalment(position=i, condition=c, amount_ore=a)
        for i, (c, a) in enumerate(services.plan_for(amount))
        if a > 0
    ]
    db.session.add(award)
    db.session.flush()
    award.event_id = record(
        events.FundingAwarded(award_id=award.id, programme_year_id=year_id, amount_ore=amount)
    ).id


def supervisor(app, log: str | None = None, **env: str) -> subprocess.Popen:
    """``python -m worker --processes 2``: two worker processes and the periodic scheduler, restarted
    when they die, as in production; configured through the environment like the real thing. Their
    output goes to *log* (or nowhere)."""
    environ = {
        **os.environ,
        "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        "INSTANCE_PATH": str(app.instance_path),
        **env,
    }
    with open(log or os.devnull, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "worker", "--processes", "2"],
            env=environ,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def busy_job(redis_url: str, seconds: float = 30, sending: bool = False) -> tuple[int, str]:
    """The pid of a worker that is running an event handler (or sending mail) right now, and the job's id."""
    redis = Redis.from_url(redis_url)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for worker in Worker.all(connection=redis):
            job_id = worker.get_current_job_id() or ""
            if not (job_id and worker.pid):
                continue
            if sending:
                job = worker.get_current_job()
                if job is not None and (job.func_name or "").endswith(".send_mail"):
                    return worker.pid, job_id
            elif job_id.startswith(("ev-", "drain-")):  # one event's handler, or a batch of the ledger's
                return worker.pid, job_id
        time.sleep(0.01)
    raise AssertionError(f"no worker was {'sending mail' if sending else 'handling an event'}")


def busy_worker(redis_url: str, seconds: float = 30) -> int:
    """The pid of a worker that is running an event handler right now."""
    return busy_job(redis_url, seconds)[0]


def queues_empty(redis_url: str) -> bool:
    """Nothing waiting on the queues (a killed worker stays listed in Redis until its key expires, so
    the workers' own state is not asked)."""
    redis = Redis.from_url(redis_url)
    return all(Queue(name, connection=redis).count == 0 for name in WORKER_QUEUES)


def count(statement) -> int:
    value = db.session.scalar(statement)
    db.session.commit()
    return int(value or 0)


def wait(condition: Callable[[], bool], seconds: float, sweep: bool = True) -> bool:
    """Poll *condition* (sweeping for lost handler jobs, as the scheduler would, when asked)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sweep:
            try:
                sweep_events()
            except Exception:  # noqa: BLE001 - Redis or the database may be down right now
                db.session.rollback()
        if condition():
            return True
        time.sleep(0.5)
    return False


def deliver_twice() -> int:
    """Every handler job, done or not, put on its queue once more, and a second drain for each batch
    handler (whose events are usually run in batches, not as jobs of their own)."""
    every = [
        tuple(row)
        for row in db.session.execute(
            sa.select(EventHandling.event_id, EventHandling.handler, EventHandling.queue)
        ).all()
    ]
    db.session.commit()
    enqueue_handlings(every)  # type: ignore[arg-type]
    batched = {h for _e, h, _q in every if get_bus().handler(h).batch is not None}
    for handler in sorted(batched):
        enqueue_drain(handler)
    return len(every) + len(batched)


PENDING = (
    sa.select(sa.func.count()).select_from(EventHandling).where(EventHandling.state == HandlingState.pending)
)
DEAD = sa.select(sa.func.count()).select_from(EventHandling).where(EventHandling.state == HandlingState.dead)


# --- the SMTP server that misbehaves ------------------------------------------------------------------------


class FaultyInbox:
    """Takes every message, except that the first try of some is answered 451 and of others has its
    connection dropped; counts what arrives per Message-ID."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: Counter[str] = Counter()
        self.tried: set[str] = set()
        self.refused = self.dropped = 0

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook
        message_id = message_from_bytes(envelope.original_content or envelope.content)["Message-ID"] or ""
        bucket = int(hashlib.sha256(message_id.encode()).hexdigest(), 16) % 10
        with self.lock:
            first = message_id not in self.tried
            self.tried.add(message_id)
            if first and bucket == 0:
                self.refused += 1
                return "451 4.3.0 Try again later"
            if first and bucket == 1:
                self.dropped += 1
                server.transport.close()
                return "421 4.3.0 Closing"
            self.received[message_id] += 1
        return "250 OK"


# --- the driver ---------------------------------------------------------------------------------------------


class Browser:
    """A person at the web app through gunicorn: a cookie jar, the CSRF token, forms posted over HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.token = ""

    def get(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as response:
            page = response.read().decode()
        if found := re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page):
            self.token = found.group(1)
        return page

    def post(self, path: str, data: dict[str, str]) -> str:
        """The page the browser lands on after the post (redirects followed)."""
        body = urllib.parse.urlencode({"csrf_token": self.token, **data}).encode()
        with self.opener.open(self.base + path, data=body, timeout=30) as response:
            return response.read().decode()

    def login(self, email: str, password: str) -> None:
        self.get("/login")
        if 'action="/logout"' not in self.post("/login", {"email": email, "password": password}):
            raise AssertionError(f"could not log in as {email} through the web")


def main() -> None:  # noqa: PLR0915 - one story, told in order
    from aiosmtpd.controller import Controller

    from bench._services import fresh_database, gunicorn, platform, restart_postgres
    from challenges.accounts.models import User
    from challenges.calls import services as calls
    from challenges.calls.models import Challenge, Topic, TopicKind
    from challenges.core.models import Event, must_get, utcnow
    from challenges.demo import AGREEMENT, DEMO_PASSWORD, MANAGER
    from challenges.devserver import free_port
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
    from challenges.notifications.models import MailMessage, MessageState
    from challenges.proposals.models import Proposal

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--awards", type=int, default=400)
    parser.add_argument("--challenges", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    inbox, smtp_port = FaultyInbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    faults: list[str] = []
    workers = None
    worker_log = os.devnull
    try:
        with (
            platform(
                SMTP_HOST="127.0.0.1",
                SMTP_PORT=str(smtp_port),
                EVENT_LEASE_SECONDS="5",
                EVENT_STALL_SECONDS="5",
                SWEEP_INTERVAL_SECONDS="2",
                DEADLINE_SWEEP_SECONDS="2",
                REMINDER_SWEEP_SECONDS="2",
                MAIL_RETRY_DELAYS="2,4,8,16,32",
                SESSION_COOKIE_SECURE="0",  # the browser below speaks plain HTTP to loopback
            ) as bench,
            _stopping(lambda: workers),
            ExitStack() as web_server,
        ):
            app, env, database_url, redis_server = (
                bench.app,
                bench.env,
                bench.database_url,
                bench.redis_server,
            )
            fresh_database(app)
            with app.app_context():
                year = db.session.scalars(
                    sa.select(ProgrammeYear).order_by(ProgrammeYear.year.desc())
                ).first()
                proposal = db.session.scalars(sa.select(Proposal).order_by(Proposal.id)).first()
                assert year is not None and proposal is not None
                year_id, proposal_id = year.id, proposal.id
                manager_id = db.session.scalar(sa.select(User.id).where(User.email == MANAGER[1]))
                owner = must_get(
                    User,
                    db.session.scalar(
                        sa.select(User.id).where(User.email == "anna.lindqvist@nordiskstal.example.com")
                    ),
                )
                area = db.session.scalars(sa.select(Topic.id).where(Topic.kind == TopicKind.area)).first()
                theme = db.session.scalars(sa.select(Topic.id).where(Topic.kind == TopicKind.theme)).first()
                assert area is not None and theme is not None
                baseline = balances(year_id)
                last_award = count(sa.select(sa.func.coalesce(sa.func.max(Award.id), 0)))  # the demo's
                db.session.commit()
                amounts = [rng.randrange(1_000, 5_000) * SEK for _ in range(args.awards)]
                paid: list[int] = []
                admin: list[int] = []
                down_writes = {"tried": 0, "committed": 0}
                quarter = max(args.awards // 4, 1)

                def awards(part: list[int]) -> None:
                    for amount in part:
                        commit_award(proposal_id, year_id, amount)
                        db.session.commit()

                def pay_some(n: int) -> None:
                    manager = must_get(User, manager_id)
                    unpaid = db.session.scalars(
                        sa.select(Award)
                        .where(Award.status == AwardStatus.booked, Award.proposal_id == proposal_id)
                        .order_by(Award.id)
                    ).all()
                    for award in [a for a in unpaid if not any(i.approved_at for i in a.instalments)][:n]:
                        start = next(i for i in award.instalments if i.condition is InstalmentCondition.start)
                        funding.approve_payment(start, by=manager)
                        db.session.commit()
                        paid.append(start.amount_ore)

                def cost(amount: int) -> None:
                    funding.book_admin_cost(
                        must_get(ProgrammeYear, year_id), amount, "Evaluators", by=must_get(User, manager_id)
                    )
                    db.session.commit()
                    admin.append(amount)

                worker_log = os.path.join(tempfile.gettempdir(), f"challenges-faults-{os.getpid()}.log")
                workers = supervisor(app, log=worker_log, **env)
                web_base, _master = web_server.enter_context(
                    gunicorn("wsgi:app", dict(os.environ), worker_log)
                )
                browser = Browser(web_base)
                browser.login(MANAGER[1], DEMO_PASSWORD)
                browser.get(f"/admin/ledger/{year_id}")
                web_writes = {"tried": 0, "committed": 0}

                def web_cost(amount: int) -> None:
                    """The manager books a cost on the ledger page, through gunicorn."""
                    web_writes["tried"] += 1
                    try:
                        page = browser.post(
                            f"/admin/ledger/{year_id}/admin-cost",
                            {"amount": str(amount // SEK), "memo": f"Web cost {web_writes['tried']}"},
                        )
                    except (OSError, http.client.HTTPException):  # counted: a write that failed
                        return
                    if "flash--message" in page and "flash--error" not in page:  # "the cost is recorded"
                        web_writes["committed"] += 1
                        admin.append(amount)

                # challenges whose deadlines fall during the run
                closing: list[int] = []
                reminding: list[int] = []
                due_moments = []  # when each deadline passes, or each one-day reminder falls due
                for i in range(args.challenges):
                    content = calls.ChallengeContent(
                        programme_year_id=year_id,
                        title=f"Fault-run challenge {i}",
                        summary="A deadline to keep.",
                        description="Closes during the fault run.",
                        area_id=area,
                        theme_ids=[theme],
                        must_demonstrate="Nothing.",
                        max_funding_ore=100_000 * SEK,
                        awards_planned=1,
                        deadline=utcnow() + timedelta(days=2),
                        agreement=AGREEMENT,
                        contact_name=owner.name,
                        contact_email=owner.email,
                        criteria=[("Potential", 100)],
                    )
                    challenge = calls.create_challenge(content, by=owner)
                    calls.submit_challenge(challenge, by=owner)
                    calls.approve_challenge(challenge, by=must_get(User, manager_id))
                    # brought forward: half close during the run, the other half pass their one-day
                    # reminder during it
                    ahead = timedelta(days=i % 2) + timedelta(seconds=30 + 20 * i)
                    challenge.deadline = utcnow() + ahead
                    db.session.commit()
                    due_moments.append(utcnow() + timedelta(seconds=30 + 20 * i))
                    (closing if i % 2 == 0 else reminding).append(challenge.id)

                awards(amounts[:quarter])
                booked = (
                    sa.select(sa.func.count())
                    .select_from(Transfer)
                    .where(Transfer.kind == TransferKind.award)
                )
                wait(lambda: count(booked) >= quarter // 2, 60, sweep=False)
                os.kill(busy_worker(redis_server.url), signal.SIGKILL)
                faults.append("worker SIGKILLed mid-job")
                awards(amounts[quarter : 2 * quarter])
                pay_some(20)
                sender, send_job = busy_job(redis_server.url, sending=True)
                os.kill(sender, signal.SIGKILL)
                held = count(
                    sa.select(sa.func.count())
                    .select_from(MailMessage)
                    .where(MailMessage.claimed_by == send_job, MailMessage.state == MessageState.sending)
                )
                faults.append(
                    f"worker SIGKILLed while running a send job ({held} message{'' if held == 1 else 's'} left in its hands)"
                )

                redis_server.stop()
                redis_server.start()
                faults.append("Redis restarted empty")
                awards(amounts[2 * quarter : 3 * quarter])

                redis_server.stop()
                down_until = time.monotonic() + 60
                next_web = time.monotonic()
                while time.monotonic() < down_until:  # writes go on while Redis is down
                    if time.monotonic() >= next_web:  # a cost booked through the web every two seconds
                        web_cost(rng.randrange(100, 500) * SEK)
                        next_web += 2
                    if len(amounts) > 3 * quarter + down_writes["tried"]:
                        down_writes["tried"] += 1
                        try:
                            awards([amounts[3 * quarter + down_writes["tried"] - 1]])
                            down_writes["committed"] += 1
                        except Exception:  # noqa: BLE001 - counted: a write that failed
                            db.session.rollback()
                    time.sleep(0.1)
                redis_server.start()
                faults.append(
                    f"Redis down 60 s ({down_writes['committed']}/{down_writes['tried']} awards and "
                    f"{web_writes['committed']}/{web_writes['tried']} costs through gunicorn committed)"
                )
                awards(amounts[3 * quarter + down_writes["tried"] :])
                cost(rng.randrange(5_000, 20_000) * SEK)

                restart_postgres(database_url)
                db.session.remove()
                db.engine.dispose()
                faults.append("PostgreSQL restarted")
                pay_some(20)
                cost(rng.randrange(5_000, 20_000) * SEK)
                wait(lambda: count(PENDING) == 0, 180)
                faults.append(f"{deliver_twice()} jobs delivered twice")
                last_fault = time.monotonic()

                # drained: no handler pending, every message in a final state, the queues empty
                unsettled = (
                    sa.select(sa.func.count())
                    .select_from(MailMessage)
                    .where(MailMessage.state.in_([MessageState.queued, MessageState.sending]))
                )
                drained = wait(
                    lambda: count(PENDING) == 0 and count(unsettled) == 0 and queues_empty(redis_server.url),
                    120,
                )
                drain_seconds = time.monotonic() - last_fault
                last_due = max(due_moments, default=utcnow())
                wait(
                    lambda: utcnow() > last_due + timedelta(seconds=10), 600, sweep=False
                )  # every deadline past
                settled = wait(
                    lambda: count(PENDING) == 0 and count(unsettled) == 0 and queues_empty(redis_server.url),
                    120,
                )  # and what they set off
                time.sleep(2)
                stop_workers(workers)
                workers = None

                problems = []
                if not settled:
                    problems.append("what the deadlines and reminders set off was not handled within 120 s")
                if not drained:
                    stuck = db.session.execute(
                        sa.select(MailMessage.id, MailMessage.state, MailMessage.claimed_at).where(
                            MailMessage.state.in_([MessageState.queued, MessageState.sending])
                        )
                    ).all()
                    problems.append(
                        f"not drained 120 s after the last fault ({count(PENDING)} handlings pending, "
                        f"messages unsettled: {stuck})"
                    )
                if count(DEAD):
                    problems.append(f"{count(DEAD)} handlings dead")
                problems += checks.verify() + checks.rebuild()[1]
                after = balances(year_id)
                model = {
                    AccountKind.available: -sum(amounts),
                    AccountKind.commitment: sum(amounts) - sum(paid),
                    AccountKind.paid_out: sum(paid),
                    AccountKind.admin_spent: sum(admin),
                    AccountKind.admin_envelope: -sum(admin),
                }
                for kind, change in model.items():
                    if after[kind] - baseline[kind] != change:
                        problems.append(
                            f"{kind.value}: the ledger moved {after[kind] - baseline[kind]} öre, "
                            f"the model {change} öre"
                        )
                per_award = Counter(
                    n
                    for _, n in db.session.execute(
                        sa.select(Transfer.event_id, sa.func.count())
                        .where(Transfer.kind == TransferKind.award)
                        .group_by(Transfer.event_id)
                    ).all()
                )
                ours = count(sa.select(sa.func.count()).select_from(Award).where(Award.id > last_award))
                if ours != len(amounts) or set(per_award) != {1}:
                    problems.append(
                        f"awards: {ours} of {len(amounts)} recorded, transfers per award {dict(per_award)}"
                    )
                closed = Counter(
                    e.payload["challenge_id"]
                    for e in db.session.scalars(sa.select(Event).where(Event.type == "ChallengeClosed"))
                )
                reminded = Counter(
                    (e.payload["challenge_id"], e.payload["days"])
                    for e in db.session.scalars(sa.select(Event).where(Event.type == "ChallengeClosingSoon"))
                )
                for cid in closing:
                    if closed[cid] != 1:
                        problems.append(
                            f"challenge {cid} ({must_get(Challenge, cid).status.value}): "
                            f"closed {closed[cid]}×"
                        )
                for cid in reminding:  # the three-day reminder is skipped when it would come late
                    if reminded[(cid, 1)] != 1 or reminded[(cid, 3)] > 1 or closed[cid]:
                        problems.append(
                            f"challenge {cid}: reminded three days before {reminded[(cid, 3)]}×, "
                            f"one day before {reminded[(cid, 1)]}×, closed {closed[cid]}×"
                        )
                sent = set(
                    db.session.scalars(
                        sa.select(MailMessage.message_id).where(MailMessage.state == MessageState.sent)
                    )
                )
                missing = [m for m in sent if inbox.received[m] == 0]
                twice = sum(1 for m in sent if inbox.received[m] > 1)
                if missing:
                    problems.append(f"{len(missing)} messages marked sent never arrived")
                dead_mail = count(
                    sa.select(sa.func.count())
                    .select_from(MailMessage)
                    .where(MailMessage.state == MessageState.dead)
                )
                if dead_mail:
                    problems.append(f"{dead_mail} messages dead (every refusal here was temporary)")
                if (
                    down_writes["committed"] != down_writes["tried"]
                    or web_writes["committed"] != web_writes["tried"]
                ):
                    problems.append("a write failed while Redis was down")
                web_booked = count(
                    sa.select(sa.func.count())
                    .select_from(Event)
                    .where(
                        Event.type == "AdminCostBooked", Event.payload["memo"].as_string().like("Web cost %")
                    )
                )
                if web_booked != web_writes["committed"]:
                    problems.append(
                        f"{web_writes['committed']} costs confirmed on the web, {web_booked} recorded"
                    )
        print(
            f"Faults: {'; '.join(faults)}; SMTP refused {inbox.refused} first tries and dropped {inbox.dropped}. "
            f"{len(amounts)} awards, {len(paid)} payments, {len(admin)} costs, {len(closing)} deadlines, "
            f"{len(reminding)} one-day reminders, "
            f"{len(sent)} messages ({twice} delivered twice). Drained {drain_seconds:.0f} s after the last fault. "
            + ("All invariants held." if not problems else "VIOLATED: " + "; ".join(problems))
        )
        if problems:
            print(f"The workers' output: {worker_log}")
            raise SystemExit(1)
        os.unlink(worker_log)
    finally:
        controller.stop()


@contextmanager
def _stopping(current: Callable[[], subprocess.Popen | None]) -> Iterator[None]:
    """Stop the workers before the services they use go away."""
    try:
        yield
    finally:
        stop_workers(current())


def stop_workers(workers: subprocess.Popen | None) -> None:
    """A warm shutdown of the supervisor and its workers; killed if it takes over a minute."""
    if workers is None or workers.poll() is not None:
        return
    workers.terminate()
    try:
        workers.wait(timeout=60)
    except subprocess.TimeoutExpired:
        workers.kill()
        workers.wait()


def balances(year_id: int) -> Counter:
    """The live balance of each account kind of one programme year."""

    balances: Counter = Counter()
    for (year, kind, _award), amount in checks.live_balances().items():
        if year == year_id:
            balances[kind] += amount
    return balances


if __name__ == "__main__":
    main()
