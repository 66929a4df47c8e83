"""bench/rotation.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import re

from tests.bench.runner import run_quick

RESULT = re.compile(
    r"^RESULT trigger_to_rotated_p50_ms=\d+(\.\d+)? ledger_overhead=-?\d+(\.\d+)?$")


def test_rotation_bench_quick_run_reports_result() -> None:
    """The quick run starts Temporal, Vault and a worker, rotates, measures, ends in RESULT."""
    stdout = run_quick("bench/rotation.py", timeout=60)
    assert RESULT.match(stdout.strip().splitlines()[-1]), stdout
    assert "trigger -> rotated: 3 rotations" in stdout
    assert "fresh codec encoded + decoded under it" in stdout
    # Every report reached the ledger: reporting is measured, not just switched on.
    assert re.search(r"^ledger check: the ledger counted [\d,]+ data keys", stdout, re.M), stdout
