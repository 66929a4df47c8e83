"""keyward's activities are steps of keyward's workflows, not an API for anyone on Temporal.

``SetDecryptionFloor`` raises the floor (and may trim) with no policy check of its own:
the workflow decided. But an activity can be started without that workflow: as a
standalone activity (``temporal activity execute --type SetDecryptionFloor --task-queue
keyward``, needing only the right to start executions), or scheduled onto keyward's task
queue by some other workflow. Either way its input is whatever the caller wrote. The
worker therefore runs an activity only for a keyward workflow.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import subprocess
import uuid
from datetime import timedelta

import hvac
import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.config import Settings, TemporalSettings
from keyward.vault.client import connect_vault
from keyward_devstack.temporal_dev import temporal_cli_path
from tests.conftest import VaultEndpoint


@workflow.defn(name="NotKeyward")
class NotKeyward:
    """Someone else's workflow that schedules keyward's floor activity on keyward's queue."""

    @workflow.run
    async def run(self, target: list[str]) -> object:
        key, task_queue = target
        return await workflow.execute_activity(
            "SetDecryptionFloor", {"key": key, "mount": "transit",
                                   "min_decryption_version": 3, "trim": True},
            task_queue=task_queue, start_to_close_timeout=timedelta(seconds=20),
            retry_policy=RetryPolicy(maximum_attempts=1))


def floor_of(vault_client: hvac.Client, key: str) -> tuple[int, int]:
    data = vault_client.secrets.transit.read_key(name=key)["data"]
    return int(data["min_decryption_version"]), int(data.get("min_available_version") or 0)


@pytest.fixture
def rotated_key(vault_client: hvac.Client, transit_key: str) -> str:
    for _ in range(2):
        vault_client.secrets.transit.rotate_key(name=transit_key)
    return transit_key


async def test_foreign_workflow_cannot_run_the_floor_activity(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        rotated_key: str, task_queue: str) -> None:
    """A workflow that is not keyward's, scheduling SetDecryptionFloor onto keyward's task
    queue, gets a non-retryable refusal; the floor and the versions stay."""
    settings = dataclasses.replace(Settings(), vault=vault.settings(),
                                   temporal=TemporalSettings(task_queue=task_queue))
    foreign_queue = f"{task_queue}-foreign"
    with connect_vault(settings.vault) as session, \
            concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with build_worker(temporal_client, settings, session, pool), \
                Worker(temporal_client, task_queue=foreign_queue, workflows=[NotKeyward],
                       workflow_runner=UnsandboxedWorkflowRunner()):
            with pytest.raises(WorkflowFailureError) as caught:
                await temporal_client.execute_workflow(
                    NotKeyward.run, [rotated_key, task_queue], id=f"foreign-{uuid.uuid4()}",
                    task_queue=foreign_queue)
    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "ForeignCaller"
    assert cause.cause.non_retryable
    assert floor_of(vault_client, rotated_key) == (1, 0)


async def test_standalone_activity_cannot_raise_the_floor(
        temporal_env: WorkflowEnvironment, temporal_client: Client, vault: VaultEndpoint,
        vault_client: hvac.Client, rotated_key: str, task_queue: str) -> None:
    """``temporal activity execute --type SetDecryptionFloor`` against keyward's task queue
    does not raise the floor (refused by keyward, or by a server without standalone
    activities)."""
    settings = dataclasses.replace(Settings(), vault=vault.settings(),
                                   temporal=TemporalSettings(task_queue=task_queue))
    with connect_vault(settings.vault) as session, \
            concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with build_worker(temporal_client, settings, session, pool):
            executed = await asyncio.to_thread(subprocess.run, [
                str(temporal_cli_path()), "activity", "execute",
                "--activity-id", f"standalone-{uuid.uuid4()}", "--type", "SetDecryptionFloor",
                "--task-queue", task_queue, "--start-to-close-timeout", "20s",
                "--address", temporal_env.client.service_client.config.target_host,
                "--input", f'{{"key": "{rotated_key}", "mount": "transit", '
                           '"min_decryption_version": 3, "trim": true}'],
                capture_output=True, text=True, timeout=60, check=False)
    assert executed.returncode != 0, executed.stdout
    assert floor_of(vault_client, rotated_key) == (1, 0)


def test_allowed_callers_are_exactly_the_hosted_workflows() -> None:
    """The interceptor's list of callers is the worker's workflows, by their type names."""
    from temporalio.workflow import _Definition  # noqa: PLC0415 - the SDK's own reading

    from workflows import ALL_WORKFLOWS, WORKFLOW_TYPES  # noqa: PLC0415

    assert sorted(_Definition.must_from_class(cls).name for cls in ALL_WORKFLOWS) == \
        sorted(WORKFLOW_TYPES)
