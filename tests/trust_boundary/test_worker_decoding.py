"""Anyone who can start a workflow sets its input's metadata: the worker must not obey it.

``temporal workflow start --input-meta keyward-key=../keys/x/rotate`` hands the worker a
payload that looks encrypted under a key name of the starter's choosing. The worker's
codec decodes it on every workflow-task attempt; before the fix each attempt made keyward
POST to the path the name spelt, with its own Vault token.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import subprocess
import uuid

import hvac
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.codec.converter import encrypting_converter
from keyward.config import CodecSettings, Settings, TemporalSettings, VaultSettings
from keyward.vault.client import connect_vault
from keyward_devstack.temporal_dev import temporal_cli_path
from tests.conftest import VaultEndpoint
from tests.trust_boundary.vault_recorder import recording_vault


async def test_crafted_input_metadata_sends_nothing_to_vault(
        temporal_env: WorkflowEnvironment, temporal_client: Client, vault: VaultEndpoint,
        vault_client: hvac.Client, transit_key: str, task_queue: str) -> None:
    """A workflow input whose metadata names ``../keys/<victim>/rotate`` is refused by the
    worker's codec on every attempt, with no Vault request: the victim stays at v1."""
    victim = f"victim-{uuid.uuid4().hex[:10]}"
    vault_client.secrets.transit.create_key(name=victim)
    workflow_id = f"crafted-{uuid.uuid4()}"
    async with recording_vault(vault.address) as recorder:
        settings = dataclasses.replace(
            Settings(), vault=VaultSettings(address=recorder.address, token=vault.token),
            codec=CodecSettings(keys={temporal_client.namespace: transit_key}),
            temporal=TemporalSettings(task_queue=task_queue))
        # Off the loop: the recording proxy answers Vault's health check on this loop.
        session = await asyncio.to_thread(connect_vault, settings.vault)
        with session, concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            bundle = encrypting_converter(settings, session)
            config = temporal_client.config()
            config["data_converter"] = bundle.converter
            client = Client(**config)
            async with build_worker(client, settings, session, pool):
                recorder.clear()
                meta = {"encoding": "binary/encrypted", "keyward-format": "1",
                        "keyward-key": f"../keys/{victim}/rotate", "keyward-key-version": "1",
                        "keyward-scheme": "direct", "keyward-compression": "none"}
                started = await asyncio.to_thread(subprocess.run, [
                    str(temporal_cli_path()), "workflow", "start", "--type", "InspectTransitKey",
                    "--task-queue", task_queue, "--workflow-id", workflow_id,
                    "--address", temporal_env.client.service_client.config.target_host,
                    "--input", '{"key": "x"}',
                    *(arg for k, v in meta.items() for arg in ("--input-meta", f"{k}={v}"))],
                    capture_output=True, text=True, timeout=60, check=False)
                assert started.returncode == 0, started.stderr
                handle = temporal_client.get_workflow_handle(workflow_id)
                # Let the worker pick the task up and fail it (and retry) a few times.
                for _ in range(50):
                    history = await handle.fetch_history()
                    failed = [e for e in history.events if e.HasField(
                        "workflow_task_failed_event_attributes")]
                    if failed:
                        break
                    await asyncio.sleep(0.2)
                assert failed, "the worker never tried the crafted input"
                await handle.terminate("test over")
            await bundle.close()
        # The worker encrypts the task failure it reports (with the namespace's own key).
        assert recorder.paths_outside("transit", {transit_key}) == []
    assert int(vault_client.secrets.transit.read_key(name=victim)["data"]["latest_version"]) == 1
