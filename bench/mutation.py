"""Mutation testing of the money, the outbox, and the sealing and conflict rules.

    python -m bench.mutation [--show] [PATTERN ...]

mutmut (configured in ``pyproject.toml``, ``[tool.mutmut]``) copies the project into ``mutants/``,
makes one-line changes to the functions of the listed modules (a flipped comparison, a changed
number, a dropped argument, a call replaced by ``None``) and runs the tests that reach each changed
function; a mutant whose tests all pass *survived*: a bug the suite would not notice. Tests that
start processes of their own are left out (``-m "not processes"``): a mutant can make them spin.

It prints, per module, how many mutants there were and how many the suite killed, then every
survivor (with its one-line change with ``--show``). A second run without PATTERN tests only the
mutants not yet tested; PATTERN limits the run to some mutants (``"challenges.funding.ledger*"``)
and tests each of them again. Needs the test dependencies (``./scripts/test`` installs them). A
full run takes several hours on two cores (2 to 5 mutants a minute, most of the time in survivors,
which run every test that reaches them): run it a module or a function at a time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = [sys.executable, "-m", "mutmut"]
LINE = re.compile(r"^\s+(?P<name>[\w.]+__mutmut_\d+): (?P<status>.+)$")


def _module(mutant: str) -> str:
    """``challenges.funding.ledger.x_post__mutmut_3`` → ``challenges/funding/ledger.py``."""
    dotted = mutant.rsplit(".", 1)[0]
    return dotted.replace(".", "/") + ".py"


def results() -> dict[str, str]:
    out = subprocess.run(
        [*MUTMUT, "results", "--all", "true"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return {m["name"]: m["status"] for line in out.splitlines() if (m := LINE.match(line))}


def change(mutant: str) -> str:
    """The mutant's changed lines, as ``- old`` / ``+ new``."""
    diff = subprocess.run(
        [*MUTMUT, "show", mutant], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return "\n".join(
        f"      {line.strip()}"
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", action="store_true", help="print each survivor's change")
    parser.add_argument("patterns", nargs="*", help="only the mutants whose names match")
    args = parser.parse_args()
    log = ROOT / "mutants" / "run.log"
    log.parent.mkdir(exist_ok=True)
    with log.open("w") as out:  # mutmut draws progress on the terminal; kept in the log instead
        subprocess.run(
            [*MUTMUT, "run", *args.patterns], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, check=False
        )
    found = results()
    if not found:
        raise SystemExit(f"mutmut reported no mutants; see {log}")
    by_module: dict[str, Counter[str]] = defaultdict(Counter)
    for name, status in found.items():
        by_module[_module(name)][status] += 1
    print("Mutation testing (mutmut): killed = the suite failed on the mutant")
    print(f"  {'module':36} {'mutants':>8} {'killed':>7} {'survived':>9} {'other':>6} {'score':>6}")
    total: Counter[str] = Counter()
    for module, counts in sorted(by_module.items()):
        total += counts
        _row(module, counts)
    _row("all", total)
    survivors = sorted(name for name, status in found.items() if status == "survived")
    if survivors:
        print(f"\nSurvivors ({len(survivors)}):")
        for name in survivors:
            print(f"  {name}")
            if args.show:
                print(change(name))
    other = sorted(
        (name, status) for name, status in found.items() if status not in ("killed", "survived", "timeout")
    )
    for name, status in other:
        print(f"  {name}: {status}")


def _row(module: str, counts: Counter[str]) -> None:
    mutants = sum(counts.values()) - counts["skipped"]
    killed = counts["killed"] + counts["timeout"]  # a mutant that hangs the tests is caught too
    other = mutants - killed - counts["survived"]
    score = 100 * killed / mutants if mutants else 0.0
    print(f"  {module:36} {mutants:8} {killed:7} {counts['survived']:9} {other:6} {score:5.1f}%")


if __name__ == "__main__":
    main()
