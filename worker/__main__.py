"""``python -m worker``: run the workers and the periodic scheduler, or check their health.

    python -m worker                 # supervisor: N worker processes + the scheduler
    python -m worker --processes 2
    python -m worker work [--burst]  # one worker process (all queues, with RQ's scheduler)
    python -m worker cron            # the periodic scheduler only
    python -m worker health          # exit 0 when database, Redis and workers answer
"""

from __future__ import annotations

import argparse
import logging
import signal
import subprocess
import sys
import time

import sqlalchemy as sa
from rq import Worker
from rq.cron import CronScheduler

from challenges import create_app
from challenges.core.events import WORKER_QUEUES
from challenges.extensions import db, get_redis
from worker import make_worker
from worker.schedule import periodic_jobs

log = logging.getLogger("worker")


def work(burst: bool) -> int:
    app = create_app()
    worker = make_worker(app)
    worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    return 0


def cron() -> int:
    app = create_app()
    with app.app_context():
        scheduler = CronScheduler(connection=get_redis(), name="challenges-periodic")
        for func, queue, interval in periodic_jobs(app):
            scheduler.register(func, queue_name=queue, interval=interval, job_timeout=300)
    scheduler.start()
    return 0


def health() -> int:
    app = create_app()
    problems = []
    with app.app_context():
        try:
            db.session.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - report, do not crash
            problems.append(f"database: {type(exc).__name__}")
        try:
            redis = get_redis()
            redis.ping()
            listened = {queue for w in Worker.all(connection=redis) for queue in w.queue_names()}
            problems += [f"no worker listens on the {queue} queue" for queue in WORKER_QUEUES if queue not in listened]
        except Exception as exc:  # noqa: BLE001
            problems.append(f"redis: {type(exc).__name__}")
    print("ok" if not problems else "; ".join(problems))
    return 1 if problems else 0


def supervise(processes: int) -> int:
    """Start the workers and the scheduler, restart any that die, stop them all on a signal."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s supervisor %(message)s")
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
                log.warning("%s exited with %s; restarting", " ".join(commands[i][2:]), child.returncode)
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
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "work", "cron", "health"])
    parser.add_argument("--processes", type=int, default=1, help="worker processes (run)")
    parser.add_argument("--burst", action="store_true", help="drain the queues and exit (work)")
    args = parser.parse_args(argv)
    if args.command == "work":
        return work(args.burst)
    if args.command == "cron":
        return cron()
    if args.command == "health":
        return health()
    return supervise(max(args.processes, 1))


if __name__ == "__main__":
    sys.exit(main())
