"""Attachment files: checked by content, kept outside the static folder under random names."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import unicodedata
from pathlib import Path

from flask import abort, current_app, send_file

log = logging.getLogger(__name__)

MAX_BYTES = 10 * 1024 * 1024
MAX_FILES = 5
_NAME_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]+")


def folder() -> Path:
    path = Path(current_app.config["UPLOAD_FOLDER"])
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def path_of(storage_name: str) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", storage_name):
        raise ValueError("not a storage name")
    return folder() / storage_name


def looks_like_pdf(data: bytes) -> bool:
    """A PDF by content: the ``%PDF-`` header first and an ``%%EOF`` marker near the end.

    A file named ``.pdf`` that is really HTML, a picture or a truncated upload fails.
    """
    return data.startswith(b"%PDF-") and b"%%EOF" in data[-2048:]


def display_name(filename: str) -> str:
    """The name people see and download: no folders, no control characters, ending in .pdf."""
    name = unicodedata.normalize("NFC", filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    # No control or format characters: a right-to-left override could make "gnp.exe" read as "exe.png".
    name = "".join(ch for ch in name if unicodedata.category(ch) not in {"Cc", "Cf"})
    name = _NAME_UNSAFE.sub("_", name).strip(" .") or "attachment"
    if not name.lower().endswith(".pdf"):
        name += ".pdf"
    if len(name) > 120:
        name = name[:116].rstrip(" .") + ".pdf"
    return name


def store(data: bytes) -> tuple[str, str]:
    """Write *data* under a new random name, durably; returns (storage name, SHA-256)."""
    storage_name = secrets.token_hex(16)
    fd = os.open(path_of(storage_name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return storage_name, hashlib.sha256(data).hexdigest()


def send(storage_name: str, download_name: str):
    """The file as a download (never inline, never cached); 404 if it is missing from the disk."""
    path = path_of(storage_name)
    if not path.is_file():
        log.error("attachment file %s is missing", path)
        abort(404)
    response = send_file(
        path, mimetype="application/pdf", as_attachment=True, download_name=download_name, max_age=0
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


def discard(storage_name: str) -> None:
    """Remove a file whose database row was never committed."""
    path_of(storage_name).unlink(missing_ok=True)
