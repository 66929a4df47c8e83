"""bench/codec_server.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import math

from tests.bench.runner import run_quick

FIELDS = ("throughput_vs_reference", "p99_ms", "cloud_roles_vs_claims", "ops_calls_per_1000")


def result_fields(line: str) -> dict[str, float]:
    """``RESULT a=<x> b=<y> ...`` → {a: x, b: y}; raises when a value is not a number."""
    label, *pairs = line.split()
    assert label == "RESULT", line
    fields = dict(pair.split("=", 1) for pair in pairs)
    return {name: float(value) for name, value in fields.items()}


def test_codec_server_bench_quick_run_reports_result() -> None:
    """The quick run starts Vault, the Cloud Ops API emulator, keyward's codec server with
    the permissions claim and with Cloud roles, and the reference, and reports all four
    figures as finite numbers, in order."""
    stdout = run_quick("bench/codec_server.py")
    result = result_fields(stdout.strip().splitlines()[-1])
    assert tuple(result) == FIELDS, stdout
    assert all(math.isfinite(value) and value >= 0 for value in result.values()), stdout
    assert "keyward (JWT, envelope)" in stdout
    assert "keyward, Cloud roles (JWT, envelope)" in stdout
    assert "reference (no auth, local key)" in stdout


def test_result_fields_refuses_what_is_not_a_number() -> None:
    assert result_fields("RESULT a=1.5 b=0") == {"a": 1.5, "b": 0.0}
    for bad in ("RESULT a=x", "RESULT a", "RESULTS a=1"):
        try:
            result_fields(bad)
        except (AssertionError, ValueError):
            continue
        raise AssertionError(f"accepted {bad!r}")
