"""Notification fan-out: a challenge published to N followers, delivered to a local SMTP server,
against a plain smtplib loop sending the same N messages over one connection.

    python -m bench.fanout [--followers 10000] [--workers 2] [--kills 3]

N SMEs follow a theme; a challenge in that theme is published. The time runs from the commit of the
publication to the last of the N messages arriving at an SMTP server (aiosmtpd on loopback, in a process of
its own as a mail server is): the platform's handler writes one message per follower in their language, the workers
send them in batches over one connection each. Then the same N messages, byte for byte, go through
one smtplib connection. Both counts must be exactly N, with no Message-ID twice. The pair runs
*rounds* times and the median ratio is printed: on a shared machine the plain loop's own rate moves by
a quarter from one minute to the next.

Then the fan-out again, with a worker SIGKILLed *kills* times while it sends (a new one started each
time, as the supervisor would; the mail sweeper run each second, as the scheduler would): every one
of the N must arrive, and no more messages twice than workers killed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import smtplib
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from multiprocessing.connection import Connection
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from redis import Redis

from bench._services import bench_workers, fresh_database, pop
from bench._services import platform as platform_services
from challenges.devserver import free_port

DOMAIN = "followers.bench.example.com"
QUEUES = "workflow,notifications"  # what the workers serve


class Inbox:
    """An SMTP handler that keeps every message to a follower of this run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[str, str, bytes]] = []  # (from, to, bytes)
        self.first_at: float | None = None  # perf_counter() when the first of them arrived

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                if rcpt.endswith("@" + DOMAIN):
                    if not self.messages:
                        self.first_at = time.perf_counter()
                    self.messages.append(
                        (envelope.mail_from, rcpt, envelope.original_content or envelope.content)
                    )
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def first(self) -> float | None:
        with self.lock:
            return self.first_at

    def snapshot(self) -> list[tuple[str, str, bytes]]:
        with self.lock:
            return list(self.messages)

    def clear(self) -> list[tuple[str, str, bytes]]:
        with self.lock:
            taken, self.messages, self.first_at = self.messages, [], None
        return taken


def _serve(port: int, control: Connection) -> None:
    """The SMTP server's process: serves on *port*, answers the harness's questions about its inbox."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, data_size_limit=0)
    controller.start()
    control.send("ready")
    try:
        while (command := control.recv()) != "stop":
            control.send(getattr(inbox, command)())
    finally:
        controller.stop()


class SMTPServer:
    """aiosmtpd in a process of its own, as a mail server is: neither the workers nor the plain loop
    share an interpreter with it. The methods ask its :class:`Inbox`. ``perf_counter`` is the
    system's monotonic clock, the same in every process."""

    def __init__(self, port: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, theirs = context.Pipe()
        self._process = context.Process(target=_serve, args=(port, theirs), daemon=True)
        self._process.start()
        if not self._control.poll(60) or self._control.recv() != "ready":
            raise SystemExit("the SMTP server did not start")

    def _ask(self, command: str) -> Any:
        self._control.send(command)
        return self._control.recv()

    def count(self) -> int:
        return self._ask("count")

    def first(self) -> float | None:
        return self._ask("first")

    def snapshot(self) -> list[tuple[str, str, bytes]]:
        return self._ask("snapshot")

    def clear(self) -> list[tuple[str, str, bytes]]:
        return self._ask("clear")

    def stop(self) -> None:
        self._control.send("stop")
        self._process.join(timeout=30)


def _followers(app, count: int) -> int:
    """*count* SMEs, each with one member, following the theme "Sensors"; returns the theme's id."""
    from challenges.accounts.models import Membership, MembershipState, Organisation, OrganisationKind, User
    from challenges.calls.models import Follow, Topic, TopicKind
    from challenges.extensions import db

    with app.app_context():
        theme = db.session.scalar(
            sa.select(Topic).where(Topic.kind == TopicKind.theme, Topic.name_en == "Sensors")
        )
        assert theme is not None
        orgs = db.session.scalars(
            sa.insert(Organisation).returning(Organisation.id),
            [
                {
                    "name": f"Follower {i} AB",
                    "org_number": f"9{i:09d}",
                    "kind": OrganisationKind.sme,
                    "staff_headcount": 12,
                    "annual_turnover_ore": 20_000_000_00,
                    "balance_sheet_total_ore": 10_000_000_00,
                }
                for i in range(count)
            ],
        ).all()
        users = db.session.scalars(
            sa.insert(User).returning(User.id),
            [
                {
                    "email": f"member{i}@{DOMAIN}",
                    "name": f"Member {i}",
                    "password_hash": "-",
                    "language": "sv" if i % 2 else "en",
                }
                for i in range(count)
            ],
        ).all()
        db.session.execute(
            sa.insert(Membership),
            [
                {"user_id": u, "organisation_id": o, "state": MembershipState.approved}
                for u, o in zip(users, orgs, strict=True)
            ],
        )
        db.session.execute(sa.insert(Follow), [{"organisation_id": o, "topic_id": theme.id} for o in orgs])
        db.session.commit()
        theme_id = theme.id
        db.session.remove()
    return theme_id


def _submitted(app, theme_id: int) -> int:
    """A challenge in the theme, submitted for the programme's approval (committed); returns its id."""
    from challenges.calls import services as calls
    from challenges.calls.models import Topic, TopicKind
    from challenges.core.models import utcnow
    from challenges.demo import AGREEMENT, _person
    from challenges.extensions import db
    from challenges.funding.models import ProgrammeYear

    with app.app_context():
        owner = _person("anna.lindqvist@nordiskstal.example.com")
        year = db.session.scalars(sa.select(ProgrammeYear).order_by(ProgrammeYear.year.desc())).first()
        area = db.session.scalar(
            sa.select(Topic).where(Topic.kind == TopicKind.area).order_by(Topic.position)
        )
        assert year is not None and area is not None
        content = calls.ChallengeContent(
            programme_year_id=year.id,
            title="Sensors for the pickling line",
            summary="Measure acid strength in line.",
            description="## Background\n\nThe pickling line's acid is checked by hand twice a shift.",
            area_id=area.id,
            theme_ids=[theme_id],
            must_demonstrate="A sensor running for two weeks in the line.",
            max_funding_ore=500_000_00,
            awards_planned=1,
            deadline=utcnow() + timedelta(days=30),
            agreement=AGREEMENT,
            contact_name=owner.name,
            contact_email=owner.email,
            criteria=[("Potential", 50), ("Feasibility", 50)],
        )
        challenge = calls.create_challenge(content, by=owner)
        calls.submit_challenge(challenge, by=owner)
        db.session.commit()
        challenge_id = challenge.id
        db.session.remove()
    return challenge_id


def _publish(app, challenge_id: int) -> None:
    """The programme manager approves the challenge: it is published (the timed commit)."""
    from challenges.calls import services as calls
    from challenges.calls.models import Challenge
    from challenges.core.models import must_get
    from challenges.demo import MANAGER, _person
    from challenges.extensions import db

    with app.app_context():
        calls.approve_challenge(must_get(Challenge, challenge_id), by=_person(MANAGER[1]))
        db.session.commit()
        db.session.remove()


def _idle(app, since: datetime) -> None:
    """Wait until the workers have nothing left to do: every event handled, every message written
    *since* (by the submission) sent."""
    from challenges.core.models import EventHandling, HandlingState
    from challenges.extensions import db
    from challenges.notifications.models import MailMessage, MessageState

    waiting = (MessageState.queued, MessageState.sending, MessageState.failed)
    with app.app_context():
        while db.session.scalar(
            sa.select(sa.func.count())
            .select_from(EventHandling)
            .where(EventHandling.state == HandlingState.pending, EventHandling.queue.in_(QUEUES.split(",")))
        ) or db.session.scalar(
            sa.select(sa.func.count())
            .select_from(MailMessage)
            .where(MailMessage.state.in_(waiting), MailMessage.created_at >= since)
        ):
            db.session.rollback()
            time.sleep(0.05)
        db.session.remove()


def platform(app, r: Redis, inbox: SMTPServer, followers: int, workers: int) -> tuple[float, float]:
    """Seconds from the publication's commit to the last message, and to the first."""
    fresh_database(app)
    r.flushdb()
    inbox.clear()
    theme_id = _followers(app, followers)
    since = datetime.now(UTC)
    challenge_id = _submitted(app, theme_id)
    with bench_workers(r, "platform", QUEUES, workers):
        _idle(app, since)
        started = time.perf_counter()
        _publish(app, challenge_id)
        deadline = time.monotonic() + 1800
        while inbox.count() < followers and time.monotonic() < deadline:
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        first = (inbox.first() or started) - started
        time.sleep(2)  # anything sent twice would arrive now
    return seconds, first


def killed(app, r: Redis, inbox: SMTPServer, followers: int, workers: int, kills: int) -> int:
    """The fan-out with a sending worker SIGKILLed *kills* times; returns how many kills were made."""
    from bench.faults import busy_job
    from challenges.notifications.jobs import sweep_mail

    fresh_database(app)
    r.flushdb()
    inbox.clear()
    challenge_id = _submitted(app, _followers(app, followers))
    app.config["EVENT_STALL_SECONDS"] = 5  # the sweeper frees a killed job's claim after 5 s
    made = 0
    with bench_workers(r, "platform", QUEUES, workers) as procs:
        _publish(app, challenge_id)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if inbox.count() >= followers and _distinct(inbox.snapshot()) >= followers:
                break
            if made < kills and inbox.count() >= (made + 1) * followers // (kills + 1):
                pid, _job = busy_job(app.config["REDIS_URL"], sending=True)
                os.kill(pid, signal.SIGKILL)
                made += 1
                procs.append(
                    subprocess.Popen([sys.executable, "-m", "bench._worker", "platform", QUEUES, "0"])
                )
                pop(r, "bench:ready", seconds=120)
            with app.app_context():
                sweep_mail()
            time.sleep(0.2)
        time.sleep(2)  # anything sent twice more would arrive now
    return made


def plain(port: int, messages: list[tuple[str, str, bytes]], inbox: SMTPServer) -> float:
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for mail_from, rcpt, content in messages:
            smtp.sendmail(mail_from, [rcpt], content)
    seconds = time.perf_counter() - started
    deadline = time.monotonic() + 60
    while inbox.count() < len(messages) and time.monotonic() < deadline:
        time.sleep(0.05)
    return seconds


def _distinct(messages: list[tuple[str, str, bytes]]) -> int:
    return len({message_from_bytes(content)["Message-ID"] for _, _, content in messages})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--followers", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rounds", type=int, default=3, help="platform and plain loop, one after the other, this many times"
    )
    parser.add_argument("--kills", type=int, default=3, help="sending workers SIGKILLed in the second run")
    args = parser.parse_args()
    port = free_port()
    inbox = SMTPServer(port)
    try:
        with platform_services(SMTP_HOST="127.0.0.1", SMTP_PORT=str(port)) as bench:
            app, r = bench.app, Redis.from_url(bench.redis_server.url)
            n = args.followers
            print(f"Notification fan-out to {n} followers ({args.workers} workers), SMTP on loopback")
            ratios = []
            for round_ in range(1, args.rounds + 1):
                ours, first = platform(app, r, inbox, n, args.workers)
                sent = inbox.clear()
                if len(sent) != n or _distinct(sent) != n:
                    raise SystemExit(
                        f"the platform delivered {len(sent)} messages ({_distinct(sent)} distinct), not {n}"
                    )
                theirs = plain(port, sent, inbox)
                again = inbox.clear()
                if len(again) != n:
                    raise SystemExit(f"the plain loop delivered {len(again)} messages, not {n}")
                ratios.append(theirs / ours)
                print(
                    f"  round {round_}: platform, publish commit to last message received: {ours:.1f} s,"
                    f" {n / ours:.0f} messages/s (the first after {first:.1f} s, then"
                    f" {(n - 1) / (ours - first):.0f}/s)"
                )
                print(
                    f"           plain smtplib loop, one connection: {theirs:.1f} s, {n / theirs:.0f} messages/s;"
                    f" ratio {theirs / ours:.2f}; received exactly {n} with {n} distinct Message-IDs"
                )
            print(f"  ratio, median of {len(ratios)} rounds: {statistics.median(ratios):.2f}")
            if args.kills:
                made = killed(app, r, inbox, n, args.workers, args.kills)
                received = inbox.clear()
                distinct = _distinct(received)
                twice = len(received) - distinct
                print(
                    f"  again, {made} sending workers SIGKILLed: {distinct} of {n} arrived, "
                    f"{twice} twice ({twice / max(made, 1):.1f} per killed send job)"
                )
                if distinct != n or twice > made:
                    raise SystemExit("lost or repeated messages beyond one per killed send job")
    finally:
        inbox.stop()


if __name__ == "__main__":
    main()
