"""The worker follows the CA it trusts the server with (``temporal.tls_server_ca``) without
restarting: a new bundle is checked, connected with, and only then handed to the worker."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.ping_workflow import PingOutput, PingWorkflow
from keyward.connect.reload import ClientCertificateReloader, ClientTLSFiles, tls_config
from keyward.pki.install import atomic_write, install_pair
from keyward.pki.validate import summarize
from keyward_devstack.mtls_gateway import MtlsGateway
from tests.reload.conftest import (
    Load,
    ServerCaRotation,
    client_spec,
    gateway_for,
    ping,
)
from tests.support import assert_eventually

#: Short, so that every connection of the worker is re-made (and re-verified) often.
MAX_CONNECTION_AGE = timedelta(seconds=1.5)


@dataclass
class Running:
    gateway: MtlsGateway
    worker: Worker
    client: Client
    reloader: ClientCertificateReloader
    #: Trusts both CAs throughout: the load generator is not what is being tested.
    starter: Client


@asynccontextmanager
async def running_worker(rotation: ServerCaRotation, env: WorkflowEnvironment,
                         task_queue: str, worker_dir: Path, *,
                         files: ClientTLSFiles | None = None,
                         poll: bool = False) -> AsyncIterator[Running]:
    """A worker behind the gateway, connected with the worker's files, with a reloader that
    polls every 0.2 s when ``poll`` (else the test calls ``check_now``)."""
    files = files or rotation.files(worker_dir)
    async with gateway_for(rotation.server_dir, rotation.client_ca, env, MAX_CONNECTION_AGE,
                           reload_interval=0.2) as gateway:
        client = await Client.connect(gateway.address, tls=tls_config(files))
        starter = await Client.connect(gateway.address,
                                       tls=rotation.tls_trusting(rotation.old, rotation.new))
        worker = Worker(client, task_queue=task_queue, workflows=[PingWorkflow])
        reloader = ClientCertificateReloader(worker, client, files, interval=0.2,
                                             client_ca_for_validation=rotation.client_ca)
        running = asyncio.create_task(worker.run())
        if poll:
            reloader.start()
        try:
            yield Running(gateway, worker, client, reloader, starter)
            assert not running.done(), "the worker stopped (a restart would be needed)"
        finally:
            await reloader.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.shutdown(), timeout=10)
            running.cancel()
            with contextlib.suppress(BaseException):
                await running


async def server_ca_swaps_reach(reloader: ClientCertificateReloader, count: int) -> None:
    async def reached() -> None:
        assert reloader.server_ca_swaps >= count
    await assert_eventually(reached, within=5, interval=0.02)


async def cannot_connect(address: str, rotation: ServerCaRotation) -> None:
    """A client trusting only the old CA is refused: the server has really moved on."""
    with pytest.raises(RuntimeError, match="UnknownIssuer"):
        await Client.connect(address, tls=rotation.tls_trusting(rotation.old))


async def test_server_ca_rotation_under_load_with_zero_failed_workflows(
        server_ca_rotation: ServerCaRotation, temporal_env: WorkflowEnvironment,
        task_queue: str, tmp_path: Path) -> None:
    """Workflows started at 5/s while the server CA rotates: old+new bundle published,
    the server moves to a new-CA certificate, the old CA leaves the bundle. Every
    connection is re-made every 1.5 s, so the worker verifies the server with each bundle
    in turn; none of the workflows fails, and it ends trusting the new CA alone."""
    rotation = server_ca_rotation
    worker_dir = tmp_path / "worker-cert"
    rotation.install_client(worker_dir)
    async with running_worker(rotation, temporal_env, task_queue, worker_dir,
                              poll=True) as run:
        reloader, load = run.reloader, Load(run.starter, task_queue)
        steps: dict[str, float] = {}

        async def rotate(started: float) -> None:
            await asyncio.sleep(1)
            await asyncio.to_thread(rotation.publish_server_ca, rotation.old, rotation.new)
            await server_ca_swaps_reach(reloader, 1)
            steps["bundle old+new"] = time.monotonic() - started
            await asyncio.to_thread(rotation.serve_from, rotation.new)
            await run.gateway.reload_now()
            steps["server on new CA"] = time.monotonic() - started
            # Past one max age: every connection of the worker was made against the new
            # server certificate, verified with the old+new bundle.
            await asyncio.sleep(MAX_CONNECTION_AGE.total_seconds() + 0.5)
            await asyncio.to_thread(rotation.publish_server_ca, rotation.new)
            await server_ca_swaps_reach(reloader, 2)
            steps["bundle new only"] = time.monotonic() - started

        started = time.monotonic()
        until = started + 7
        await asyncio.gather(load.run(until), rotate(started))
        rejected_before_probe = run.gateway.stats.rejected
        await cannot_connect(run.gateway.address, rotation)
        # And the worker still works on new connections, trusting the new CA alone.
        await asyncio.sleep(MAX_CONNECTION_AGE.total_seconds() + 0.5)
        assert await ping(run.starter, task_queue, 10_000) == PingOutput(10_000)

    print(f"\nserver CA rotation: started={load.started} completed={len(load.completed_at)} "
          f"failed={len(load.failures)} swaps={reloader.swaps} "
          f"server_ca_swaps={reloader.server_ca_swaps} reloader_failures={reloader.failures} "
          f"steps_s={ {k: round(v, 2) for k, v in steps.items()} } "
          f"max_workflow_s={round(max(load.durations), 2)} "
          f"gateway_accepted={run.gateway.stats.accepted} "
          f"rejected_before_probe={rejected_before_probe} "
          f"closed_for_age={run.gateway.stats.closed_for_age}")
    assert load.failures == []
    assert len(load.completed_at) >= 25
    assert (reloader.swaps, reloader.server_ca_swaps, reloader.failures) == (2, 2, 0)
    assert reloader.server_ca_subjects == ("CN=keyward reload test CA (new)",)
    assert run.worker.client is reloader.client
    assert rejected_before_probe == 0
    assert run.gateway.stats.closed_for_age > 0


async def test_broken_server_ca_bundles_are_refused_once_and_the_worker_keeps_serving(
        server_ca_rotation: ServerCaRotation, temporal_env: WorkflowEnvironment,
        task_queue: str, tmp_path: Path) -> None:
    """A bundle cut short mid-write (which would read as the old CA alone), one holding a
    leaf certificate, and garbage are each refused with one error line naming the
    problem; the worker keeps its client and keeps running workflows; the finished
    bundle is then taken."""
    rotation = server_ca_rotation
    worker_dir = tmp_path / "worker-cert"
    rotation.install_client(worker_dir)
    full = rotation.old.ca_pem + rotation.new.ca_pem
    broken = {
        "the last CERTIFICATE block has no END line": full[:len(rotation.old.ca_pem) + 300],
        "is not a CA certificate":
            rotation.old.ca_pem + rotation.old.issue(client_spec(timedelta(hours=1)))
            .certificate_pem,
        "no PEM certificate": b"not a bundle\n",
    }
    async with running_worker(rotation, temporal_env, task_queue, worker_dir) as run:
        reloader = run.reloader
        for count, (problem, content) in enumerate(broken.items(), start=1):
            rotation.server_ca.write_bytes(content)  # in place: a writer caught halfway
            with capture_logs() as logs:
                assert await reloader.check_now() is False
                assert await reloader.check_now() is False  # reported once, not per poll
            [entry] = [e for e in logs if e["log_level"] == "error"]
            assert entry["event"] == "server CA bundle refused; keeping the current client"
            assert any(problem in p for p in entry["problems"]), entry["problems"]
            assert entry["ca"] == str(rotation.server_ca)
            assert (reloader.failures, reloader.swaps) == (count, 0)
            assert run.worker.client is run.client
            assert await ping(run.starter, task_queue, count) == PingOutput(count)

        rotation.server_ca.write_bytes(full)  # the writer finishes
        assert await reloader.check_now() is True
        assert reloader.server_ca_swaps == 1
        assert run.worker.client is reloader.client is not run.client
        assert await ping(run.starter, task_queue, 99) == PingOutput(99)


async def test_a_bundle_that_does_not_verify_the_server_is_not_handed_to_the_worker(
        server_ca_rotation: ServerCaRotation, temporal_env: WorkflowEnvironment,
        task_queue: str, tmp_path: Path) -> None:
    """The new CA alone, published while the server still serves from the old one, is a
    well-formed bundle: the new client cannot connect with it, so the worker keeps its
    client (one error line, retried every poll), and takes the bundle once the server
    has moved to the new CA."""
    rotation = server_ca_rotation
    worker_dir = tmp_path / "worker-cert"
    rotation.install_client(worker_dir)
    async with running_worker(rotation, temporal_env, task_queue, worker_dir) as run:
        reloader = run.reloader
        rotation.publish_server_ca(rotation.new)
        with capture_logs() as logs:
            assert await reloader.check_now() is False
            assert await reloader.check_now() is False  # retried, not reported again
        [entry] = [e for e in logs if e["log_level"] == "error"]
        assert entry["event"] == ("cannot connect with the new server CA bundle; keeping "
                                  "the current client and retrying")
        assert "UnknownIssuer" in entry["error"]
        assert reloader.failures == 2
        assert run.worker.client is run.client
        assert await ping(run.starter, task_queue, 1) == PingOutput(1)

        rotation.serve_from(rotation.new)
        await run.gateway.reload_now()
        assert await reloader.check_now() is True
        assert reloader.server_ca_subjects == ("CN=keyward reload test CA (new)",)
        await asyncio.sleep(MAX_CONNECTION_AGE.total_seconds() + 0.5)
        assert await ping(run.starter, task_queue, 2) == PingOutput(2)


async def test_a_refused_pair_is_looked_at_again_when_the_client_ca_gains_its_ca(
        server_ca_rotation: ServerCaRotation, temporal_env: WorkflowEnvironment,
        task_queue: str, tmp_path: Path) -> None:
    """A leaf from the new CA installed before ``tls_client_ca`` trusts that CA is
    refused; the same files are taken once the bundle (here the gateway's own client-CA
    file) holds old + new. A later change of that bundle alone connects nothing."""
    rotation = server_ca_rotation
    worker_dir = tmp_path / "worker-cert"
    rotation.install_client(worker_dir)
    async with running_worker(rotation, temporal_env, task_queue, worker_dir) as run:
        reloader = run.reloader
        install_pair(worker_dir, rotation.new.issue(client_spec(timedelta(hours=1))))
        assert await reloader.check_now() is False
        assert (reloader.failures, reloader.swaps) == (1, 0)

        atomic_write(rotation.client_ca, rotation.old.ca_pem + rotation.new.ca_pem,
                     mode=0o644)
        await run.gateway.reload_now()
        assert await reloader.check_now() is True
        assert (reloader.swaps, reloader.server_ca_swaps) == (1, 0)
        assert await ping(run.starter, task_queue, 1) == PingOutput(1)

        atomic_write(rotation.client_ca, rotation.new.ca_pem + rotation.old.ca_pem,
                     mode=0o644)
        assert await reloader.check_now() is False
        assert (reloader.swaps, reloader.failures) == (1, 1)


async def test_a_bundle_beside_the_pair_is_read_from_the_same_generation(
        server_ca_rotation: ServerCaRotation, temporal_env: WorkflowEnvironment,
        task_queue: str, tmp_path: Path) -> None:
    """With ``tls_server_ca`` the ``ca.crt`` of the pair's own directory (a Secret's), one
    install that brings a new pair and a new bundle is one swap onto both."""
    rotation = server_ca_rotation
    worker_dir = tmp_path / "worker-cert"
    issued = rotation.old.issue(client_spec(timedelta(hours=1)))
    install_pair(worker_dir, issued)  # ca.crt: the old CA alone
    files = ClientTLSFiles(cert=worker_dir / "tls.crt", key=worker_dir / "tls.key",
                           ca=worker_dir / "ca.crt", server_name="localhost")
    async with running_worker(rotation, temporal_env, task_queue, worker_dir,
                              files=files) as run:
        reloader = run.reloader
        renewed = rotation.old.issue(client_spec(timedelta(hours=1)))
        bundle = rotation.old.ca_pem + rotation.new.ca_pem
        install_pair(worker_dir, dataclasses.replace(renewed, ca_pem=bundle))
        assert await reloader.check_now() is True
        assert (reloader.swaps, reloader.server_ca_swaps) == (1, 1)
        assert reloader.server_ca_subjects == ("CN=keyward reload test CA (old)",
                                               "CN=keyward reload test CA (new)")
        rotation.serve_from(rotation.new)
        await run.gateway.reload_now()
        await asyncio.sleep(MAX_CONNECTION_AGE.total_seconds() + 0.5)
        assert await ping(run.starter, task_queue, 1) == PingOutput(1)
        assert reloader.current_not_after == summarize(renewed.certificate_pem).not_after
