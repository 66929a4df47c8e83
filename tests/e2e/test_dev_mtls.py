"""`python worker.py --dev` runs the worker through the mTLS gateway on a short-lived certificate.

The whole life cycle with nothing stood in: the stack's local CA issues a 60 s
client certificate, the ``RenewCertificate`` schedule renews it with 20 s left (at
2/3 of its life), the reload hook hands the running worker a new client, and
workflows started all along keep completing past the first certificate's expiry,
with the same worker process throughout.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from keyward.pki.install import read_installed
from keyward.pki.validate import summarize
from keyward_devstack.processes import free_port
from tests.e2e.devstack import DevWorker

LIFETIME_MINUTES = 1.0
#: Seconds between workflow starts: enough to have work in flight at every swap.
START_EVERY = 0.5


@pytest.fixture
def mtls_worker(tmp_path: Path) -> Iterator[DevWorker]:
    worker = DevWorker.on_free_ports(
        tmp_path,
        KEYWARD_DEVSTACK__CLIENT_CERTIFICATE_MINUTES=str(LIFETIME_MINUTES),
        # Connections are cut every 10 s, so every new handshake re-checks the certificate.
        KEYWARD_DEVSTACK__GATEWAY_MAX_CONNECTION_AGE_SECONDS="10",
        KEYWARD_METRICS__PORT=str(free_port()))
    yield worker
    worker.shut_down()


def reloaded_serials(log: str) -> list[str]:
    serials = []
    for line in log.splitlines():
        if '"client certificate reloaded"' in line:
            serials.append(json.loads(line)["serial"])
    return serials


def gateway_serials(log: str) -> set[str]:
    return {json.loads(line)["serial"] for line in log.splitlines()
            if '"client handshake accepted"' in line}


async def final_status(handle: WorkflowHandle[object, object]) -> WorkflowExecutionStatus:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = (await handle.describe()).status
        if status not in (None, WorkflowExecutionStatus.RUNNING):
            return status
        await asyncio.sleep(0.2)
    return WorkflowExecutionStatus.RUNNING


@pytest.mark.timeout(300)
async def test_worker_certificate_is_renewed_by_schedule_and_reloaded_under_load(
        mtls_worker: DevWorker) -> None:
    mtls_worker.start()
    await asyncio.to_thread(mtls_worker.wait_ready)
    assert mtls_worker.proc is not None
    pid = mtls_worker.proc.pid
    stdout = mtls_worker.stdout.read_text()
    assert f"gateway 127.0.0.1:{mtls_worker.gateway_port}" in stdout  # it says how it connects
    pki = mtls_worker.state_dir / "pki"
    first = read_installed(pki / "client")
    assert first is not None
    first_summary = summarize(first.certificate_pem)
    assert 50 < (first_summary.not_after - datetime.now(UTC)).total_seconds() <= 60

    # The test drives workflows over the dev server's plain port, like the CLI does; only
    # the worker goes through the gateway.
    client = await Client.connect(f"127.0.0.1:{mtls_worker.temporal_port}")
    handles: list[WorkflowHandle[object, object]] = []
    # Past the first certificate's expiry by a margin, and at least two swaps seen.
    until = first_summary.not_after.timestamp() + 10
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        handles.append(await client.start_workflow(
            "InspectTransitKey", {"key": "default"}, id=f"mtls-load-{len(handles)}",
            task_queue="keyward"))
        if time.time() > until and len(reloaded_serials(mtls_worker.stderr.read_text())) >= 2:
            break
        await asyncio.sleep(START_EVERY)
    log = mtls_worker.stderr.read_text()
    swapped = reloaded_serials(log)
    assert len(swapped) >= 2, f"expected two reloads within 150 s:\n{log[-4000:]}"
    assert time.time() > until

    statuses = await asyncio.gather(*(final_status(handle) for handle in handles))
    failed = [handle.id for handle, status in zip(handles, statuses, strict=True)
              if status != WorkflowExecutionStatus.COMPLETED]
    assert not failed, f"{len(failed)} of {len(handles)} workflows did not complete: {failed}"
    assert len(handles) >= 100

    # Same process throughout: reloaded, not restarted.
    assert mtls_worker.proc.poll() is None
    assert mtls_worker.proc.pid == pid
    assert log.count('"worker started"') == 1

    # Renewals came from the schedule's RenewCertificate runs, installed by the activity.
    assert len(re.findall(r"installed certificate keyward-worker serial", log)) >= 2
    renewals = [execution async for execution in client.list_workflows(
        'WorkflowType = "RenewCertificate" AND ExecutionStatus = "Completed"')]
    assert len(renewals) >= 2
    # The gateway saw the worker on each certificate it reloaded.
    assert set(swapped) <= gateway_serials(log) | {first_summary.serial}
    assert first_summary.serial in gateway_serials(log)

    # The expiry gauge shows the certificate in use now: the last one reloaded.
    last = [json.loads(line) for line in mtls_worker.stderr.read_text().splitlines()
            if '"client certificate reloaded"' in line][-1]
    port = mtls_worker.extra_env["KEYWARD_METRICS__PORT"]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
            metrics = await response.text()
        async with http.get(f"http://127.0.0.1:{port}/health") as response:
            assert response.status == 200
            assert await response.json() == {"status": "ok"}
    expiry = re.search(r"^keyward_temporal_client_certificate_expiry_timestamp_seconds (\S+)$",
                       metrics, re.MULTILINE)
    assert expiry is not None, metrics
    in_use = datetime.fromtimestamp(float(expiry.group(1)), UTC)
    assert in_use == datetime.fromisoformat(last["not_after"])
    assert in_use > first_summary.not_after
    reloads = re.search(r'^keyward_temporal_client_certificate_reloads_total\{result="swapped"\} '
                        r"(\S+)$", metrics, re.MULTILINE)
    assert reloads is not None
    assert float(reloads.group(1)) == len(reloaded_serials(mtls_worker.stderr.read_text()))


def test_restart_reuses_the_pki_and_mtls_off_removes_the_stacks_schedule(
        tmp_path: Path) -> None:
    worker = DevWorker.on_free_ports(tmp_path)
    try:
        worker.start()
        worker.wait_ready()
        assert "created a local CA" in worker.stdout.read_text()
        ca = (worker.state_dir / "pki" / "ca.crt").read_bytes()
        # Summaries are encrypted too: the CLI reads them through the stack's codec server.
        codec = ("--codec-endpoint", f"http://127.0.0.1:{worker.codec_port}")
        described = worker.temporal("schedule", "describe", "--schedule-id",
                                    "keyward/renew/keyward-worker", *codec)
        assert described.returncode == 0, described.stderr
        assert worker.stop() == 0

        worker.start()  # same state: the CA and a still-valid client pair are reused
        worker.wait_ready()
        assert "created a local CA" not in worker.stdout.read_text()
        assert "fresh worker client certificate" not in worker.stdout.read_text()
        assert (worker.state_dir / "pki" / "ca.crt").read_bytes() == ca
        assert worker.stop() == 0

        worker.extra_env["KEYWARD_DEVSTACK__MTLS"] = "false"
        worker.start()
        worker.wait_ready()
        assert "gateway" not in worker.stdout.read_text()
        assert "removed the worker certificate schedule" in worker.stderr.read_text()
        gone = worker.temporal("schedule", "describe", "--schedule-id",
                               "keyward/renew/keyward-worker", *codec)
        assert gone.returncode != 0
        assert "not found" in gone.stderr.lower()
        started = next(json.loads(line) for line in worker.stderr.read_text().splitlines()
                       if '"worker started"' in line)
        assert started["temporal"] == f"127.0.0.1:{worker.temporal_port}"  # plain, no gateway
    finally:
        worker.shut_down()
