"""Workers: they beat while a long job runs (so the sweeper never takes a running job for lost), and
take the periodic jobs right after the ledger."""

from __future__ import annotations

import contextvars
import threading
import time

from rq import Queue, get_current_job

from challenges.extensions import get_redis
from worker import make_worker


def slow_job() -> float:
    """Run until the job has beaten at least 0.9 s after its start, or 10 s have passed; return how
    long after its start the job last beat."""
    job = get_current_job()
    assert job is not None
    deadline = time.monotonic() + 10
    while True:
        time.sleep(0.1)
        job.refresh()
        beat = (job.last_heartbeat - job.started_at).total_seconds()
        if beat >= 0.9 or time.monotonic() > deadline:
            return beat


def test_a_running_job_keeps_beating(app, ctx, monkeypatch):
    monkeypatch.setitem(app.config, "EVENT_STALL_SECONDS", 2)  # beats every half second
    job = Queue("workflow", connection=get_redis()).enqueue("tests.worker.test_heartbeat.slow_job")
    contextvars.Context().run(make_worker(app, ("workflow",)).work, burst=True, logging_level="WARNING")
    job.refresh()
    assert job.get_status().value == "finished"
    assert job.return_value() >= 0.9  # beats came during the sleep, not only at the start


def test_periodic_jobs_have_a_queue_the_workers_take_right_after_the_ledger(app):
    from challenges.core.bus import PERIODIC_QUEUE
    from challenges.core.jobs import periodic

    assert {each.queue for each in periodic(app)} == {PERIODIC_QUEUE}
    with app.app_context():
        names = [q.name for q in make_worker(app).queues]
    assert names[:2] == ["ledger", PERIODIC_QUEUE] and set(names) >= {"workflow", "notifications"}


def lost_job() -> None:
    """Redis loses this job while it runs (as after a restart); the job sleeps through a few beats and
    notes whether its hash came back meanwhile."""
    job = get_current_job()
    assert job is not None
    get_redis().delete(job.key)
    time.sleep(1.2)
    get_redis().set("test:lost-job-came-back", get_redis().exists(job.key))


def test_a_job_that_redis_lost_is_not_written_back_by_its_heartbeat(app, ctx, monkeypatch):
    """A heartbeat written into a lost job would leave a hash that RQ cannot read (the sweeper reads
    them)."""
    monkeypatch.setitem(app.config, "EVENT_STALL_SECONDS", 2)  # beats every half second
    Queue("workflow", connection=get_redis()).enqueue("tests.worker.test_heartbeat.lost_job")
    contextvars.Context().run(make_worker(app, ("workflow",)).work, burst=True, logging_level="WARNING")
    assert get_redis().get("test:lost-job-came-back") == b"0"


def test_a_worker_stops_listening_at_once_even_after_reading_its_own_unsubscription(app, ctx):
    """The listening thread has read the reply to its unsubscription and waits for a message that will
    not come: stopping it must not wait out that wait (a minute in RQ's own worker with redis-py 8.2)."""
    worker = make_worker(app, ("workflow",))
    worker.subscribe()
    worker.pubsub.unsubscribe()
    for _ in range(100):  # the thread reads the reply; nothing is subscribed any more
        if not worker.pubsub.subscribed:
            break
        time.sleep(0.05)
    assert not worker.pubsub.subscribed
    stopping = threading.Thread(target=worker.unsubscribe, daemon=True)
    stopping.start()
    stopping.join(timeout=15)
    assert not stopping.is_alive(), "the worker's listening thread kept it waiting"
    assert not worker.pubsub_thread.is_alive()


def test_a_worker_that_outlives_an_empty_redis_lists_itself_again(app, ctx):
    """Redis restarted empty forgets every worker; a worker still running says it is there again at its
    next beat, so the health check (`python -m worker health`) sees it."""
    from rq import Worker

    worker = make_worker(app, ("workflow", "notifications"))
    worker.register_birth()
    assert worker.key in {w.key for w in Worker.all(connection=get_redis())}
    get_redis().flushdb()  # as a restart without persistence leaves it
    assert Worker.all(connection=get_redis()) == []
    worker.heartbeat()
    [listed] = Worker.all(connection=get_redis())
    assert listed.name == worker.name and listed.queue_names() == ["workflow", "notifications"]
    assert len(Worker.all(queue=Queue("notifications", connection=get_redis()))) == 1
    worker.register_death()
