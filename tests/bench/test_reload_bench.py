"""bench/reload.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import re

from tests.bench.runner import run_quick

RESULT = re.compile(r"^RESULT rotations=\d+ failed_workflows=\d+ swap_p99_ms=\d+(\.\d+)?$")


def test_reload_bench_quick_run_reports_result() -> None:
    """The quick run rotates the worker's certificate under load and reports failures."""
    stdout = run_quick("bench/reload.py", timeout=90)
    last = stdout.strip().splitlines()[-1]
    assert RESULT.match(last), stdout
    rotations = int(re.search(r"rotations=(\d+)", last).group(1))  # type: ignore[union-attr]
    assert rotations >= 1, stdout
    assert re.search(r"^\| workflows failed \| \d+ ", stdout, re.M), stdout
    assert re.search(r"^\| workflows completed \| \d+ ", stdout, re.M), stdout
