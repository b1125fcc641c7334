"""The supervisor restarts a worker or a scheduler that dies, and ``python -m worker health`` tells
both: unhealthy while one is down, healthy again once it is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from challenges.config import PROJECT_ROOT
from tests.worker.test_entrypoint import _env


def _run(env: dict[str, str], *options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "worker", "health", *options],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _health(env: dict[str, str]) -> tuple[int, dict, str]:
    """The report as JSON and as text (taken while nothing changes: the supervisor is stopped)."""
    as_json, text = _run(env, "--json"), _run(env)
    assert as_json.returncode == text.returncode, (as_json.stdout, text.stdout)
    return text.returncode, json.loads(as_json.stdout), text.stdout


def _until_healthy(env: dict[str, str], seconds: float = 60) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        found = _run(env, "--json")
        if found.returncode == 0:
            return json.loads(found.stdout)
        assert time.monotonic() < deadline, found.stdout
        time.sleep(0.5)


def test_health_fails_while_a_worker_or_the_scheduler_is_down_and_recovers_when_restarted(app, tmp_path):
    env = _env(app)
    with open(tmp_path / "supervisor.log", "w") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "worker"], env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        report = _until_healthy(env)
        (worker,) = [w for w in report["workers"] if w["alive"]]
        assert set(worker["queues"]) == {"ledger", "periodic", "workflow", "notifications"}

        supervisor.send_signal(signal.SIGSTOP)  # so that it cannot restart the worker before we look
        os.kill(worker["pid"], signal.SIGKILL)
        code, report, text = _health(env)
        assert code == 1
        assert text.startswith("UNHEALTHY: No worker takes jobs from the ledger queue.")
        assert {p["key"] for p in report["problems"]} == {"no_worker"}
        assert f"Worker {worker['name']} ({worker['hostname']}, process {worker['pid']}) is gone." in text

        supervisor.send_signal(signal.SIGCONT)
        report = _until_healthy(env)
        assert any(w["alive"] and w["pid"] != worker["pid"] for w in report["workers"])
        assert _run(env).stdout.startswith("healthy\n")

        (scheduler,) = report["schedulers"]
        supervisor.send_signal(signal.SIGSTOP)
        os.kill(scheduler["pid"], signal.SIGKILL)
        code, report, text = _health(env)
        assert code == 1 and [p["key"] for p in report["problems"]] == ["no_scheduler"]
        supervisor.send_signal(signal.SIGCONT)
        report = _until_healthy(env)
        assert [s["pid"] != scheduler["pid"] and s["alive"] for s in report["schedulers"]] == [True]
    finally:
        supervisor.send_signal(signal.SIGCONT)
        supervisor.terminate()
        supervisor.wait(timeout=60)
    assert "exited with -9; restarting" in (tmp_path / "supervisor.log").read_text()
