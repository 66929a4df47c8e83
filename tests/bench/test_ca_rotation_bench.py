"""bench/ca_rotation.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import re

from tests.bench.runner import run_quick

RESULT = re.compile(
    r"^RESULT failed_workflows=\d+ rotation_s=\d+(\.\d+)? handshake_failures=\d+$")


def test_ca_rotation_bench_quick_run_reports_result() -> None:
    """A whole rotation under load: every phase seen, the old-CA probe answered."""
    stdout = run_quick("bench/ca_rotation.py", timeout=120)
    last = stdout.strip().splitlines()[-1]
    assert RESULT.match(last), stdout
    for phase in ("staged", "overlap published", "issuance switched", "worker on new-CA leaf",
                  "old CA retired"):
        assert re.search(rf"^\| {phase} \| \d+\.\d \|$", stdout, re.M), (phase, stdout)
    assert re.search(r"^\| handshake with an old-CA leaf after retirement \| (refused|accepted)",
                     stdout, re.M), stdout
