"""The code base stays ruff-clean and mypy --strict clean; part of the one test command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False,
                          timeout=300)


def test_ruff_is_clean() -> None:
    """ruff check reports nothing on the repository."""
    result = run(str(BIN / "ruff"), "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean() -> None:
    """mypy --strict (configured in pyproject) finds no errors in library and entry points."""
    result = run(str(BIN / "mypy"))
    assert result.returncode == 0, result.stdout + result.stderr
