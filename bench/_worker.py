"""One benchmark worker process: waits for the harness's signal, drains its queue (burst), reports.

    python -m bench._worker platform|bare QUEUE[,QUEUE…] ROUNDS

It says ``bench:ready`` once started; with 0 rounds it serves until stopped. Each round waits for
``bench:go:<n>`` in Redis, drains the queue, then pushes one JSON line to
``bench:done`` with its peak resident memory (so two rounds show whether memory grows).
"""

from __future__ import annotations

import cProfile
import json
import os
import resource
import sys

from redis import Redis
from rq import Queue
from rq.worker import BaseWorker

from bench._services import pop
from worker import PromptStop


def main(kind: str, queue: str, rounds: int) -> None:
    redis_url = os.environ["REDIS_URL"]
    worker: BaseWorker
    if kind == "platform":
        from challenges import create_app
        from worker import make_worker

        worker = make_worker(create_app(), tuple(queue.split(",")))
        redis = worker.connection
    else:  # bare RQ: the same non-forking worker class, no application around the job (RQ's
        # SimpleWorker, stopping within a second as ours does: a round ends when its burst returns)
        redis = Redis.from_url(redis_url)
        worker = PromptStop([Queue(queue, connection=redis)], connection=redis)
    redis.rpush("bench:ready", os.getpid())
    if rounds == 0:  # serve until stopped (SIGTERM: RQ's warm shutdown)
        worker.work(logging_level="WARNING")
        return
    for n in range(1, rounds + 1):
        pop(redis, f"bench:go:{n}", seconds=24 * 3600)
        worker.work(burst=True, logging_level="WARNING")
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        redis.rpush("bench:done", json.dumps({"round": n, "pid": os.getpid(), "peak_kib": peak_kib}))


def noop() -> None:
    """The bare RQ job: nothing at all."""


if __name__ == "__main__":
    # BENCH_PROFILE=DIR: each worker writes its cProfile statistics to DIR/worker-PID.prof when it stops
    profile_dir = os.environ.get("BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_dir else None
    if profiler is not None:
        profiler.enable()
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    if profiler is not None and profile_dir:
        profiler.disable()
        profiler.dump_stats(os.path.join(profile_dir, f"worker-{os.getpid()}.prof"))
