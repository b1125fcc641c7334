"""Event pipeline: award events from commit to booked ledger transfer, against bare RQ.

    python -m bench.pipeline [--events 10000] [--workers 1 2] [--paced 2000]

For each worker count: N ``FundingAwarded`` events are committed (each puts its handler job on the
``ledger`` queue, as the web does), then the workers drain the queue; the time runs from the signal
to the last booking. Bare RQ drains N no-op jobs with the same worker class (RQ's non-forking
``SimpleWorker``) and count. The platform runs twice in the same worker processes, so the peak
memory of each process after the first and the second run shows any growth. Then a paced run
commits events at half the measured rate while the workers run, for the latency from commit to
booking (median and 99th percentile). Everything runs on a private PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

import sqlalchemy as sa
from redis import Redis
from rq import Queue

from bench._services import fresh_database, pop, postgres, redis

SEK = 100
AMOUNT_ORE = 10 * SEK  # small awards: the year's budget outlasts every run


def _commit_awards(app, count: int, batch: int = 500) -> None:
    """*count* pending awards with their FundingAwarded events, committed in batches (the relay puts
    each handler job on the ledger queue after its commit)."""
    from challenges.core.events import record
    from challenges.extensions import db
    from challenges.funding import events
    from challenges.funding.models import Award, AwardStatus, ProgrammeYear
    from challenges.proposals.models import Proposal

    with app.app_context():
        year = db.session.scalars(sa.select(ProgrammeYear).order_by(ProgrammeYear.year.desc())).first()
        proposal = db.session.scalars(sa.select(Proposal).order_by(Proposal.id)).first()
        assert year is not None and proposal is not None, "the demo programme is missing"
        for start in range(0, count, batch):
            for _ in range(min(batch, count - start)):
                award = Award(proposal_id=proposal.id, programme_year_id=year.id, amount_ore=AMOUNT_ORE,
                              status=AwardStatus.pending)
                db.session.add(award)
                db.session.flush()
                award.event_id = record(events.FundingAwarded(award_id=award.id, programme_year_id=year.id,
                                                              amount_ore=AMOUNT_ORE)).id
            db.session.commit()
        db.session.remove()


def _spawn(r: Redis, kind: str, workers: int, rounds: int) -> list[subprocess.Popen]:
    """Start the worker processes and wait until each is ready (their start-up is not measured)."""
    procs = [subprocess.Popen([sys.executable, "-m", "bench._worker", kind, "ledger", str(rounds)])
             for _ in range(workers)]
    for _ in range(workers):
        pop(r, "bench:ready", seconds=120)
    return procs


def _round(r: Redis, n: int, workers: int) -> tuple[float, list[int]]:
    """Signal round *n* to the workers; the seconds until every one has drained, and their peak memory."""
    started = time.perf_counter()
    for _ in range(workers):
        r.rpush(f"bench:go:{n}", 1)
    reports = [json.loads(pop(r, "bench:done")) for _ in range(workers)]
    return time.perf_counter() - started, [report["peak_kib"] for report in reports]


def _booked(app) -> tuple[int, int]:
    from challenges.extensions import db
    from challenges.funding.models import Posting

    with app.app_context():
        rows = db.session.execute(sa.select(Posting.booked, sa.func.count()).where(
            Posting.kind == "FundingAwarded").group_by(Posting.booked)).all()
        db.session.remove()
    found = dict(rows)
    return found.get(True, 0), found.get(False, 0)


def platform(app, r: Redis, events: int, workers: int) -> dict:
    fresh_database(app)
    before = _booked(app)[0]  # the demo's own awards
    r.flushdb()
    procs = _spawn(r, "platform", workers, rounds=2)
    runs = []
    for n in (1, 2):
        _commit_awards(app, events)
        seconds, peaks = _round(r, n, workers)
        runs.append({"seconds": seconds, "rate": events / seconds, "peak_mib": [p / 1024 for p in peaks]})
    for proc in procs:
        proc.wait(timeout=60)
    booked, refused = _booked(app)
    if (booked - before, refused) != (2 * events, 0):
        raise SystemExit(f"expected {2 * events} bookings, found {booked - before} booked and {refused} refused")
    return {"runs": runs, "rate": runs[0]["rate"]}


def bare(r: Redis, events: int, workers: int) -> dict:
    r.flushdb()
    procs = _spawn(r, "bare", workers, rounds=1)
    queue = Queue("ledger", connection=r)
    for start in range(0, events, 1000):
        queue.enqueue_many([Queue.prepare_data("bench._worker.noop", result_ttl=0)
                            for _ in range(min(1000, events - start))])
    seconds, _ = _round(r, 1, workers)
    for proc in procs:
        proc.wait(timeout=60)
    return {"seconds": seconds, "rate": events / seconds}


def paced(app, r: Redis, events: int, workers: int, rate: float) -> dict:
    """Commit one award at a time at *rate* per second while the workers run; commit-to-booking latency."""
    from challenges.core.models import Event
    from challenges.extensions import db
    from challenges.funding.models import Posting, Transfer

    fresh_database(app)
    before = _booked(app)[0]
    r.flushdb()
    procs = _spawn(r, "platform", workers, rounds=0)  # work until stopped
    try:
        interval = 1 / rate
        started = time.perf_counter()
        for i in range(events):
            _commit_awards(app, 1)
            time.sleep(max(0.0, started + (i + 1) * interval - time.perf_counter()))
        deadline = time.monotonic() + 600
        while _booked(app)[0] - before < events and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=60)
    with app.app_context():
        latencies = [(booked - occurred) / timedelta(milliseconds=1) for booked, occurred in db.session.execute(
            sa.select(sa.func.min(Transfer.booked_at), Event.occurred_at)
            .join(Posting, Posting.event_id == Event.id).join(Transfer, Transfer.event_id == Event.id)
            .where(Event.type == "FundingAwarded", Event.actor_id.is_(None))
            .group_by(Event.id, Event.occurred_at))]  # the demo's awards have an actor; these do not
        db.session.remove()
    latencies.sort()
    return {"events": len(latencies), "rate": rate, "median_ms": statistics.median(latencies),
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--paced", type=int, default=2_000, help="events in the latency run (0: skip it)")
    args = parser.parse_args()
    with postgres() as database_url, redis() as redis_server, tempfile.TemporaryDirectory() as instance:
        redis_url = redis_server.url
        os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url, INSTANCE_PATH=instance)
        from challenges import create_app

        app = create_app()
        r = Redis.from_url(redis_url)
        print(f"Event pipeline: {args.events} award events, PostgreSQL and Redis private to this run")
        print(f"{'workers':>7}  {'platform/s':>10}  {'bare RQ/s':>10}  {'ratio':>6}  {'2nd run/s':>9}  "
              f"{'peak MiB (1st → 2nd run)':>26}")
        best = None
        for workers in args.workers:
            ours, theirs = platform(app, r, args.events, workers), bare(r, args.events, workers)
            first, second = ours["runs"]
            peaks = ", ".join(f"{a:.0f} → {b:.0f}" for a, b in zip(sorted(first["peak_mib"]),
                                                                    sorted(second["peak_mib"]), strict=True))
            print(f"{workers:>7}  {ours['rate']:>10.0f}  {theirs['rate']:>10.0f}  {ours['rate'] / theirs['rate']:>6.2f}"
                  f"  {second['rate']:>9.0f}  {peaks:>26}", flush=True)
            best = (workers, ours["rate"])
        if args.paced and best:
            workers, rate = best
            latency = paced(app, r, args.paced, workers, rate / 2)
            print(f"Latency, commit to booked transfer, {latency['events']} events at {latency['rate']:.0f}/s "
                  f"(half the measured rate) with {workers} worker(s): median {latency['median_ms']:.0f} ms, "
                  f"99th percentile {latency['p99_ms']:.0f} ms")


if __name__ == "__main__":
    main()
