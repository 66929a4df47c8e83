"""bench/codec_server.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import re

from tests.bench.runner import run_quick

RESULT = re.compile(r"^RESULT throughput_vs_reference=\d+(\.\d+)? p99_ms=\d+(\.\d+)?$")


def test_codec_server_bench_quick_run_reports_result() -> None:
    """The quick run starts Vault, keyward's codec server and the reference, and reports."""
    stdout = run_quick("bench/codec_server.py")
    assert RESULT.match(stdout.strip().splitlines()[-1]), stdout
    assert "keyward (JWT, envelope)" in stdout
    assert "reference (no auth, local key)" in stdout
