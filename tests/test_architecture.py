"""The import contracts (``[tool.importlinter]`` in pyproject.toml): the packages of challenges/ form
layers and never import each other both ways. The checker passes on the code, and fails on a cycle
planted in a copy of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the contracts of pyproject.toml, on the challenges/ package found in *tree*."""
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_packages_keep_their_contracts():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_planted_cycle_between_packages_breaks_them(tmp_path):
    shutil.copytree(
        ROOT / "challenges", tmp_path / "challenges", ignore=shutil.ignore_patterns("__pycache__")
    )
    models = tmp_path / "challenges" / "calls" / "models.py"
    # a lower package (calls) importing a higher one (proposals), which imports it: a cycle, and a layer crossed
    models.write_text(
        models.read_text() + "\nfrom challenges.proposals import models as _proposals  # noqa\n"
    )
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "0 kept, 2 broken" in result.stdout
    assert "challenges.calls.models -> challenges.proposals.models" in result.stdout
