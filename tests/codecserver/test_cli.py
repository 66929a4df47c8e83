"""The real ``temporal`` CLI decodes history through the codec server, with a bearer token."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import json
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from prometheus_client import generate_latest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.codec.converter import build_data_converter
from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.app import CODEC_SERVER
from keyward.codecserver.runner import RunningCodecServer, start_codec_server
from keyward.config import TemporalSettings
from keyward.contracts.transit import ReadKeyInput
from keyward.vault.client import connect_vault
from keyward_devstack.processes import free_port
from keyward_devstack.temporal_dev import temporal_cli_path
from tests.codecserver.conftest import JwksServer, SigningKey, codec_settings, jwt_settings
from tests.conftest import VaultEndpoint
from tests.e2e.test_dev_stack import payloads_in
from workflows.inspect_key import InspectTransitKey

pytestmark = pytest.mark.temporal


@dataclass(frozen=True)
class FinishedWorkflow:
    workflow_id: str
    namespace: str
    #: A text that appears in the workflow's input and result, and nowhere in plaintext history.
    marker: str


@pytest.fixture
async def finished_workflow(temporal_client: Client, vault: VaultEndpoint, codec_key: str,
                            task_queue: str) -> FinishedWorkflow:
    """InspectTransitKey run to completion by a worker that encrypts like production."""
    settings = dataclasses.replace(codec_settings(vault, codec_key),
                                   temporal=TemporalSettings(task_queue=task_queue))
    token = vault.token.reveal()
    bundle = build_data_converter(settings, lambda: token, namespace=temporal_client.namespace)
    config = temporal_client.config()
    config["data_converter"] = bundle.converter
    client = Client(**config)
    workflow_id = f"cli-decode-{uuid.uuid4()}"
    try:
        with connect_vault(settings.vault) as session, \
                concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with build_worker(client, settings, session, pool):
                info = await client.execute_workflow(
                    InspectTransitKey.run, ReadKeyInput(key=codec_key), id=workflow_id,
                    task_queue=task_queue)
        assert info.name == codec_key
    finally:
        await bundle.close()
    return FinishedWorkflow(workflow_id, temporal_client.namespace, codec_key)


@pytest.fixture
async def codec_server(server_codec: VaultTransitCodec,
                       jwks_server: JwksServer) -> AsyncIterator[RunningCodecServer]:
    server = await start_codec_server(jwt_settings(jwks_server.url, port=free_port()),
                                      server_codec)
    yield server
    await server.stop()


async def workflow_show(temporal_env: WorkflowEnvironment, workflow: FinishedWorkflow,
                        endpoint: str, authorization: str, *extra: str) -> tuple[int, str, str]:
    """Run ``temporal workflow show`` without blocking the loop the codec server runs on."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEMPORAL_")}
    process = await asyncio.create_subprocess_exec(
        str(temporal_cli_path()), "workflow", "show", "-w", workflow.workflow_id,
        "--namespace", workflow.namespace,
        "--address", temporal_env.client.service_client.config.target_host,
        "--codec-endpoint", endpoint, "--codec-auth", authorization, "-o", "json", *extra,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


def decoded_data(stdout: str) -> list[bytes]:
    return [base64.b64decode(p.get("data", "")) for p in payloads_in(json.loads(stdout))]


async def test_cli_shows_decoded_history_with_a_token(temporal_env: WorkflowEnvironment,
                                                      finished_workflow: FinishedWorkflow,
                                                      codec_server: RunningCodecServer,
                                                      signing_key: SigningKey) -> None:
    """``temporal workflow show --codec-endpoint .../{namespace} --codec-auth 'Bearer T'``
    prints the workflow's input and result in plaintext."""
    token = signing_key.token([f"{finished_workflow.namespace}:read"])
    code, stdout, stderr = await workflow_show(
        temporal_env, finished_workflow, f"{codec_server.url}/{{namespace}}", f"Bearer {token}")
    assert code == 0, stderr
    data = decoded_data(stdout)
    marker = finished_workflow.marker.encode()
    assert any(marker in d and b'"mount":"transit"' in d for d in data), data  # the input
    assert any(b'"latest_version":1' in d for d in data), data  # the result
    assert token not in stdout + stderr


async def test_cli_without_permission_sees_no_plaintext(temporal_env: WorkflowEnvironment,
                                                        finished_workflow: FinishedWorkflow,
                                                        codec_server: RunningCodecServer,
                                                        signing_key: SigningKey) -> None:
    """With a token that lacks read on the namespace, the CLI gets no decoded payloads."""
    token = signing_key.token(["some-other-namespace:admin"])
    # The CLI retries failed decodes with backoff; the first answer is all this test needs.
    code, stdout, stderr = await workflow_show(
        temporal_env, finished_workflow, f"{codec_server.url}/{{namespace}}", f"Bearer {token}",
        "--command-timeout", "3s")
    assert code != 0  # the CLI fails rather than printing ciphertext as if it were data
    assert finished_workflow.marker not in stdout + stderr
    assert "latest_version" not in stdout + stderr
    metrics = generate_latest(codec_server.runner.app[CODEC_SERVER].metrics.registry).decode()
    assert 'operation="decode",outcome="forbidden"' in metrics
    assert 'operation="decode",outcome="ok"' not in metrics
