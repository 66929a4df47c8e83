"""The worker keeps working across client-certificate rotations only because of the reloader."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.ping_workflow import PingInput, PingWorkflow
from keyward.connect.reload import ClientCertificateReloader, tls_config
from keyward.pki.validate import summarize
from tests.reload.conftest import Load, ReloadPki, ping, running_gateway
from tests.support import assert_eventually


async def test_worker_survives_rotations_under_load_with_the_reloader(
        reload_pki: ReloadPki, temporal_env: WorkflowEnvironment, task_queue: str,
        tmp_path: Path) -> None:
    """With 20 s certificates renewed every 8 s and connections closed every 3 s, workflows
    started continuously for 30 s all complete, including after the first certificate
    expired, on one worker that is never restarted."""
    worker_dir = tmp_path / "worker-cert"
    first = reload_pki.install_client(worker_dir, timedelta(seconds=20))
    first_expiry = summarize(first.certificate_pem).not_after
    files = reload_pki.files(worker_dir)
    async with running_gateway(reload_pki, temporal_env, timedelta(seconds=3)) as gateway:
        worker_client = await Client.connect(gateway.address, tls=tls_config(files))
        starter = await Client.connect(gateway.address, tls=reload_pki.long_lived_tls())
        worker = Worker(worker_client, task_queue=task_queue, workflows=[PingWorkflow])
        reloader = ClientCertificateReloader(worker, worker_client, files, interval=0.5,
                                             client_ca_for_validation=reload_pki.ca_file)
        running = asyncio.create_task(worker.run())
        reloader.start()
        load = Load(starter, task_queue)
        latencies: list[float] = []

        async def rotate(until: float) -> None:
            while time.monotonic() + 8 < until:
                await asyncio.sleep(8)
                swaps_before = reloader.swaps
                installed_at = time.monotonic()
                await asyncio.to_thread(reload_pki.install_client, worker_dir,
                                        timedelta(seconds=20))

                async def swapped(before: int = swaps_before) -> None:
                    assert reloader.swaps > before
                await assert_eventually(swapped, within=5, interval=0.02)
                latencies.append(time.monotonic() - installed_at)

        try:
            until = time.monotonic() + 30
            await asyncio.gather(load.run(until), rotate(until))
            assert not running.done(), "the worker stopped (a restart would be needed)"
        finally:
            await reloader.stop()
            await worker.shutdown()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    after_expiry = [moment for moment in load.completed_at
                    if moment > first_expiry + timedelta(seconds=3)]
    print(f"\nrotation: swaps={reloader.swaps} started={load.started} "
          f"completed={len(load.completed_at)} failed={len(load.failures)} "
          f"completed_after_first_expiry={len(after_expiry)} "
          f"install_to_swap_ms={[round(x * 1000) for x in latencies]} "
          f"last_swap_latency_ms={round((reloader.last_swap_latency or 0) * 1000)} "
          f"gateway_accepted={gateway.stats.accepted} rejected={gateway.stats.rejected} "
          f"closed_for_age={gateway.stats.closed_for_age}")
    assert reloader.swaps >= 3
    assert reloader.failures == 0
    assert load.failures == []
    assert len(load.completed_at) >= 100
    assert after_expiry, "no workflow completed after the first certificate expired"
    assert reloader.current_not_after is not None
    assert reloader.current_not_after > first_expiry


async def test_without_the_reloader_the_worker_stops_working_when_its_certificate_expires(
        reload_pki: ReloadPki, temporal_env: WorkflowEnvironment, task_queue: str,
        tmp_path: Path) -> None:
    """Control: the same rotation without a reloader leaves the worker on its first 8 s
    certificate, and a workflow started once that expired is not run."""
    worker_dir = tmp_path / "worker-cert"
    first = reload_pki.install_client(worker_dir, timedelta(seconds=8))
    first_expiry = summarize(first.certificate_pem).not_after
    async with running_gateway(reload_pki, temporal_env, timedelta(seconds=2)) as gateway:
        worker_client = await Client.connect(gateway.address,
                                             tls=tls_config(reload_pki.files(worker_dir)))
        starter = await Client.connect(gateway.address, tls=reload_pki.long_lived_tls())
        worker = Worker(worker_client, task_queue=task_queue, workflows=[PingWorkflow])
        running = asyncio.create_task(worker.run())
        try:
            await ping(starter, task_queue, 0)  # the setup works while the certificate is valid
            reload_pki.install_client(worker_dir, timedelta(minutes=5))  # renewed, not reloaded
            # Past the expiry plus one max age: every connection of the worker is gone.
            wait = (first_expiry - datetime.now(UTC)).total_seconds() + 2.5
            await asyncio.sleep(max(wait, 0))
            handle = await starter.start_workflow(
                PingWorkflow.run, PingInput(1), id=f"ping-{uuid.uuid4()}",
                task_queue=task_queue, execution_timeout=timedelta(seconds=30))
            done, _ = await asyncio.wait({asyncio.create_task(handle.result())}, timeout=6)
            assert not done, "a workflow ran on a worker whose certificate had expired"
            assert gateway.stats.rejected >= 1
            await handle.terminate(reason="control test over")
        finally:
            await _shutdown(worker, running)


async def _shutdown(worker: Worker, running: asyncio.Task[None]) -> None:
    """Shut down a worker whose connection may be broken, without hanging the suite."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(worker.shutdown(), timeout=10)
    running.cancel()
    with contextlib.suppress(BaseException):
        await running

