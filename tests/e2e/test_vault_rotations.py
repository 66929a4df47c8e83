"""Rotations Vault makes on its own (the backstop's ``auto_rotate_period``) still count.

A version keyward did not create is, to keyward, a version like any other: the scheduled
run finds the key already rotated and skips, the decryption floor retires the version
Vault replaced once nothing carries it and keeps the one Vault made while a payload still
uses it, and the usage ledger moves its budget to Vault's version. Vault's own rotation is
played here by rotating the key out of band, which leaves Vault in the same state as its
periodic auto-rotation (the dev server's own is tested in
tests/integration/test_vault_backstop.py).
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import hvac
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError

from keyward.config import CodecSettings
from keyward.contracts.history import HistoryWindow, HistoryWindowRequest
from keyward.contracts.ids import budget_rotation_workflow_id, ledger_workflow_id
from keyward.contracts.ledger import UsageReport, VersionCount
from keyward.contracts.rotation import RotateKeyResult
from keyward.rotation.inputs import ledger_input, rotate_input
from tests.conftest import VaultEndpoint
from tests.e2e.test_rotation import (
    TemporalHistoryStandIn,
    encrypting,
    latest,
    running_worker,
    settings_for,
    worker_settings_stand_in,
)
from tests.support import assert_eventually
from tests.trust_boundary.test_floor_follows_payload_versions import (
    in_namespace,
    register_namespace,
)
from workflows.key_ledger import TransitKeyLedger
from workflows.rotate_key import RotateTransitKey


async def test_a_scheduled_run_after_vault_rotated_skips_and_the_floor_keeps_vault_version(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """Vault made v2 and v3 by itself, and an execution still carries input under v2. The
    scheduled RotateTransitKey finds v3 young and skips, and its floor decision retires v1
    (nothing carries it) but keeps v2, the version keyward never made."""
    namespace = await register_namespace(temporal_client)
    settings = dataclasses.replace(
        settings_for(vault, task_queue, transit_key),
        codec=CodecSettings(mode="direct", keys={namespace: transit_key}))
    client, bundle = encrypting(in_namespace(temporal_client, namespace), settings, vault.token)

    @activity.defn(name="DescribeHistoryWindow")
    async def retention_passed(request: HistoryWindowRequest) -> HistoryWindow:
        # The real scan of what the namespace carries; only its retention taken as passed.
        return dataclasses.replace(await TemporalHistoryStandIn.real(request),
                                   retention_seconds=0)

    resolve = worker_settings_stand_in(settings, namespaces=[namespace])
    holder = f"holds-v2-{uuid.uuid4()}"
    try:
        vault_client.secrets.transit.rotate_key(name=transit_key)  # v2, Vault's own
        # No worker polls this queue: the execution stays present with its v2 input.
        await client.start_workflow("Nothing", "input under v2", id=holder,
                                    task_queue=f"nobody-{uuid.uuid4()}")
        vault_client.secrets.transit.rotate_key(name=transit_key)  # v3, Vault's own
        async with running_worker(client, settings, replace=[retention_passed, resolve]):
            result = await client.execute_workflow(
                RotateTransitKey.run,
                rotate_input(settings, transit_key, reason="schedule",
                             min_version_age=timedelta(hours=12)),
                id=f"scheduled-{uuid.uuid4()}", task_queue=task_queue)
        await client.get_workflow_handle(holder).terminate("test over")
    finally:
        await bundle.close()
    assert not result.rotated
    assert result.skipped_because is not None
    assert "a rotation for this period already happened" in result.skipped_because
    assert (result.old_version, result.new_version) == (3, 3)
    assert result.decryption_floor == 2, result.floor_explanation
    assert "v2 kept: a payload still present is encrypted under v2" in \
        result.floor_explanation
    assert holder in result.floor_explanation
    key = vault_client.secrets.transit.read_key(name=transit_key)["data"]
    assert key["min_decryption_version"] == 2
    assert latest(vault_client, transit_key) == 3


async def test_the_ledger_moves_its_budget_to_the_version_vault_made(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """After Vault rotates v1 → v2 by itself, reports under v2 count against v2's budget
    and start the budget rotation from v2; late reports under v1 start nothing."""
    settings = settings_for(vault, task_queue, transit_key)
    ledger = dataclasses.replace(ledger_input(settings, transit_key), budget=10, rotate_at=0.9)
    ledger_id = ledger_workflow_id("transit", transit_key) + f"-{uuid.uuid4().hex[:6]}"
    client, bundle = encrypting(temporal_client, settings, vault.token)

    async def report(version: int, count: int) -> None:
        await client.start_workflow(
            TransitKeyLedger.run, ledger, id=ledger_id, task_queue=task_queue,
            start_signal="report",
            start_signal_args=[UsageReport("test", [VersionCount(version, count)])])

    try:
        async with running_worker(client, settings):
            await report(1, 5)
            vault_client.secrets.transit.rotate_key(name=transit_key)  # v2, Vault's own
            await report(2, 9)  # crosses 0.9 x 10 of v2

            async def rotated_from_v2() -> None:
                assert latest(vault_client, transit_key) == 3

            await assert_eventually(rotated_from_v2, within=20)
            await report(1, 10)  # a late report of the old version: over budget, but old

            async def counted() -> None:
                state = await client.get_workflow_handle(ledger_id).query(
                    TransitKeyLedger.usage)
                assert state.counts == {1: 15, 2: 9}
                assert state.rotations_started == [2]

            await assert_eventually(counted, within=10)
            await client.get_workflow_handle(ledger_id).terminate("test over")
    finally:
        await bundle.close()
    assert latest(vault_client, transit_key) == 3


async def test_a_budget_rotation_vault_got_to_first_is_skipped(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """v1's budget runs out after Vault already rotated to v2: the ledger starts its one
    rotation from v1, which sees the latest version moved on and does not rotate again."""
    settings = settings_for(vault, task_queue, transit_key)
    ledger = dataclasses.replace(ledger_input(settings, transit_key), budget=10, rotate_at=0.9)
    ledger_id = ledger_workflow_id("transit", transit_key) + f"-{uuid.uuid4().hex[:6]}"
    client, bundle = encrypting(temporal_client, settings, vault.token)
    try:
        async with running_worker(client, settings):
            vault_client.secrets.transit.rotate_key(name=transit_key)  # v2, Vault's own
            await client.start_workflow(
                TransitKeyLedger.run, ledger, id=ledger_id, task_queue=task_queue,
                start_signal="report",
                start_signal_args=[UsageReport("test", [VersionCount(1, 9)])])
            child = client.get_workflow_handle(
                budget_rotation_workflow_id("transit", transit_key, 1),
                result_type=RotateKeyResult)

            async def finished() -> RotateKeyResult:
                try:
                    return await child.result()
                except RPCError as exc:  # not started yet
                    raise AssertionError(exc) from exc

            result = await assert_eventually(finished, within=20, interval=0.5)
            await client.get_workflow_handle(ledger_id).terminate("test over")
    finally:
        await bundle.close()
    assert not result.rotated
    assert result.skipped_because == "already rotated past v1 (latest is v2)"
    assert latest(vault_client, transit_key) == 2
