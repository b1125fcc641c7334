"""Event pipeline: award events from commit to booked ledger transfer, against bare RQ.

    python -m bench.pipeline [--events 10000] [--workers 1 2] [--paced 2000]

For each worker count: N ``FundingAwarded`` events are committed, 500 to a transaction (each commit
wakes the ledger's drain job, as the web does), then the workers start; the time runs from their
signal to the last booking. The platform books waiting events in batches (one drain job, a
transaction per 200 events), so it runs far fewer jobs than events. Bare RQ drains N no-op jobs with
the same worker class (RQ's non-forking ``SimpleWorker``, with the platform's one-second stop:
``worker.PromptStop``) and count. The platform runs twice in the
same worker processes, so the peak memory of each process after the first and the second run shows
any growth. Then a paced run commits events one to a transaction, from four threads, at half the
measured rate (or as fast as they can) while the workers run, for the latency from commit to booking (median and
99th percentile). Everything runs on a private PostgreSQL and Redis.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import sqlalchemy as sa
from redis import Redis
from rq import Queue

from bench._services import bench_workers, fresh_database, pop
from bench._services import platform as platform_services

SEK = 100
AMOUNT_ORE = 10 * SEK  # small awards: the year's budget outlasts every run
COMMITTERS = 4  # threads committing awards one at a time in the latency run, as web requests would


def _commit_awards(app, count: int, batch: int = 500) -> None:
    """*count* pending awards with their FundingAwarded events, committed in batches (each commit wakes
    the ledger's drain)."""
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
                award = Award(
                    proposal_id=proposal.id,
                    programme_year_id=year.id,
                    amount_ore=AMOUNT_ORE,
                    status=AwardStatus.pending,
                )
                db.session.add(award)
                db.session.flush()
                award.event_id = record(
                    events.FundingAwarded(award_id=award.id, programme_year_id=year.id, amount_ore=AMOUNT_ORE)
                ).id
            db.session.commit()
        db.session.remove()


def _round(r: Redis, n: int, workers: int) -> tuple[float, dict[int, float]]:
    """Signal round *n* to the workers; the seconds until every one has drained, and each one's peak
    memory in MiB, by process id."""
    started = time.perf_counter()
    for _ in range(workers):
        r.rpush(f"bench:go:{n}", 1)
    reports = [json.loads(pop(r, "bench:done")) for _ in range(workers)]
    return time.perf_counter() - started, {report["pid"]: report["peak_kib"] / 1024 for report in reports}


def _booked(app) -> tuple[int, int]:
    from challenges.extensions import db
    from challenges.funding.models import Posting

    with app.app_context():
        rows = db.session.execute(
            sa.select(Posting.booked, sa.func.count())
            .where(Posting.kind == "FundingAwarded")
            .group_by(Posting.booked)
        ).all()
        db.session.remove()
    found = dict(rows)
    return found.get(True, 0), found.get(False, 0)


def platform(app, r: Redis, events: int, workers: int) -> dict:
    fresh_database(app)
    before = _booked(app)[0]  # the demo's own awards
    r.flushdb()
    runs = []
    with bench_workers(r, "platform", "ledger", workers, rounds=2) as procs:
        for n in (1, 2):
            _commit_awards(app, events)
            seconds, peaks = _round(r, n, workers)
            runs.append({"seconds": seconds, "rate": events / seconds, "peak_mib": peaks})
        for proc in procs:
            proc.wait(timeout=60)
    booked, refused = _booked(app)
    if (booked - before, refused) != (2 * events, 0):
        raise SystemExit(
            f"expected {2 * events} bookings, found {booked - before} booked and {refused} refused"
        )
    return {"runs": runs, "rate": runs[0]["rate"]}


def bare(r: Redis, events: int, workers: int) -> dict:
    r.flushdb()
    with bench_workers(r, "bare", "ledger", workers, rounds=1) as procs:
        queue = Queue("ledger", connection=r)
        for start in range(0, events, 1000):
            queue.enqueue_many(
                [
                    Queue.prepare_data("bench._worker.noop", result_ttl=0)
                    for _ in range(min(1000, events - start))
                ]
            )
        seconds, _ = _round(r, 1, workers)
        for proc in procs:
            proc.wait(timeout=60)
    return {"seconds": seconds, "rate": events / seconds}


def paced(app, r: Redis, events: int, workers: int, rate: float) -> dict:
    """Commit awards one to a transaction from COMMITTERS threads at *rate* per second in all (or as fast
    as they can, if slower) while the workers run; the rate reached, and the latency from each commit to
    its booking."""
    from challenges.core.models import Event
    from challenges.extensions import db
    from challenges.funding.models import Posting, Transfer

    fresh_database(app)
    before = _booked(app)[0]
    r.flushdb()
    with bench_workers(r, "platform", "ledger", workers):  # work until stopped
        interval = COMMITTERS / rate
        started = time.perf_counter()

        def commit_share(first: int) -> None:  # every COMMITTERS-th award, each in its own transaction
            for n, _i in enumerate(range(first, events, COMMITTERS)):
                _commit_awards(app, 1)
                time.sleep(max(0.0, started + first / rate + (n + 1) * interval - time.perf_counter()))

        with ThreadPoolExecutor(COMMITTERS) as pool:
            list(pool.map(commit_share, range(COMMITTERS)))
        reached = events / (time.perf_counter() - started)
        deadline = time.monotonic() + 600
        while _booked(app)[0] - before < events and time.monotonic() < deadline:
            time.sleep(0.2)
    with app.app_context():
        latencies = [
            (booked - occurred) / timedelta(milliseconds=1)
            for booked, occurred in db.session.execute(
                sa.select(sa.func.min(Transfer.booked_at), Event.occurred_at)
                .join(Posting, Posting.event_id == Event.id)
                .join(Transfer, Transfer.event_id == Event.id)
                .where(Event.type == "FundingAwarded", Event.actor_id.is_(None))
                .group_by(Event.id, Event.occurred_at)
            )
        ]  # the demo's awards have an actor; these do not
        db.session.remove()
    latencies.sort()
    return {
        "events": len(latencies),
        "rate": reached,
        "median_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--paced", type=int, default=2_000, help="events in the latency run (0: skip it)")
    args = parser.parse_args()
    with platform_services() as bench:
        app, r = bench.app, Redis.from_url(bench.redis_server.url)
        print(f"Event pipeline: {args.events} award events, PostgreSQL and Redis private to this run")
        print(
            f"{'workers':>7}  {'platform/s':>10}  {'bare RQ/s':>10}  {'ratio':>6}  {'2nd run/s':>9}  "
            f"{'peak MiB (1st → 2nd run)':>26}"
        )
        best = None
        for workers in args.workers:
            ours, theirs = platform(app, r, args.events, workers), bare(r, args.events, workers)
            first, second = ours["runs"]
            peaks = ", ".join(
                f"{first['peak_mib'][pid]:.0f} → {second['peak_mib'][pid]:.0f}"
                for pid in sorted(first["peak_mib"])
            )
            print(
                f"{workers:>7}  {ours['rate']:>10.0f}  {theirs['rate']:>10.0f}  {ours['rate'] / theirs['rate']:>6.2f}"
                f"  {second['rate']:>9.0f}  {peaks:>26}",
                flush=True,
            )
            best = (workers, ours["rate"])
        if args.paced and best:
            workers, rate = best
            latency = paced(app, r, args.paced, workers, rate / 2)
            print(
                f"Latency, commit to booked transfer, {latency['events']} events committed one by one at "
                f"{latency['rate']:.0f}/s (aiming at half the measured rate, {rate / 2:.0f}/s) with {workers} "
                f"worker(s): median {latency['median_ms']:.0f} ms, 99th percentile {latency['p99_ms']:.0f} ms"
            )


if __name__ == "__main__":
    main()
