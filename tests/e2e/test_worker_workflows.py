"""The worker as built by worker.py runs keyward workflows against real Temporal and Vault."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import uuid

import hvac
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.config import Settings, TemporalSettings
from keyward.contracts.transit import ReadKeyInput
from keyward.vault.client import connect_vault
from tests.conftest import VaultEndpoint
from workflows.inspect_key import InspectTransitKey


def settings_for(vault: VaultEndpoint, task_queue: str) -> Settings:
    return dataclasses.replace(Settings(), vault=vault.settings(),
                               temporal=TemporalSettings(task_queue=task_queue))


async def test_inspect_key_reports_versions(temporal_client: Client, vault: VaultEndpoint,
                                            vault_client: hvac.Client, transit_key: str,
                                            task_queue: str) -> None:
    """InspectTransitKey returns the key's latest version after rotations."""
    vault_client.secrets.transit.rotate_key(name=transit_key)
    settings = settings_for(vault, task_queue)
    with connect_vault(settings.vault) as session, \
            concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with build_worker(temporal_client, settings, session, pool):
            info = await temporal_client.execute_workflow(
                InspectTransitKey.run, ReadKeyInput(key=transit_key),
                id=f"inspect-{uuid.uuid4()}", task_queue=task_queue)
    assert info.name == transit_key
    assert info.latest_version == 2
    assert sorted(info.version_created) == [1, 2]
    assert info.min_decryption_version == 1


async def test_missing_key_fails_without_retrying(temporal_client: Client, vault: VaultEndpoint,
                                                  task_queue: str) -> None:
    """A 404 from Vault is permanent: the workflow fails at once with a typed error."""
    settings = settings_for(vault, task_queue)
    with connect_vault(settings.vault) as session, \
            concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with build_worker(temporal_client, settings, session, pool):
            with pytest.raises(WorkflowFailureError) as caught:
                await temporal_client.execute_workflow(
                    InspectTransitKey.run, ReadKeyInput(key=f"missing-{uuid.uuid4().hex}"),
                    id=f"inspect-{uuid.uuid4()}", task_queue=task_queue)
    activity_error = caught.value.cause
    assert isinstance(activity_error, ActivityError)
    app_error = activity_error.cause
    assert isinstance(app_error, ApplicationError)
    assert app_error.type == "VaultNotFound"
    assert app_error.non_retryable
    assert activity_error.retry_state is not None
    assert activity_error.retry_state.name == "NON_RETRYABLE_FAILURE"
