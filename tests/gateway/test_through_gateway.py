"""Temporal clients and workers work through the gateway, including across max-age closes."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from keyward.devstack.mtls_gateway import MtlsGateway
from tests.gateway.conftest import GatewayPki, gateway_config
from tests.gateway.echo_workflow import EchoInput, EchoOutput, EchoWorkflow


async def _echo(client: Client, task_queue: str, text: str) -> EchoOutput:
    return await client.execute_workflow(
        EchoWorkflow.run, EchoInput(text), id=f"echo-{uuid.uuid4()}", task_queue=task_queue,
        execution_timeout=timedelta(seconds=20))


async def test_workflow_runs_end_to_end_through_the_gateway(
        gateway: MtlsGateway, gateway_pki: GatewayPki, task_queue: str) -> None:
    """A client and a worker with a certificate from the local CA run a workflow via mTLS."""
    client = await Client.connect(gateway.address, tls=gateway_pki.tls(gateway_pki.good_client))
    async with Worker(client, task_queue=task_queue, workflows=[EchoWorkflow]):
        result = await _echo(client, task_queue, "hello through mTLS")
    assert result == EchoOutput("hello through mTLS")
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
        async with Worker(client, task_queue=task_queue, workflows=[EchoWorkflow]):
            assert await _echo(client, task_queue, "before") == EchoOutput("before")
            handshakes_before = gateway.stats.accepted
            await asyncio.sleep(5)
            assert await _echo(client, task_queue, "after") == EchoOutput("after")
        assert gateway.stats.closed_for_age >= 1
        assert gateway.stats.accepted > handshakes_before
        assert gateway.stats.rejected == 0
    finally:
        await gateway.stop()
