"""bench/codec.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import re

from tests.bench.runner import run_quick

RESULT = re.compile(r"^RESULT envelope_vs_local=\d+(\.\d+)? batched_vs_per_payload=\d+(\.\d+)?$")


def test_codec_bench_quick_run_reports_result() -> None:
    """``python bench/codec.py --quick`` starts its own Vault, measures, exits 0, ends in RESULT."""
    stdout = run_quick("bench/codec.py")
    assert RESULT.match(stdout.strip().splitlines()[-1]), stdout
    assert "(d) keyward envelope" in stdout
    assert "(b) Transit call per payload, sequential" in stdout
