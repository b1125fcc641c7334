"""``python -m worker``: the real entry point, built by the app factory, drains the queues."""

from __future__ import annotations

import os
import subprocess
import sys

from challenges.accounts import services as accounts
from challenges.config import PROJECT_ROOT
from challenges.extensions import db
from tests.factories import TEST_PASSWORD


def _env(app) -> dict[str, str]:
    c = app.config
    return {
        **os.environ,
        "DATABASE_URL": c["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": c["REDIS_URL"],
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(c["SMTP_PORT"]),
        "SECRET_KEY": c["SECRET_KEY"],
        "INSTANCE_PATH": app.instance_path,
        "BASE_URL": "http://localhost",
    }


def test_burst_worker_process_sends_the_mail(app, ctx, smtp):
    accounts.register_user(name="Sara", email="sara@example.com", password=TEST_PASSWORD, language="en")
    db.session.commit()
    result = subprocess.run(
        [sys.executable, "-m", "worker", "work", "--burst"],
        env=_env(app),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(smtp.to("sara@example.com")) == 1


def test_health_command_reports_missing_workers(app):
    result = subprocess.run(
        [sys.executable, "-m", "worker", "health"],
        env=_env(app),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "No worker takes jobs from the ledger queue." in result.stdout
