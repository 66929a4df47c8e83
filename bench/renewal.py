"""Benchmark: certificate issue + validate + install with the local CA, and RenewCertificate
end to end on a local Temporal dev server.

    python bench/renewal.py [--quick] [--seconds S] [--runs N]

(1) cycles/s of issue → validate_pair → install_pair for EC P-256 and RSA 2048 leaf keys,
    the loop a renewal runs, in one process on files in a temp dir;
(2) wall time of forced RenewCertificate workflows (inspect, issue+validate+install, verify)
    from start to result, through a real Temporal dev server and worker.

Last line: ``RESULT local_ca_issue_per_s=<EC P-256 cycles/s> renew_workflow_p50_ms=<p50>``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.certificates import CertificateActivities  # noqa: E402
from bench._support import machine_description  # noqa: E402
from keyward.config import CertificateSettings, Settings, TemporalSettings  # noqa: E402
from keyward.contracts.certificates import RenewCertificateInput  # noqa: E402
from keyward.issuers.factory import build_issuer  # noqa: E402
from keyward.pki.ca import CertificateAuthority  # noqa: E402
from keyward.pki.install import install_pair  # noqa: E402
from keyward.pki.types import KeyType  # noqa: E402
from keyward.pki.validate import validate_pair  # noqa: E402
from keyward.services.certificates import spec_for  # noqa: E402
from keyward_devstack.temporal_dev import temporal_cli_path  # noqa: E402
from workflows.renew_certificate import RenewCertificate  # noqa: E402


def cycles_per_second(ca: CertificateAuthority, key_type: KeyType, directory: Path,
                      seconds: float) -> tuple[float, int]:
    cert = CertificateSettings(common_name="keyward-worker", dns_names=("keyward-worker",),
                               key_type=key_type, directory=directory, ca_cert=Path("unused"),
                               ca_key=Path("unused"), lifetime_hours=24)
    spec = spec_for("bench", cert)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or count == 0:
        issued = ca.issue(spec)
        validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                      now=datetime.now(UTC), spec=spec)
        install_pair(directory, issued)
        count += 1
    return count / (time.perf_counter() - started), count


async def workflow_times(ca_files: tuple[Path, Path], directory: Path,
                         runs: int) -> list[float]:
    cert = CertificateSettings(common_name="keyward-worker", dns_names=("keyward-worker",),
                               ca_cert=ca_files[0], ca_key=ca_files[1], directory=directory,
                               lifetime_hours=24)
    task_queue = f"bench-{uuid.uuid4()}"
    settings = dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                                   certificates={"worker": cert})
    activities = CertificateActivities(settings, build_issuer)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        # The SDK waits 5 s by default; a busy 2-CPU machine can take longer.
        dev_server_startup_timeout=timedelta(seconds=30))
    times: list[float] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            async with Worker(env.client, task_queue=task_queue, workflows=[RenewCertificate],
                              activities=[activities.inspect, activities.issue_and_install,
                                          activities.verify],
                              activity_executor=pool, max_concurrent_activities=4):
                for index in range(runs + 1):
                    started = time.perf_counter()
                    result = await env.client.execute_workflow(
                        RenewCertificate.run, RenewCertificateInput("worker", force=True),
                        id=f"bench-renew-{uuid.uuid4()}", task_queue=task_queue)
                    if not result.renewed:
                        raise RuntimeError(f"run {index} did not renew: {result.reason}")
                    if index:  # the first run warms the worker's caches
                        times.append((time.perf_counter() - started) * 1000)
    finally:
        await env.shutdown()
    return times


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for the tests")
    parser.add_argument("--seconds", type=float, default=5.0, help="per key type")
    parser.add_argument("--runs", type=int, default=30, help="workflow runs")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds, options.runs = 0.5, 3
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        ca = CertificateAuthority.bootstrap("bench CA", lifetime=timedelta(days=30))
        ca.save(base / "ca.crt", base / "ca.key")
        rates = {key_type: cycles_per_second(ca, key_type, base / key_type, options.seconds)
                 for key_type in ("ec-p256", "rsa-2048")}
        times = asyncio.run(workflow_times((base / "ca.crt", base / "ca.key"), base / "wf",
                                           options.runs))
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    print(f"machine: {machine_description()}\n")
    print("| measurement | value |")
    print("|---|---:|")
    for key_type, (rate, count) in rates.items():
        print(f"| local CA issue + validate + install, {key_type} | {rate:,.1f} /s "
              f"({count} cycles) |")
    print(f"| RenewCertificate end to end, p50 | {p50:.1f} ms |")
    print(f"| RenewCertificate end to end, p90 | {p90:.1f} ms |")
    print(f"| RenewCertificate end to end, max | {ordered[-1]:.1f} ms ({len(times)} runs) |")
    print(f"RESULT local_ca_issue_per_s={rates['ec-p256'][0]:.1f} renew_workflow_p50_ms={p50:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
