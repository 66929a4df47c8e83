"""Issue 12, attack 2: rotation inputs and ledger signals are untrusted.

Anyone who can start or signal a workflow can send plain JSON, so an unencrypted input
or report must never rotate a key, raise the decryption floor or trim versions, and even
an encrypted input chooses only which key to rotate and why, never the settings that
decide what becomes unreadable.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import hvac
import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.worker import Replayer

from keyward.contracts.history import HistoryWindow, HistoryWindowRequest
from keyward.contracts.ids import ledger_workflow_id
from keyward.contracts.ledger import UsageReport, VersionCount
from keyward.contracts.rotation import RotateKeyInput, RotateKeyResult
from keyward.contracts.transit import ReadKeyInput, TransitKeyInfo
from keyward.rotation.inputs import ledger_input
from tests.conftest import VaultEndpoint
from tests.e2e.test_rotation import (
    TemporalHistoryStandIn,
    encrypting,
    latest,
    running_worker,
    settings_for,
)
from tests.support import assert_eventually
from workflows import ALL_WORKFLOWS
from workflows.key_ledger import TransitKeyLedger
from workflows.rotate_key import RotateTransitKey


def _application_error(failure: WorkflowFailureError) -> ApplicationError:
    cause = failure.cause
    assert isinstance(cause, ApplicationError), repr(cause)
    return cause


class VaultCalls:
    """Stand-in for ReadTransitKey that records the call and fails it."""

    def __init__(self) -> None:
        self.reads: list[ReadKeyInput] = []

    @activity.defn(name="ReadTransitKey")
    def read(self, request: ReadKeyInput) -> TransitKeyInfo:
        self.reads.append(request)
        raise ApplicationError("a Vault call was made", non_retryable=True)


async def test_plain_json_rotation_input_is_refused_before_vault(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """An unencrypted RotateTransitKey input fails at once, non-retryable, with no Vault
    call, and says how to start the workflow properly; a JSON "authenticated": true in it
    changes nothing."""
    settings = settings_for(vault, task_queue, transit_key)
    worker_client, bundle = encrypting(temporal_client, settings, vault.token)
    calls = VaultCalls()
    try:
        # The worker runs with keyward's converter, as in production; the caller sends
        # plain JSON through a client without it.
        async with running_worker(worker_client, settings, replace=[calls.read]):
            started = await temporal_client.start_workflow(
                "RotateTransitKey", {"key": transit_key, "authenticated": True},
                result_type=RotateKeyResult, id=f"plain-{uuid.uuid4()}", task_queue=task_queue)
            with pytest.raises(WorkflowFailureError) as failed:
                # Read by a client that can decode the (encrypted) failure message.
                await worker_client.get_workflow_handle(started.id).result()
    finally:
        await bundle.close()
    error = _application_error(failed.value)
    assert error.type == "UnauthenticatedInput"
    assert error.non_retryable
    assert "starter.py rotate-key" in error.message
    assert "--codec-endpoint" in error.message
    assert calls.reads == []
    assert latest(vault_client, transit_key) == 1


@pytest.mark.parametrize("name", ["../keys/payments/rotate", "a/b", "", "x" * 200, "-x"])
async def test_invalid_key_name_fails_before_vault(
        temporal_client: Client, vault: VaultEndpoint, transit_key: str, task_queue: str,
        name: str) -> None:
    """A key name that is not a Vault name fails the run (non-retryable) before any
    Vault call, even when the input arrived encrypted."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    calls = VaultCalls()
    try:
        async with running_worker(client, settings, replace=[calls.read]):
            with pytest.raises(WorkflowFailureError) as failed:
                await client.execute_workflow(
                    RotateTransitKey.run, RotateKeyInput(key=name),
                    id=f"bad-name-{uuid.uuid4()}", task_queue=task_queue)
    finally:
        await bundle.close()
    error = _application_error(failed.value)
    assert error.type == "InvalidKeyName"
    assert error.non_retryable
    assert calls.reads == []


async def test_input_cannot_choose_the_settings_that_protect_payloads(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """Mount, checked namespaces, buffers, grace, floor raising and trimming come from the
    worker's settings: an encrypted input with settings_from "input", a namespace that
    does not exist, zero buffers and trimming on neither raises the floor nor trims."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    seen: list[HistoryWindowRequest] = []

    @activity.defn(name="DescribeHistoryWindow")
    async def spy(request: HistoryWindowRequest) -> HistoryWindow:
        seen.append(request)
        return await TemporalHistoryStandIn.real(request)

    hostile = RotateKeyInput(
        key=transit_key, settings_from="input", raise_decryption_floor=True,
        namespaces=[f"no-such-namespace-{uuid.uuid4().hex[:8]}"],
        retention_buffer_seconds=0, encryption_grace_seconds=0, trim_archived_versions=True)
    try:
        async with running_worker(client, settings, replace=[spy]):
            result = await client.execute_workflow(
                RotateTransitKey.run, hostile, id=f"hostile-{uuid.uuid4()}",
                task_queue=task_queue)
    finally:
        await bundle.close()
    assert (result.rotated, result.new_version) == (True, 2)
    assert result.decryption_floor == 1
    key = vault_client.secrets.transit.read_key(name=transit_key)["data"]
    assert key["min_decryption_version"] == 1
    assert sorted(int(v) for v in key["keys"]) == [1, 2]  # nothing trimmed
    # The namespaces checked are the worker's, not the input's.
    assert [sorted(request.namespaces) for request in seen] == [
        sorted({"default", transit_key})]


async def test_plain_json_reports_are_not_counted(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """The ledger counts only encrypted usage reports; a plain-JSON report, however
    large, is ignored and starts no rotation."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    ledger = dataclasses.replace(ledger_input(settings, transit_key), budget=10, rotate_at=0.9)
    ledger_id = ledger_workflow_id("transit", transit_key) + f"-{uuid.uuid4().hex[:6]}"
    try:
        async with running_worker(client, settings):
            handle = await client.start_workflow(
                TransitKeyLedger.run, ledger, id=ledger_id, task_queue=task_queue,
                start_signal="report",
                start_signal_args=[UsageReport("worker", [VersionCount(1, 3)])])
            plain: dict[str, Any] = {"reporter": "attacker", "authenticated": True,
                                     "counts": [{"version": 1, "encryptions": 1_000}]}
            await temporal_client.get_workflow_handle(ledger_id).signal("report", plain)
            await client.get_workflow_handle(ledger_id).signal(
                TransitKeyLedger.report, UsageReport("worker", [VersionCount(1, 2)]))

            async def counted() -> None:
                state = await handle.query(TransitKeyLedger.usage)
                assert state.counts == {1: 5}

            await assert_eventually(counted, within=10)
            assert (await handle.query(TransitKeyLedger.usage)).rotations_started == []
            await handle.terminate("test over")
    finally:
        await bundle.close()
    assert latest(vault_client, transit_key) == 1


async def test_plain_json_ledger_input_never_rotates(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """A ledger started with an unencrypted input fails at once (non-retryable) and
    starts no rotation, whatever budget and counts it names."""
    settings = settings_for(vault, task_queue, transit_key)
    plain: dict[str, Any] = {"key": transit_key, "budget": 1, "rotate_at": 0.1,
                             "counts": {"1": 1_000}, "authenticated": True}
    report: dict[str, Any] = {"reporter": "attacker",
                              "counts": [{"version": 1, "encryptions": 1_000}]}
    ledger_id = ledger_workflow_id("transit", transit_key) + f"-{uuid.uuid4().hex[:6]}"
    worker_client, bundle = encrypting(temporal_client, settings, vault.token)
    try:
        async with running_worker(worker_client, settings):
            handle = await temporal_client.start_workflow(
                "TransitKeyLedger", plain, id=ledger_id, task_queue=task_queue,
                start_signal="report", start_signal_args=[report])
            with pytest.raises(WorkflowFailureError) as failed:
                await worker_client.get_workflow_handle(handle.id).result()
    finally:
        await bundle.close()
    error = _application_error(failed.value)
    assert error.type == "UnauthenticatedInput"
    assert error.non_retryable
    assert latest(vault_client, transit_key) == 1


HISTORIES = Path(__file__).parent / "histories"


@pytest.mark.parametrize("name", sorted(p.name for p in HISTORIES.glob("before_issue_12_*.json")))
async def test_histories_recorded_before_the_trust_checks_still_replay(name: str) -> None:
    """Runs started by the code before these checks (a bare input filled in from the
    worker, a complete settings_from="input" input, a ledger that started a rotation)
    replay unchanged: the new behaviour sits behind workflow.patched."""
    history = WorkflowHistory.from_json(name, (HISTORIES / name).read_text())
    await Replayer(workflows=list(ALL_WORKFLOWS)).replay_workflow(history)
