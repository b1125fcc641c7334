"""The locked dependencies: install exactly the lock into .venv, or refresh the lock.

    python3 scripts/deps.py install app    # what the platform runs on (scripts/start)
    python3 scripts/deps.py install test   # that, and what the tests need (scripts/test)
    python3 scripts/deps.py lock [UV-ARGS] # refresh the lock (scripts/lock)

The lock is ``requirements.txt`` (the application) and ``requirements/*.txt`` (build, test, tools): every package, direct and transitive, pinned to one version
with the hashes of its files, for every Python the project supports (3.11 to 3.13) in one file.
Installing it runs pip in hash-checking mode with ``--no-deps``: no resolver picks anything, and a
file whose hash is not in the lock is refused. Each lock file's first line is a fingerprint of the
dependency lists in ``pyproject.toml``; a lock made for other lists stops the install and says how to
refresh it. uv makes the lock (``uv pip compile --universal --generate-hashes``); it is needed only to
refresh it, never to install. ``docs/operations.md`` says why this way and not another.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

if sys.version_info < (3, 11):  # noqa: UP036 - before tomllib is needed: a message, not a traceback
    sys.exit(
        f"Python {sys.version.split()[0]} is too old: the platform needs 3.11, 3.12 or 3.13. "
        "Set PYTHON, e.g. PYTHON=python3.11 ./scripts/start"
    )

import tomllib  # noqa: E402 - after the version check

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"


def lock_file(name: str) -> Path:
    """The application's lock is ``requirements.txt`` at the top, where installers look; the others
    (build, test, tools) are in ``requirements/``."""
    return ROOT / "requirements.txt" if name == "app" else LOCKS / f"{name}.txt"


VENV = ROOT / ".venv"
TOOLS = ROOT / ".tools"
STAMP = VENV / ".locked"
KINDS = {"app": ["build", "app"], "test": ["build", "test"]}
REFRESH = "./scripts/lock"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)(?: ;([^\\]+))?", re.M)


def fingerprint() -> str:
    """A digest of what pyproject.toml asks for: dependencies, extras, build requirements, Pythons."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    asked = {
        "dependencies": sorted(project["project"]["dependencies"]),
        "optional": {
            k: sorted(v) for k, v in sorted(project["project"].get("optional-dependencies", {}).items())
        },
        "build": sorted(project["build-system"]["requires"]),
        "python": project["project"]["requires-python"],
    }
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()[:16]


def header(name: str) -> str:
    return f"# pyproject {fingerprint()}: the lock for {name}; refresh with {REFRESH}, never by hand\n"


def check(names: list[str]) -> None:
    """Stop with a clear message when a lock file is missing or was made for another pyproject.toml."""
    for name in names:
        path = lock_file(name)
        if not path.exists():
            sys.exit(f"{path.relative_to(ROOT)} is missing. Make the lock: {REFRESH}")
        if not path.read_text(encoding="utf-8").startswith(f"# pyproject {fingerprint()}:"):
            sys.exit(
                f"{path.relative_to(ROOT)} does not match pyproject.toml: its dependencies changed since the "
                f"lock was made.\nRefresh the lock with {REFRESH}, run ./scripts/test, and commit both files."
            )


def _digest(names: list[str]) -> str:
    text = "".join((lock_file(name)).read_text(encoding="utf-8") for name in names)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _python_of(env: Path) -> str | None:
    cfg = env / "pyvenv.cfg"
    if not cfg.exists():
        return None
    found = re.search(r"^version(?:_info)?\s*=\s*(\S+)", cfg.read_text(encoding="utf-8"), re.M)
    return found.group(1) if found else None


def check_python() -> None:
    """Stop when this Python is outside pyproject.toml's requires-python (the lock covers only those)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    here = sys.version_info[:2]
    for op, major, minor in re.findall(r"([<>]=?)\s*(\d+)\.(\d+)", project["requires-python"]):
        bound = (int(major), int(minor))
        ok = {"<": here < bound, "<=": here <= bound, ">": here > bound, ">=": here >= bound}[op]
        if not ok:
            sys.exit(
                f"Python {here[0]}.{here[1]} is not one the platform supports ({project['requires-python']}). "
                "Set PYTHON to another, e.g. PYTHON=python3.11 ./scripts/start"
            )


def install(kind: str) -> None:
    """Make .venv hold exactly the lock for *kind* (once: a second run finds its stamp and returns)."""
    names = KINDS[kind]
    check_python()
    check(names)
    wanted = f"{kind} {_digest(names)}"
    stamps = STAMP.read_text(encoding="utf-8").split("\n") if STAMP.exists() else []
    if wanted in stamps:
        return
    this_python = ".".join(map(str, sys.version_info[:3]))
    current = {other for other in KINDS if f"{other} {_digest(KINDS[other])}" in stamps}
    if _python_of(VENV) != this_python or len(current) < len([s for s in stamps if s]):
        # Another Python, or a lock that changed since: start afresh so that nothing stays behind.
        shutil.rmtree(VENV, ignore_errors=True)
        stamps = []
    if not (VENV / "bin" / "python").exists():
        print(f"Creating .venv with Python {this_python}...", flush=True)
        venv.create(VENV, with_pip=True)
    print(f"Installing the locked dependencies ({kind})...", flush=True)
    pip = [
        str(VENV / "bin" / "python"),
        "-m",
        "pip",
        "--disable-pip-version-check",
        "install",
        "--quiet",
        "--no-input",
        "--require-hashes",
        "--no-deps",
        "--no-build-isolation",
    ]
    steps = [[*pip, "-r", str(lock_file(name))] for name in names]  # build requirements first
    steps += [
        [*pip[:-3], "--no-deps", "--no-build-isolation", "-e", str(ROOT)],
        [str(VENV / "bin" / "python"), "-m", "pip", "check"],
    ]
    with open(VENV / "install.log", "w", encoding="utf-8") as log:
        for step in steps:  # pip's chatter goes to the log, and is shown only when a step fails
            log.write("$ " + " ".join(step) + "\n")
            log.flush()
            if subprocess.run(step, stdout=log, stderr=subprocess.STDOUT).returncode:
                sys.exit(
                    (VENV / "install.log").read_text(encoding="utf-8") + "\nThe installation failed (above)."
                )
    STAMP.write_text("\n".join([*[s for s in stamps if s], wanted]) + "\n", encoding="utf-8")


def _pins(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    return {
        f"{m[1]}{' (' + m[3].strip() + ')' if m[3] else ''}": m[2]
        for m in PIN.finditer(path.read_text("utf-8"))
    }


def lock(uv_args: list[str]) -> None:
    """Refresh every lock file to the newest versions pyproject.toml's ranges allow, and say what moved;
    with --keep, change only what pyproject.toml's changes need (a dependency added, a range moved)."""
    keep = "--keep" in uv_args
    uv_args = [a for a in uv_args if a != "--keep"]
    if not (TOOLS / "bin" / "uv").exists():
        venv.create(TOOLS, with_pip=True)
        subprocess.run(
            [
                str(TOOLS / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--require-hashes",
                "--no-deps",
                "-r",
                str(LOCKS / "tools.txt"),
            ],
            check=True,
        )
    before = {name: _pins(lock_file(name)) for name in ("build", "app", "test", "tools")}
    uv = [
        str(TOOLS / "bin" / "uv"),
        "pip",
        "compile",
        "--quiet",
        "--universal",
        "--generate-hashes",
        "--python-version",
        "3.11",
        "--no-header",
        *([] if keep else ["--upgrade"]),
        *uv_args,
    ]
    build_in = TOOLS / "build.in"
    build_in.write_text(
        "\n".join(tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["build-system"]["requires"])
        + "\n",
        encoding="utf-8",
    )
    test = TOOLS / "test.txt"
    steps = [  # the test lock first: the others are held to its versions, so that they never disagree
        ("test", ["pyproject.toml", "--extra", "test"]),
        ("app", ["pyproject.toml", "-c", str(test)]),
        ("build", [str(build_in), "-c", str(test)]),
        ("tools", [str(LOCKS / "tools.in")]),
    ]
    for name, inputs in steps:  # into .tools first (uv keeps the pins it finds there unless --upgrade)
        out = TOOLS / f"{name}.txt"
        shutil.copyfile(lock_file(name), out)
        subprocess.run([*uv, *inputs, "-o", str(out)], check=True, cwd=ROOT)
    for name, _inputs in steps:  # then all at once: a step that fails leaves the lock as it was
        (lock_file(name)).write_text(
            header(name) + (TOOLS / f"{name}.txt").read_text("utf-8"), encoding="utf-8"
        )
    moved = []
    for name, old in before.items():
        new = _pins(lock_file(name))
        for package in sorted(old.keys() | new.keys()):
            if old.get(package) != new.get(package):
                moved.append(f"  {name}: {package} {old.get(package, '-')} -> {new.get(package, '-')}")
    print("What moved:\n" + "\n".join(moved) if moved else "Nothing moved: the lock was already the newest.")
    print(
        "Now run ./scripts/test on the refreshed lock, and commit requirements.txt and requirements/ only when it passes."
    )


def main(argv: list[str]) -> int:
    if argv[:1] == ["install"] and len(argv) == 2 and argv[1] in KINDS:
        os.chdir(ROOT)
        install(argv[1])
        return 0
    if argv[:1] == ["lock"]:
        lock(argv[1:])
        return 0
    if argv[:1] == ["check"]:
        check(sorted({n for names in KINDS.values() for n in names}))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
