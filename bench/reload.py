"""Benchmark: a worker's client certificate re-issued every few seconds under continuous load,
through keyward's mTLS gateway in front of a local Temporal dev server.

    python bench/reload.py [--quick] [--seconds S] [--every S] [--rate R]

A worker connects through ``MtlsGateway`` (which closes every connection at
``max_connection_age``) with a 60 s client certificate. Every ``--every`` seconds a new
60 s pair is issued and installed atomically (``install_pair``) into the worker's
directory; ``ClientCertificateReloader`` (0.5 s polls) connects a new client and sets it on
the worker. Meanwhile a client with its own long-lived certificate starts ``--rate``
workflows per second through the same gateway and waits for each result.

Swap latency per rotation: from ``install_pair`` returning to the reloader having set the
new client (``reloader.swaps`` polled every 5 ms); the reloader's own ``last_swap_latency``
(the poll that saw the change → new client set) is reported beside it.

Last line: ``RESULT rotations=<n> failed_workflows=<k> swap_p99_ms=<x>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import machine_description  # noqa: E402

# A trivial workflow in a module the workflow sandbox imports cleanly (only temporalio).
from bench.ping_workflow import PingInput, PingWorkflow  # noqa: E402
from keyward.connect.reload import ClientCertificateReloader, ClientTLSFiles, tls_config  # noqa: E402
from keyward.pki.ca import CertificateAuthority  # noqa: E402
from keyward.pki.install import install_pair  # noqa: E402
from keyward.pki.types import CertificateSpec  # noqa: E402
from keyward.pki.validate import summarize  # noqa: E402
from keyward_devstack.mtls_gateway import GatewayConfig, MtlsGateway  # noqa: E402
from keyward_devstack.temporal_dev import temporal_cli_path  # noqa: E402

CERT_LIFETIME = timedelta(seconds=60)
MAX_CONNECTION_AGE = timedelta(seconds=5)
RELOAD_INTERVAL = 0.5
SERVER_SPEC = CertificateSpec(name="gateway", common_name="localhost", dns_names=("localhost",),
                              ip_addresses=("127.0.0.1",), usage="server")


def client_spec(lifetime: timedelta) -> CertificateSpec:
    return CertificateSpec(name="worker", common_name="keyward-worker", usage="client",
                           lifetime=lifetime)


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@dataclass
class Load:
    """Workflows started at a steady rate, each awaited to its result."""

    client: Client
    task_queue: str
    rate: float
    completed_at: list[datetime] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    _running: set[asyncio.Task[None]] = field(default_factory=set)
    started: int = 0

    async def _one(self, sequence: int) -> None:
        try:
            await self.client.execute_workflow(
                PingWorkflow.run, PingInput(sequence), id=f"bench-ping-{uuid.uuid4()}",
                task_queue=self.task_queue, execution_timeout=timedelta(seconds=30))
        except Exception as error:  # noqa: BLE001 - every failure is what the bench counts
            self.failures.append(error)
        else:
            self.completed_at.append(datetime.now(UTC))

    async def run(self, until: float) -> None:
        period = 1 / self.rate
        next_start = time.monotonic()
        while time.monotonic() < until:
            self.started += 1
            task = asyncio.create_task(self._one(self.started))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            next_start += period
            await asyncio.sleep(max(0.0, next_start - time.monotonic()))
        if self._running:
            await asyncio.wait_for(asyncio.gather(*self._running), timeout=45)


@dataclass
class Outcome:
    rotations: int = 0
    swap_ms: list[float] = field(default_factory=list)
    reloader_ms: list[float] = field(default_factory=list)
    missed_swaps: int = 0
    started: int = 0
    completed: int = 0
    failed: int = 0
    failure_kinds: dict[str, int] = field(default_factory=dict)
    completed_after_first_expiry: int = 0
    duration: float = 0.0
    reloader_swaps: int = 0
    reloader_failures: int = 0
    worker_alive: bool = False
    accepted: int = 0
    rejected: int = 0
    closed_for_age: int = 0


async def rotate(ca: CertificateAuthority, worker_dir: Path,
                 reloader: ClientCertificateReloader, outcome: Outcome, *, every: float,
                 until: float) -> None:
    """Every ``every`` seconds (plus a random part of one reloader interval, so installs do
    not keep the same phase against the reloader's polls) install a new pair and time until
    the reloader has set it."""
    jitter = random.Random(0)  # timing jitter, not cryptography
    while time.monotonic() + every + RELOAD_INTERVAL < until:
        await asyncio.sleep(every + jitter.uniform(0, RELOAD_INTERVAL))
        before = reloader.swaps
        issued = await asyncio.to_thread(ca.issue, client_spec(CERT_LIFETIME))
        await asyncio.to_thread(install_pair, worker_dir, issued)
        installed_at = time.monotonic()
        outcome.rotations += 1
        deadline = installed_at + 10
        # Polling is the measurement: the reloader exposes a counter, not an event.
        while reloader.swaps <= before and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        if reloader.swaps > before:
            outcome.swap_ms.append((time.monotonic() - installed_at) * 1000)
            outcome.reloader_ms.append((reloader.last_swap_latency or 0) * 1000)
        else:
            outcome.missed_swaps += 1


def record(outcome: Outcome, load: Load, first_expiry: datetime,
           reloader: ClientCertificateReloader, gateway: MtlsGateway) -> None:
    outcome.started = load.started
    outcome.completed = len(load.completed_at)
    outcome.failed = len(load.failures)
    for error in load.failures:
        kind = type(error).__name__
        outcome.failure_kinds[kind] = outcome.failure_kinds.get(kind, 0) + 1
    outcome.completed_after_first_expiry = sum(
        1 for moment in load.completed_at if moment > first_expiry)
    outcome.reloader_swaps = reloader.swaps
    outcome.reloader_failures = reloader.failures
    outcome.accepted = gateway.stats.accepted
    outcome.rejected = gateway.stats.rejected
    outcome.closed_for_age = gateway.stats.closed_for_age


async def run(seconds: float, every: float, rate: float, base: Path) -> Outcome:
    ca = CertificateAuthority.bootstrap("keyward reload bench CA",
                                        now=datetime.now(UTC) - timedelta(days=1))
    server_dir, worker_dir = base / "server", base / "worker"
    install_pair(server_dir, ca.issue(SERVER_SPEC))
    first = ca.issue(client_spec(CERT_LIFETIME))
    install_pair(worker_dir, first)
    first_expiry = summarize(first.certificate_pem).not_after
    files = ClientTLSFiles(cert=worker_dir / "tls.crt", key=worker_dir / "tls.key",
                           ca=server_dir / "ca.crt", server_name="localhost")
    starter_pair = ca.issue(client_spec(timedelta(hours=1)))
    starter_tls = TLSConfig(server_root_ca_cert=ca.ca_pem, domain="localhost",
                            client_cert=starter_pair.certificate_pem,
                            client_private_key=starter_pair.private_key_pem)
    task_queue = f"bench-reload-{uuid.uuid4()}"
    outcome = Outcome()

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        # The SDK waits 5 s by default; a busy 2-CPU machine can take longer.
        dev_server_startup_timeout=timedelta(seconds=30))
    try:
        host, _, port = env.client.service_client.config.target_host.rpartition(":")
        gateway = MtlsGateway(GatewayConfig(
            listen_host="127.0.0.1", listen_port=0, upstream_host=host, upstream_port=int(port),
            server_cert=server_dir / "tls.crt", server_key=server_dir / "tls.key",
            client_ca=files.ca, max_connection_age=MAX_CONNECTION_AGE))
        await gateway.start()
        try:
            worker_client = await Client.connect(gateway.address, tls=tls_config(files))
            starter = await Client.connect(gateway.address, tls=starter_tls)
            worker = Worker(worker_client, task_queue=task_queue, workflows=[PingWorkflow])
            reloader = ClientCertificateReloader(worker, worker_client, files,
                                                 interval=RELOAD_INTERVAL,
                                                 client_ca_for_validation=files.ca)
            running = asyncio.create_task(worker.run())
            reloader.start()
            load = Load(starter, task_queue, rate)
            began = time.monotonic()
            try:
                until = began + seconds
                await asyncio.gather(load.run(until),
                                     rotate(ca, worker_dir, reloader, outcome, every=every,
                                            until=until))
                outcome.duration = time.monotonic() - began
                outcome.worker_alive = not running.done()
            finally:
                await reloader.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(worker.shutdown(), timeout=15)
                running.cancel()
                with contextlib.suppress(BaseException):
                    await running
        finally:
            await gateway.stop()
    finally:
        await env.shutdown()
    record(outcome, load, first_expiry, reloader, gateway)
    return outcome


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 15 s, for the tests")
    parser.add_argument("--seconds", type=float, default=72.0, help="length of the load")
    parser.add_argument("--every", type=float, default=6.0, help="seconds between re-issues")
    parser.add_argument("--rate", type=float, default=12.0, help="workflows started per second")
    options = parser.parse_args(argv)
    if options.quick:
        options.seconds, options.every, options.rate = 13.0, 3.0, 5.0
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix="keyward-bench-reload-") as tmp:
            outcome = asyncio.run(run(options.seconds, options.every, options.rate, Path(tmp)))
    finally:
        signal.signal(signal.SIGTERM, previous)

    swap_p50 = statistics.median(outcome.swap_ms) if outcome.swap_ms else float("nan")
    swap_p99 = percentile(outcome.swap_ms, 0.99)
    if outcome.missed_swaps:
        swap_p99 = max(swap_p99 if outcome.swap_ms else 0.0, 10_000.0)  # at least the wait
    reloader_p50 = statistics.median(outcome.reloader_ms) if outcome.reloader_ms else float("nan")
    reloader_p99 = percentile(outcome.reloader_ms, 0.99)
    rate = outcome.completed / outcome.duration if outcome.duration else 0.0
    kinds = ", ".join(f"{k}: {v}" for k, v in sorted(outcome.failure_kinds.items())) or "none"
    print(f"machine: {machine_description()}")
    print(f"settings: {options.seconds:g} s of load at {options.rate:g} workflows/s started, "
          f"{CERT_LIFETIME.total_seconds():g} s certificates re-issued every {options.every:g} s, "
          f"gateway max_connection_age {MAX_CONNECTION_AGE.total_seconds():g} s, "
          f"reloader interval {RELOAD_INTERVAL:g} s\n")
    print("| measurement | value |")
    print("|---|---:|")
    print(f"| rotations (pairs installed) | {outcome.rotations} |")
    print(f"| swaps seen by the bench / missed (> 10 s) | {len(outcome.swap_ms)} / "
          f"{outcome.missed_swaps} |")
    print(f"| reloader swaps / reloader failures | {outcome.reloader_swaps} / "
          f"{outcome.reloader_failures} |")
    print(f"| workflows started | {outcome.started} |")
    print(f"| workflows completed | {outcome.completed} ({rate:.1f} /s over "
          f"{outcome.duration:.1f} s) |")
    print(f"| workflows failed | {outcome.failed} ({kinds}) |")
    print(f"| completed after the first certificate expired | "
          f"{outcome.completed_after_first_expiry} |")
    print(f"| swap latency, install → new client set, p50 | {swap_p50:.1f} ms |")
    print(f"| swap latency, install → new client set, p99 | {swap_p99:.1f} ms |")
    print(f"| reloader last_swap_latency (detected → set), p50 | {reloader_p50:.1f} ms |")
    print(f"| reloader last_swap_latency (detected → set), p99 | {reloader_p99:.1f} ms |")
    print(f"| worker still running at the end | {'yes' if outcome.worker_alive else 'no'} |")
    print(f"| gateway connections accepted / rejected / closed for age | {outcome.accepted} / "
          f"{outcome.rejected} / {outcome.closed_for_age} |")
    print(f"swap latencies ms: {[round(x) for x in outcome.swap_ms]}")
    print(f"RESULT rotations={outcome.rotations} failed_workflows={outcome.failed} "
          f"swap_p99_ms={swap_p99:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
