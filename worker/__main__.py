"""``python -m worker``: run the workers and the periodic scheduler, or check their health.

python -m worker                 # supervisor: N worker processes + the scheduler
python -m worker --processes 2
python -m worker work [--burst]  # one worker process (all queues, with RQ's scheduler)
python -m worker cron            # the periodic scheduler only
python -m worker health [--json] # how the queues, workers, scheduler and handlers are;
                                 # exit 1 when something is unhealthy, and say what
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time

from rq import cron_scheduler_registry
from rq.cron import CronScheduler
from rq.exceptions import SchedulerNotFound
from sqlalchemy.exc import SQLAlchemyError

from challenges import create_app
from challenges.core.health import SCHEDULER_NAME, Report, process_alive, report
from challenges.core.jobs import periodic
from challenges.extensions import get_redis
from challenges.notifications.services import MailBacklog, mail_backlog
from worker import make_worker

log = logging.getLogger("worker")


def _logging() -> str:
    """One line per real event at INFO (LOG_LEVEL, by default); RQ's own lines only at DEBUG."""
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    rq_level = "INFO" if logging.getLogger().getEffectiveLevel() <= logging.DEBUG else "WARNING"
    for name in ("rq.scheduler", "rq.cron"):
        logging.getLogger(name).setLevel(rq_level)
    return rq_level


def work(burst: bool) -> int:
    rq_level = _logging()
    app = create_app()
    worker = make_worker(app)
    worker.work(burst=burst, with_scheduler=True, logging_level=rq_level)
    return 0


def _forget_dead_scheduler(redis) -> None:
    """Take over the scheduler's name from one whose process is gone from this machine, or that has not
    beaten for as long as RQ keeps a scheduler (a killed scheduler never says goodbye, and RQ refuses a
    second one by the same name)."""
    if SCHEDULER_NAME not in cron_scheduler_registry.get_keys(redis):
        return
    try:
        old = CronScheduler.fetch(SCHEDULER_NAME, redis)
    except SchedulerNotFound:  # its details expired: it has not beaten for minutes
        redis.zrem(cron_scheduler_registry.get_registry_key(), SCHEDULER_NAME)
        return
    if process_alive(old.hostname, old.pid) is False:
        log.info("scheduler: the one before (pid %d) is gone; taking over", old.pid)
        redis.zrem(cron_scheduler_registry.get_registry_key(), SCHEDULER_NAME)


def cron() -> int:
    _logging()
    app = create_app()
    with app.app_context():
        redis = get_redis()
        scheduler = CronScheduler(connection=redis, name=SCHEDULER_NAME)
        jobs = periodic(app)
        for each in jobs:
            scheduler.register(
                each.func, queue_name=each.queue, interval=each.interval, job_timeout=each.timeout
            )
        _forget_dead_scheduler(redis)
    intervals = sorted(each.interval for each in jobs)
    log.info(
        "scheduler (pid %d): %d periodic jobs, every %d s to %d s",
        os.getpid(),
        len(jobs),
        intervals[0],
        intervals[-1],
    )
    scheduler.start()
    return 0


def _ago(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def describe(found: Report, mail: MailBacklog | None) -> str:
    """The report as an operator reads it: the verdict first, then each part."""
    lines = [
        "healthy" if found.healthy else "UNHEALTHY: " + " ".join(map(str, found.problems)),
        f"database    {found.database}, migrations {'at the newest' if found.migrations == 'ok' else found.migrations}",
        f"redis       {found.redis}",
    ]
    if found.queues:
        lines.append(f"{'queue':<14}{'waiting':>8}{'oldest':>9}{'running':>9}{'workers':>9}")
        lines += [
            f"{q.name:<14}{q.depth:>8}{_ago(q.oldest_seconds):>9}{q.started:>9}{q.listeners:>9}"
            for q in found.queues
        ]
    for w in found.workers:
        lines.append(
            f"worker      {w.name} ({w.hostname}:{w.pid}) {w.state if w.alive else 'GONE'}, "
            f"job {w.current_job or '-'}, beat {_ago(w.beat_seconds)} ago, on {', '.join(w.queues)}"
        )
    for s in found.schedulers:
        lines.append(
            f"scheduler   {s.name} ({s.hostname}:{s.pid}) {'beat ' + _ago(s.beat_seconds) + ' ago' if s.alive else 'GONE'}"
        )
    if found.handlers:
        h = found.handlers
        lines.append(
            f"handlers    {h.failed} failed, {h.retrying} waiting for a retry, {h.pending} pending"
            f" (oldest {_ago(h.oldest_pending_seconds)})"
        )
    if mail:
        lines.append(f"mail        {mail.waiting} waiting, {mail.dead} dead")
    lines += [f"note        {note}" for note in found.notes]
    lines += [f"problem     {problem}" for problem in found.problems]
    return "\n".join(lines)


def health(as_json: bool) -> int:
    app = create_app()
    with app.app_context():
        found = report()
        try:
            mail = mail_backlog() if found.database == "ok" else None
        except SQLAlchemyError:
            mail = None
    if as_json:
        print(
            json.dumps({**found.as_dict(), "mail": dataclasses.asdict(mail) if mail else None}, default=str)
        )
    else:
        print(describe(found, mail))
    return 0 if found.healthy else 1


def supervise(processes: int) -> int:
    """Start the workers and the scheduler, restart any that die, stop them all on a signal."""
    _logging()
    commands = [[sys.executable, "-m", "worker", "work"] for _ in range(processes)]
    commands.append([sys.executable, "-m", "worker", "cron"])
    children = [subprocess.Popen(cmd) for cmd in commands]
    stopping = False

    def stop(signum, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping:
        time.sleep(0.5)
        for i, child in enumerate(children):
            if child.poll() is not None and not stopping:
                log.warning(
                    "supervisor: %s exited with %s; restarting", " ".join(commands[i][2:]), child.returncode
                )
                time.sleep(1)
                children[i] = subprocess.Popen(commands[i])
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)  # RQ's warm shutdown: finish the current job
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs="?", default="run", choices=["run", "work", "cron", "health"])
    parser.add_argument("--processes", type=int, default=1, help="worker processes (run)")
    parser.add_argument("--burst", action="store_true", help="drain the queues and exit (work)")
    parser.add_argument("--json", action="store_true", help="the health report as JSON (health)")
    args = parser.parse_args(argv)
    if args.command == "work":
        return work(args.burst)
    if args.command == "cron":
        return cron()
    if args.command == "health":
        return health(args.json)
    return supervise(max(args.processes, 1))


if __name__ == "__main__":
    sys.exit(main())
