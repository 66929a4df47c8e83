"""Running a benchmark's quick mode as a subprocess (shared by the benchmark smoke tests)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_quick(script: str, *, timeout: float = 60) -> str:
    """``python <script> --quick``; returns stdout after checking it exited 0."""
    proc = subprocess.Popen([sys.executable, script, "--quick"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        # SIGTERM first: the bench then stops the servers it started (in their own sessions).
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
        raise AssertionError(f"{script} --quick timed out\n{stdout}\n{stderr}") from None
    assert proc.returncode == 0, stdout + stderr
    assert stdout.strip(), stderr
    return stdout
