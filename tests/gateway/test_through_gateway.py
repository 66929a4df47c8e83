"""Temporal clients and workers work through the gateway, including across max-age closes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.ping_workflow import PingInput, PingOutput, PingWorkflow
from keyward_devstack.mtls_gateway import MtlsGateway
from tests.gateway.conftest import GatewayPki, gateway_config


async def _ping(client: Client, task_queue: str, sequence: int) -> PingOutput:
    return await client.execute_workflow(
        PingWorkflow.run, PingInput(sequence), id=f"ping-{uuid.uuid4()}", task_queue=task_queue,
        execution_timeout=timedelta(seconds=20))


async def test_workflow_runs_end_to_end_through_the_gateway(
        gateway: MtlsGateway, gateway_pki: GatewayPki, task_queue: str) -> None:
    """A client and a worker with a certificate from the local CA run a workflow via mTLS."""
    client = await Client.connect(gateway.address, tls=gateway_pki.tls(gateway_pki.good_client))
    async with Worker(client, task_queue=task_queue, workflows=[PingWorkflow]):
        result = await _ping(client, task_queue, 42)
    assert result == PingOutput(42)
    assert gateway.stats.accepted >= 1
    assert gateway.stats.rejected == 0


async def test_connections_are_closed_at_max_age_and_clients_reconnect(
        gateway_pki: GatewayPki, temporal_env: WorkflowEnvironment, task_queue: str) -> None:
    """After a 2 s max age the gateway closes the connection; the client re-handshakes and
    a workflow started after 5 s still succeeds."""
    gateway = MtlsGateway(gateway_config(gateway_pki, temporal_env,
                                         max_connection_age=timedelta(seconds=2)))
    await gateway.start()
    try:
        client = await Client.connect(gateway.address,
                                      tls=gateway_pki.tls(gateway_pki.good_client))
        async with Worker(client, task_queue=task_queue, workflows=[PingWorkflow]):
            assert await _ping(client, task_queue, 1) == PingOutput(1)
            handshakes_before = gateway.stats.accepted
            await asyncio.sleep(5)
            assert await _ping(client, task_queue, 2) == PingOutput(2)
        assert gateway.stats.closed_for_age >= 1
        assert gateway.stats.accepted > handshakes_before
        assert gateway.stats.rejected == 0
    finally:
        await gateway.stop()
