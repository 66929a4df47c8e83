"""bench/renewal.py runs end to end and reports its RESULT line (behaviour, not speed)."""

from __future__ import annotations

import re

from tests.bench.runner import run_quick

RESULT = re.compile(r"^RESULT local_ca_issue_per_s=\d+(\.\d+)? renew_workflow_p50_ms=\d+(\.\d+)?$")


def test_renewal_bench_quick_run_reports_result() -> None:
    """The quick run issues with both key types, runs the workflow, and reports."""
    stdout = run_quick("bench/renewal.py")
    assert RESULT.match(stdout.strip().splitlines()[-1]), stdout
    assert "rsa-2048" in stdout
    assert "RenewCertificate end to end, p50" in stdout
