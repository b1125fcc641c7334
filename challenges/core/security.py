"""Password hashing, server-side login sessions, signed links and HTTP security headers."""

from __future__ import annotations

import hashlib
import re
import secrets
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, Response, current_app, request, session, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

# --- passwords ---------------------------------------------------------------------------


def _hasher() -> PasswordHasher:
    c = current_app.config
    return PasswordHasher(
        time_cost=c["ARGON2_TIME_COST"],
        memory_cost=c["ARGON2_MEMORY_COST"],
        parallelism=c["ARGON2_PARALLELISM"],
    )


def hash_password(password: str) -> str:
    """An argon2id hash with the configured parameters."""
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> tuple[bool, str | None]:
    """Check *password*; return (ok, new_hash) where new_hash is set when parameters changed."""
    hasher = _hasher()
    try:
        hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False, None
    return True, hasher.hash(password) if hasher.check_needs_rehash(stored_hash) else None


_DUMMY_HASH: dict[tuple, str] = {}


def burn_verification_time(password: str) -> None:
    """Spend the time of one verification, so unknown accounts cannot be told apart by timing."""
    key = (current_app.config["ARGON2_TIME_COST"], current_app.config["ARGON2_MEMORY_COST"])
    if key not in _DUMMY_HASH:
        _DUMMY_HASH[key] = hash_password(secrets.token_hex(16))
    verify_password(_DUMMY_HASH[key], password)


# --- session tokens ----------------------------------------------------------------------


def new_session_token() -> tuple[str, str]:
    """A fresh random login-session token and the SHA-256 hash that the database keeps."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- signed links ------------------------------------------------------------------------


def _serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=f"challenges.{purpose}")


def sign_token_id(token_id: str, purpose: str) -> str:
    """The string that goes in an emailed link for the action token *token_id*."""
    return _serializer(purpose).dumps(token_id)


DEVICE_DAYS = 365


def device_value(user_id: int) -> str:
    """The value of the cookie that marks a browser where *user_id* has logged in."""
    return _serializer("device").dumps(user_id)


def device_user(value: str | None) -> int | None:
    """The account a device cookie was given for, if it is ours and less than a year old."""
    if not value:
        return None
    try:
        found = _serializer("device").loads(value, max_age=DEVICE_DAYS * 24 * 3600)
    except BadSignature:
        return None
    return found if isinstance(found, int) else None


def unsign_token_id(signed: str, purpose: str, max_age: int) -> str | None:
    """The token id inside a link, or None if the link was tampered with or is too old."""
    try:
        value = _serializer(purpose).loads(signed, max_age=max_age)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


# --- where a request may come from and send the browser -----------------------------------


def local_target(target: str | None) -> str:
    """*target* when it is a path on this site, else the front page: never an open redirect.

    Browsers drop tabs and newlines from an address, so a target holding any control
    character is refused too ("/<tab>/elsewhere" would become "//elsewhere"); so is a path that
    starts with two slashes however many ("////elsewhere" has no host to urlsplit, but Werkzeug
    folds it to "//elsewhere", which a browser reads as another site).
    """
    parts = urlsplit(target or "")
    if (
        target
        and target.isprintable()
        and "\\" not in target
        and not target.startswith("//")
        and not parts.scheme
        and not parts.netloc
        and parts.path.startswith("/")
    ):
        return target
    return url_for("core.home")


def from_this_site() -> bool:
    """False when the browser says the request was sent from another site's page.

    Browsers send Sec-Fetch-Site, and Origin on every cross-origin POST; a request with
    neither (a script, an old client) is taken as it comes.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


# --- text that may reach a mail header --------------------------------------------------

# CR, LF, NUL and the other line and paragraph separators, plus RFC 2047 encoded-word
# openers: the stock Python 3.11 email package turns an encoded newline into a header.
_HEADER_UNSAFE = re.compile(r"[\r\n\x00\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]|=\?")


def is_header_safe(value: str) -> bool:
    return _HEADER_UNSAFE.search(value) is None


# --- response headers --------------------------------------------------------------------

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)


def set_security_headers(response: Response) -> Response:
    """Add the security headers to every response, error pages included."""
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    seconds = current_app.config["HSTS_SECONDS"]
    if seconds:
        h.setdefault("Strict-Transport-Security", f"max-age={seconds}; includeSubDomains")
    if session.get("_user_id") or response.headers.get("Set-Cookie"):
        h.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.after_request(set_security_headers)
