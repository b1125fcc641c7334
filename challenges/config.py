"""Configuration read from the environment, with safe defaults for a first run."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def driver_url(url: str) -> str:
    """*url* with the driver we ship named (psycopg 3), as SQLAlchemy wants it; "postgresql://" is accepted."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def load_secret_key(instance_path: Path) -> str:
    """Return ``SECRET_KEY`` from the environment, or one generated once and kept on disk.

    The generated key lives in ``instance/secret_key`` with mode 0600, so sessions and
    emailed links survive a restart without anybody having to invent a secret.
    """
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = instance_path / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def from_environment(instance_path: Path) -> dict:
    """Build the configuration mapping for :func:`challenges.create_app`."""
    secure_cookies = _bool("SESSION_COOKIE_SECURE", True)
    return {
        "SECRET_KEY": load_secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": os.environ.get(
            "DATABASE_URL", f"sqlite:///{instance_path / 'challenges.db'}"
        ),
        # PostgreSQL: the owner of the schema, for the migrations; DATABASE_URL's role then owns nothing.
        "DATABASE_OWNER_URL": os.environ.get("DATABASE_OWNER_URL") or None,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "BASE_URL": os.environ.get("BASE_URL", "http://127.0.0.1:5000").rstrip("/"),
        # Mail: with no SMTP_HOST, messages are kept in the local outbox (database).
        "SMTP_HOST": os.environ.get("SMTP_HOST", ""),
        "SMTP_PORT": int(os.environ.get("SMTP_PORT", "25")),
        "SMTP_USERNAME": os.environ.get("SMTP_USERNAME", ""),
        "SMTP_PASSWORD": os.environ.get("SMTP_PASSWORD", ""),
        "SMTP_STARTTLS": _bool("SMTP_STARTTLS", False),
        "SMTP_TIMEOUT": float(os.environ.get("SMTP_TIMEOUT", "20")),
        "MAIL_FROM": os.environ.get("MAIL_FROM", "noreply@challenges.localhost"),
        "MAIL_DOMAIN": os.environ.get("MAIL_DOMAIN", "challenges.localhost"),
        # A one-time link (password reset, invitation) is stored and shown with the link left out; only
        # the recipient's copy handed to the SMTP server has it. A development setting may keep it.
        "OUTBOX_SHOWS_LINKS": _bool("OUTBOX_SHOWS_LINKS", False),
        # Cookies: Secure, HttpOnly and SameSite from the first commit. Browsers accept
        # Secure cookies from http://127.0.0.1 and http://localhost, so a first run works.
        "SESSION_COOKIE_SECURE": secure_cookies,
        "SESSION_COOKIE_NAME": "__Host-session" if secure_cookies else "session",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(hours=8),
        "SESSION_IDLE_TIMEOUT": timedelta(minutes=int(os.environ.get("SESSION_IDLE_MINUTES", "60"))),
        "REMEMBER_COOKIE_SECURE": True,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        # A request may carry one attachment (10 MB) and its form; anything larger gets a 413 page.
        "MAX_CONTENT_LENGTH": 12 * 1024 * 1024,
        # Proposal attachments: outside the static folder, under random names.
        "UPLOAD_FOLDER": os.environ.get("UPLOAD_FOLDER", str(instance_path / "uploads")),
        "WTF_CSRF_TIME_LIMIT": 3600 * 8,
        "HSTS_SECONDS": int(os.environ.get("HSTS_SECONDS", "31536000")),
        # Login throttling (Flask-Limiter on Redis, in-memory fallback if Redis is down).
        "LOGIN_LIMIT": os.environ.get("LOGIN_LIMIT", "5 per minute"),  # per account and address
        "LOGIN_ADDRESS_LIMIT": os.environ.get("LOGIN_ADDRESS_LIMIT", "20 per minute"),  # per address
        # Per account, from browsers where it has never logged in: guesses spread over many addresses.
        "LOGIN_ACCOUNT_LIMIT": os.environ.get("LOGIN_ACCOUNT_LIMIT", "10 per 10 minutes"),
        # Single-use emailed links.
        "PASSWORD_RESET_TTL": timedelta(hours=1),
        "INVITATION_TTL": timedelta(days=7),
        "REGISTRATION_TTL": timedelta(hours=24),
        # argon2id, RFC 9106 low-memory profile (t=3, m=64 MiB, p=4).
        "ARGON2_TIME_COST": 3,
        "ARGON2_MEMORY_COST": 65536,
        "ARGON2_PARALLELISM": 4,
        # Public pages kept for visitors at most this long (0: every page rendered for each request).
        "PAGE_CACHE_SECONDS": int(os.environ.get("PAGE_CACHE_SECONDS", "60")),
        # Events: how long a dispatched handler may take before the sweeper re-enqueues it.
        "EVENT_LEASE_SECONDS": int(os.environ.get("EVENT_LEASE_SECONDS", "120")),
        # A started handler job whose heartbeat is this old is taken for lost (its worker killed).
        "EVENT_STALL_SECONDS": int(os.environ.get("EVENT_STALL_SECONDS", "60")),
        "EVENT_MAX_ATTEMPTS": 6,
        "EVENT_RETRY_INTERVALS": [30, 120, 600, 1800, 3600],
        # Mail: seconds before each new try after a temporary failure (6 tries over 1 h 51 min), and
        # the hour (Stockholm time) from which each day's digests are compiled.
        "MAIL_RETRY_DELAYS": [
            int(n)
            for n in os.environ.get("MAIL_RETRY_DELAYS", "60,300,900,1800,3600").split(",")
            if n.strip()
        ],
        "DIGEST_HOUR": int(os.environ.get("DIGEST_HOUR", "7")),
        "DIGEST_SWEEP_SECONDS": int(os.environ.get("DIGEST_SWEEP_SECONDS", "600")),
        "SWEEP_INTERVAL_SECONDS": int(os.environ.get("SWEEP_INTERVAL_SECONDS", "15")),
        # How often the database is searched for challenges past their deadline (a backstop:
        # each challenge also has a job scheduled at its deadline).
        "DEADLINE_SWEEP_SECONDS": int(os.environ.get("DEADLINE_SWEEP_SECONDS", "10")),
        # How often the database is searched for review reminders that are due (each goes once).
        "REMINDER_SWEEP_SECONDS": int(os.environ.get("REMINDER_SWEEP_SECONDS", "600")),
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "Europe/Stockholm",
        "LANGUAGES": ("en", "sv"),
        "PREFERRED_URL_SCHEME": "https" if secure_cookies else "http",
    }
