"""Issue 12, attack 3: the decryption floor follows what executions actually carry.

Temporal copies a workflow's first input into every retry attempt and every cron run, so
a chain whose runs all started after a rotation still carries payloads under the old
version. Start times alone would retire that version and make the chain unreadable.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import hvac
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio import activity, workflow
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import (
    DeleteWorkflowExecutionRequest,
    DescribeNamespaceRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from activities.temporal_history import TemporalHistoryActivities
from keyward.config import CodecSettings
from keyward.contracts.history import HistoryWindow, HistoryWindowRequest
from keyward.rotation.inputs import rotate_input
from keyward.temporal.payload_versions import iter_payloads, key_versions
from tests.conftest import VaultEndpoint
from tests.e2e.test_rotation import (
    TemporalHistoryStandIn,
    encrypting,
    running_worker,
    settings_for,
    worker_settings_stand_in,
)
from tests.support import assert_eventually
from workflows.rotate_key import RotateTransitKey


@workflow.defn(name="TrustBoundaryAlwaysFails", sandboxed=False)
class AlwaysFails:
    """Fails every attempt, so its retry policy starts a new attempt (a copy of the first
    input) every second."""

    @workflow.run
    async def run(self, text: str) -> None:
        raise ApplicationError(f"attempt {workflow.info().attempt} of {text!r} fails")


@workflow.defn(name="TrustBoundaryCron", sandboxed=False)
class EchoCron:
    """Run by a cron schedule: every run starts with a copy of the first run's input."""

    @workflow.run
    async def run(self, text: str) -> str:
        return text


async def register_namespace(temporal_client: Client) -> str:
    """A fresh namespace, so no other test's executions take part in the floor decision."""
    name = f"trust-boundary-{uuid.uuid4().hex[:8]}"
    await temporal_client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=name, workflow_execution_retention_period=Duration(seconds=86_400)))

    async def registered() -> None:
        await temporal_client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=name))

    await assert_eventually(registered, within=20, interval=0.5)
    return name


@pytest.fixture
async def namespace(temporal_client: Client) -> str:
    return await register_namespace(temporal_client)


def in_namespace(client: Client, namespace: str) -> Client:
    config = client.config()
    config["namespace"] = namespace
    return Client(**config)


async def _delete_runs_started_before(client: Client, workflow_id: str, moment: datetime) -> None:
    """Delete the chain's closed runs that started before ``moment``: what retention
    does to them eventually, done now (deletion is asynchronous, so until none is left)."""
    query = f'WorkflowId = "{workflow_id}"'

    async def gone() -> None:
        earlier = [run async for run in client.list_workflows(query)
                   if run.start_time < moment]
        for run in earlier:
            assert run.status != WorkflowExecutionStatus.RUNNING, run
            with contextlib.suppress(RPCError):  # already being deleted
                await client.workflow_service.delete_workflow_execution(
                    DeleteWorkflowExecutionRequest(
                        namespace=client.namespace,
                        workflow_execution=WorkflowExecution(workflow_id=workflow_id,
                                                             run_id=run.run_id)))
        assert earlier == []

    await assert_eventually(gone, within=30, interval=1)


async def test_retry_and_cron_chains_keep_the_version_of_their_first_input(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str, namespace: str) -> None:
    """A retrying workflow and a cron workflow whose every remaining run started after
    the rotation still carry their first input under v1: the floor does not pass v1, and
    the reason names the execution that carries it."""
    base = settings_for(vault, task_queue, transit_key)
    settings = dataclasses.replace(
        base, codec=CodecSettings(mode="direct", keys={namespace: transit_key}))
    client, bundle = encrypting(in_namespace(temporal_client, namespace), settings, vault.token)
    retry_id, cron_id = f"retrying-{uuid.uuid4()}", f"cron-{uuid.uuid4()}"

    @activity.defn(name="DescribeHistoryWindow")
    async def retention_passed(request: HistoryWindowRequest) -> HistoryWindow:
        # The real scan and time checks; only the namespace's retention is taken as
        # passed, as it would be days later.
        return dataclasses.replace(await TemporalHistoryStandIn.real(request),
                                   retention_seconds=0)

    resolve = worker_settings_stand_in(settings, namespaces=[namespace])
    try:
        async with running_worker(client, settings, replace=[retention_passed, resolve],
                                  workflows=[AlwaysFails, EchoCron]):
            await client.start_workflow(
                AlwaysFails.run, "retried input", id=retry_id, task_queue=task_queue,
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1),
                                         backoff_coefficient=1.0,
                                         maximum_interval=timedelta(seconds=1)))
            await client.start_workflow(EchoCron.run, "cron input", id=cron_id,
                                        task_queue=task_queue, cron_schedule="@every 1s")
            await asyncio.sleep(2)  # both chains have runs under v1 by now
            vault_client.secrets.transit.rotate_key(name=transit_key)  # v2 takes over
            rotated = datetime.now(UTC)
            await asyncio.sleep(3)  # every run started before the rotation has closed
            for chain in (retry_id, cron_id):
                await _delete_runs_started_before(client, chain, rotated)
                later = [run async for run in client.list_workflows(f'WorkflowId = "{chain}"')]
                assert later, f"{chain} has runs started after the rotation"

            result = await client.execute_workflow(
                RotateTransitKey.run, rotate_input(settings, transit_key, reason="test"),
                id=f"rotate-{uuid.uuid4()}", task_queue=task_queue)

            for chain in (retry_id, cron_id):  # both chains kept running across it
                described = await client.get_workflow_handle(chain).describe()
                assert described.status == WorkflowExecutionStatus.RUNNING
                await client.get_workflow_handle(chain).terminate("test over")
    finally:
        await bundle.close()
    assert result.new_version == 3
    assert result.decryption_floor == 1, result.floor_explanation
    key = vault_client.secrets.transit.read_key(name=transit_key)["data"]
    assert key["min_decryption_version"] == 1
    assert "a payload still present is encrypted under v1" in result.floor_explanation
    assert retry_id in result.floor_explanation or cron_id in result.floor_explanation


async def test_a_namespace_that_cannot_be_described_keeps_the_floor(
        temporal_client: Client, transit_key: str) -> None:
    """A namespace the worker's settings name but Temporal cannot describe is not
    skipped: the window is marked incomplete, naming the namespace, so the floor stays."""
    missing = f"no-such-namespace-{uuid.uuid4().hex[:8]}"
    env = ActivityEnvironment(client=temporal_client)
    window = await env.run(TemporalHistoryActivities().describe_history_window,
                           HistoryWindowRequest(namespaces=[missing], key=transit_key))
    assert window.incomplete is not None
    assert repr(missing) in window.incomplete
    assert "cannot be described" in window.incomplete


async def test_past_the_scan_limit_the_floor_stays(
        temporal_client: Client, transit_key: str, namespace: str) -> None:
    """More executions than rotation.history_scan_limit: the scan stops and says so,
    rather than deciding on part of the namespace."""
    scoped = in_namespace(temporal_client, namespace)
    for _ in range(2):  # no worker polls this queue: they stay present, which is all we need
        await scoped.start_workflow("Nothing", id=f"present-{uuid.uuid4()}",
                                    task_queue=f"nobody-{uuid.uuid4()}")

    async def listed() -> None:
        assert (await scoped.count_workflows()).count == 2

    await assert_eventually(listed, within=20, interval=0.5)
    env = ActivityEnvironment(client=scoped)
    window = await env.run(TemporalHistoryActivities(scan_limit=1).describe_history_window,
                           HistoryWindowRequest(namespaces=[namespace], key=transit_key))
    assert window.incomplete is not None
    assert "more than 1 executions (rotation.history_scan_limit)" in window.incomplete
    full = await env.run(TemporalHistoryActivities(scan_limit=2).describe_history_window,
                         HistoryWindowRequest(namespaces=[namespace], key=transit_key))
    assert full.incomplete is None


def _encrypted(key: str, version: str) -> dict[str, bytes]:
    return {"encoding": b"binary/encrypted", "keyward-format": b"1",
            "keyward-key": key.encode(), "keyward-key-version": version.encode(),
            "keyward-scheme": b"direct", "keyward-compression": b"none"}


def test_versions_are_found_in_every_field_of_a_start_event() -> None:
    """Input, memo, header, last completion result and continued failure are all walked
    (messages, repeated fields and maps); other keys, plain payloads and malformed
    metadata name no version of the key."""
    event = HistoryEvent()
    started = event.workflow_execution_started_event_attributes
    started.input.payloads.add().metadata.update(_encrypted("k", "3"))
    started.input.payloads.add().metadata.update({"encoding": b"json/plain"})
    started.memo.fields["m"].metadata.update(_encrypted("k", "2"))
    started.header.fields["h"].metadata.update(_encrypted("other", "1"))
    started.last_completion_result.payloads.add().metadata.update(_encrypted("k", "5"))
    started.continued_failure.encoded_attributes.metadata.update(_encrypted("k", "4"))
    started.continued_failure.cause.encoded_attributes.metadata.update(_encrypted("k", "7"))
    started.search_attributes.indexed_fields["s"].metadata.update(_encrypted("k", "01"))
    assert len(list(iter_payloads(event))) == 8
    assert key_versions(event, "k") == {2, 3, 4, 5, 7}
    assert key_versions(event, "other") == {1}
