"""Private PostgreSQL and Redis servers for one benchmark run, on loopback, removed afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Flask

from challenges.devserver import RedisServer, free_port


def _as_postgres(*command: str) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.getuid() == 0 else list(command)


_restarts: dict[str, list[str]] = {}


def _exit_on_sigterm() -> None:
    """A benchmark stopped with SIGTERM (``timeout``, ``kill``) still stops the servers it started."""
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))


def restart_postgres(url: str) -> None:
    """Restart a private cluster (fast shutdown: every connection is cut)."""
    if url not in _restarts:
        raise SystemExit("Only a private cluster can be restarted: unset BENCH_DATABASE_URL for this run.")
    subprocess.run(_restarts[url], check=True, stdout=subprocess.DEVNULL)


@contextmanager
def postgres() -> Iterator[str]:
    """BENCH_DATABASE_URL when given; otherwise a private cluster (fsync off: we measure the platform,
    not the disk), dropped at the end."""
    _exit_on_sigterm()
    given = os.environ.get("BENCH_DATABASE_URL")
    if given:
        yield given
        return
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise SystemExit(
            "PostgreSQL is not installed (apt-get install postgresql), or set BENCH_DATABASE_URL."
        )
    bin_dir = Path(found[-1]).parent
    work = Path(tempfile.mkdtemp(prefix="challenges-bench-pg."))
    if os.getuid() == 0:
        shutil.chown(work, "postgres")
    port = free_port()
    data = work / "data"
    try:
        subprocess.run(
            _as_postgres(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            _as_postgres(
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(work / "log"),
                "-w",
                "-o",
                f"-p {port} -c listen_addresses=127.0.0.1 -k {work} -c fsync=off "
                "-c synchronous_commit=off -c max_connections=200",
                "start",
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        subprocess.run(
            _as_postgres(
                str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "bench"
            ),
            check=True,
        )
        url = f"postgresql://postgres@127.0.0.1:{port}/bench"
        _restarts[url] = _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "restart")
        yield url
    finally:
        subprocess.run(
            _as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def redis() -> Iterator[RedisServer]:
    """A private Redis that keeps nothing on disk (it can be stopped and started again)."""
    _exit_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="challenges-bench-redis."))
    server = RedisServer(work).start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Platform:
    """What one benchmark runs against: its own database and Redis, an instance folder, the environment
    the platform's processes are started with, and the app built from it."""

    app: Flask
    env: dict[str, str]
    database_url: str
    redis_server: RedisServer
    instance: Path


@contextmanager
def platform(**settings: str) -> Iterator[Platform]:
    """A private PostgreSQL and Redis and an instance folder, the platform configured for them (and
    *settings*) through the environment, as its processes will be, and the app; all removed afterwards."""
    with postgres() as database_url, redis() as redis_server, tempfile.TemporaryDirectory() as instance:
        env = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_server.url,
            "INSTANCE_PATH": instance,
            **settings,
        }
        os.environ.update(env)
        from challenges import create_app

        yield Platform(create_app(), env, database_url, redis_server, Path(instance))


@contextmanager
def bench_workers(r, kind: str, queues: str, count: int, rounds: int = 0) -> Iterator[list[subprocess.Popen]]:
    """*count* benchmark worker processes (``bench._worker``) on *queues*, ready when this yields (their
    start is not measured); stopped (RQ's warm shutdown) when the block ends, however it ends."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "bench._worker", kind, queues, str(rounds)])
        for _ in range(count)
    ]
    try:
        for _ in range(count):
            pop(r, "bench:ready", seconds=120)
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextmanager
def gunicorn(
    target: str, env: dict[str, str], log: Path | str, workers: int = 2
) -> Iterator[tuple[str, subprocess.Popen]]:
    """``gunicorn`` serving *target* on a free loopback port with *workers* sync workers; yields its
    base URL and master process."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(workers),
                "--bind",
                f"127.0.0.1:{port}",
                target,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/", timeout=2).close()  # noqa: S310 - loopback
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn {target} did not start; see {log}") from None
                time.sleep(0.2)
        yield base, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def fresh_database(app) -> None:
    """An empty schema at the latest migration, with the demo programme (its people, topics, history)."""
    from flask_migrate import upgrade

    from challenges.core.inline import handle_pending
    from challenges.demo import load_demo
    from challenges.extensions import db

    with app.app_context():
        db.session.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
        db.session.commit()
        upgrade(directory=str(Path(__file__).resolve().parent.parent / "migrations"))
        load_demo()
        handle_pending()
        db.session.remove()
        db.engine.dispose()


def pop(r, key: str, seconds: float = 3600) -> bytes:
    """BLPOP in one-second steps (the Redis client gives up on a socket read after five seconds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        popped = r.blpop([key], timeout=1)
        if popped is not None:
            return popped[1]
    raise TimeoutError(f"nothing on {key} within {seconds:.0f} s")
