"""Key rotation end to end: real Temporal dev server, real dev Vault, the worker's registrations."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import hvac
import pytest
from temporalio import activity
from temporalio.client import Client, ScheduleActionStartWorkflow, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities import build_activities
from activities.rotation_settings import RotationSettingsActivities
from activities.transit_keys import TransitKeyActivities
from keyward.app.worker import ACTIVITY_THREADS
from keyward.codec.converter import CodecBundle, build_data_converter
from keyward.codec.transit_codec import PayloadDecryptionError
from keyward.codec.usage import UsageCounters
from keyward.config import CodecSettings, RotationSettings, Settings, TemporalSettings
from keyward.contracts.history import HistoryWindow, HistoryWindowRequest
from keyward.contracts.ids import ledger_workflow_id
from keyward.contracts.ledger import UsageReport, VersionCount
from keyward.contracts.rotation import RotateKeyInput, RotateKeyResult
from keyward.contracts.transit import RotateRequest
from keyward.policy.cadence import Cadence
from keyward.rotation.inputs import ledger_input, rotate_input
from keyward.rotation.reporter import UsageReporter
from keyward.rotation.schedules import build_schedule
from keyward.secrets import Secret
from keyward.vault.client import build_hvac_client, connect_vault
from keyward_devstack.processes import free_port
from keyward_devstack.vault_dev import DevVault, ensure_transit
from tests.conftest import VaultEndpoint
from tests.support import assert_eventually
from workflows import ALL_WORKFLOWS
from workflows.key_ledger import TransitKeyLedger
from workflows.rotate_key import RotateTransitKey


def settings_for(vault: VaultEndpoint | tuple[str, Secret], task_queue: str, key: str,
                 **rotation: Any) -> Settings:
    vault_settings = (vault.settings() if isinstance(vault, VaultEndpoint)
                      else dataclasses.replace(Settings().vault, address=vault[0],
                                               token=vault[1]))
    return dataclasses.replace(
        Settings(), vault=vault_settings, temporal=TemporalSettings(task_queue=task_queue),
        codec=CodecSettings(mode="direct", keys={"default": key}),
        rotation=RotationSettings(keys={key: 1000.0}, **rotation))


@asynccontextmanager
async def running_worker(client: Client, settings: Settings,
                         replace: Sequence[Callable[..., Any]] = (),
                         workflows: Sequence[type] = ()) -> AsyncIterator[Client]:
    """The worker's workflows and activities; ``replace`` swaps activities by name,
    ``workflows`` adds test workflows."""
    with connect_vault(settings.vault) as session, \
            concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        replaced = {activity._Definition.must_from_callable(fn).name for fn in replace}
        activities = [fn for fn in build_activities(vault=session.client, settings=settings)
                      if activity._Definition.must_from_callable(fn).name not in replaced]
        async with Worker(client, task_queue=settings.temporal.task_queue,
                          workflows=[*ALL_WORKFLOWS, *workflows],
                          activities=[*activities, *replace],
                          activity_executor=pool, max_concurrent_activities=ACTIVITY_THREADS):
            yield client


def encrypting(client: Client, settings: Settings, token: Secret) -> tuple[Client, CodecBundle]:
    bundle = build_data_converter(settings, token.reveal, namespace=client.namespace)
    config = client.config()
    config["data_converter"] = bundle.converter
    return Client(**config), bundle


def worker_settings_stand_in(settings: Settings, **changes: Any) -> Callable[..., Any]:
    """ResolveRotationInput for a worker whose settings have no retention buffer and no
    encryption grace (plus ``changes``): the input cannot ask for that, the worker can."""
    real = RotationSettingsActivities(settings)

    @activity.defn(name="ResolveRotationInput")
    def resolve(request: RotateKeyInput) -> RotateKeyInput:
        return dataclasses.replace(real.resolve(request), retention_buffer_seconds=0,
                                   encryption_grace_seconds=0, **changes)

    return resolve


def latest(vault_client: hvac.Client, key: str) -> int:
    return int(vault_client.secrets.transit.read_key(name=key)["data"]["latest_version"])


async def test_rotation_advances_and_old_payloads_still_decode(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """RotateTransitKey moves v1 → v2; payloads written before and after both decode."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    try:
        before = await bundle.codec.encode(
            [await _payload("written before rotation")])
        async with running_worker(client, settings):
            result = await client.execute_workflow(
                RotateTransitKey.run, rotate_input(settings, transit_key, reason="test"),
                id=f"rotate-{uuid.uuid4()}", task_queue=task_queue)
        after = await bundle.codec.encode([await _payload("written after rotation")])
        assert (result.rotated, result.old_version, result.new_version) == (True, 1, 2)
        assert result.rotated_at is not None
        assert latest(vault_client, transit_key) == 2
        assert after[0].metadata["keyward-key-version"] == b"2"
        decoded = await bundle.codec.decode(before + after)
        assert [p.data for p in decoded] == [b'"written before rotation"',
                                            b'"written after rotation"']
        # The floor stays: the dev server's namespace retention has not passed.
        assert result.decryption_floor == 1
        assert "kept" in result.floor_explanation
    finally:
        await bundle.close()


async def _payload(text: str) -> Any:
    from temporalio.converter import DataConverter  # noqa: PLC0415

    (payload,) = await DataConverter.default.encode([text])
    return payload


async def test_bare_cli_input_takes_the_rest_from_the_worker_settings(
        temporal_client: Client, vault: VaultEndpoint, transit_key: str,
        task_queue: str) -> None:
    """`--input '{"key": ...}'` rotates as the schedule would: this worker's settings say
    floor changes are off, and the hand-started run honours that."""
    settings = settings_for(vault, task_queue, transit_key, raise_decryption_floor=False)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    try:
        async with running_worker(client, settings):
            result = await client.execute_workflow(
                "RotateTransitKey", {"key": transit_key}, result_type=RotateKeyResult,
                id=f"rotate-bare-{uuid.uuid4()}", task_queue=task_queue)
    finally:
        await bundle.close()
    assert (result.rotated, result.old_version, result.new_version) == (True, 1, 2)
    assert result.floor_explanation == "floor changes are off"


async def test_duplicate_triggers_rotate_once(temporal_client: Client, vault: VaultEndpoint,
                                              vault_client: hvac.Client, transit_key: str,
                                              task_queue: str) -> None:
    """The same trigger delivered twice, at once or later, gives exactly one new version."""
    settings = settings_for(vault, task_queue, transit_key)
    request = dataclasses.replace(rotate_input(settings, transit_key, reason="budget"),
                                  from_version=1)
    trigger_id = f"budget-v1-{uuid.uuid4()}"
    client, bundle = encrypting(temporal_client, settings, vault.token)
    try:
        async with running_worker(client, settings):
            # At once: one id, so Temporal runs one execution and both callers get its result.
            first, second = await asyncio.gather(*(
                client.execute_workflow(
                    RotateTransitKey.run, request, id=trigger_id, task_queue=task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
                for _ in range(2)))
            # Later, under another id (an operator re-running it): the workflow sees v2 and
            # skips.
            again = await client.execute_workflow(
                RotateTransitKey.run, request, id=f"{trigger_id}-again", task_queue=task_queue)
    finally:
        await bundle.close()
    assert latest(vault_client, transit_key) == 2
    assert first == second
    assert first.rotated
    assert not again.rotated
    assert again.skipped_because is not None
    assert "already rotated past v1" in again.skipped_because


def test_retried_rotate_activity_does_not_rotate_twice(vault_client: hvac.Client,
                                                       transit_key: str) -> None:
    """A retry of the rotate activity (first attempt's reply lost) finds v2 and stops."""
    activities = TransitKeyActivities(vault_client)
    env = ActivityEnvironment()
    request = RotateRequest(transit_key, "transit", expected_latest=1)
    assert env.run(activities.rotate_transit_key, request).latest_version == 2
    assert env.run(activities.rotate_transit_key, request).latest_version == 2
    assert latest(vault_client, transit_key) == 2


async def test_floor_rises_once_temporal_holds_no_old_payloads(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """With retention passed and no old executions, v1 is retired; its payloads are 'too old'."""

    @activity.defn(name="DescribeHistoryWindow")
    async def nothing_left(_: HistoryWindowRequest) -> HistoryWindow:
        # Stand-in for a namespace whose retention has long passed and holds no old runs.
        return HistoryWindow(retention_seconds=0)

    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    try:
        old = await bundle.codec.encode([await _payload("v1 data")])
        request = rotate_input(settings, transit_key, reason="test")
        async with running_worker(client, settings,
                                  replace=[nothing_left, worker_settings_stand_in(settings)]):
            result = await client.execute_workflow(RotateTransitKey.run, request,
                                                   id=f"floor-{uuid.uuid4()}",
                                                   task_queue=task_queue)
        assert result.decryption_floor == 2
        key = vault_client.secrets.transit.read_key(name=transit_key)["data"]
        assert key["min_decryption_version"] == 2
        fresh = build_data_converter(settings, vault.token.reveal, namespace="default")
        try:
            with pytest.raises(PayloadDecryptionError, match="version 1 is too old"):
                await fresh.codec.decode(old)
        finally:
            await fresh.close()
    finally:
        await bundle.close()


async def test_long_running_workflow_blocks_the_floor(
        temporal_client: Client, vault: VaultEndpoint, transit_key: str,
        task_queue: str) -> None:
    """An execution started before the rotation keeps the old version decryptable."""
    settings = settings_for(vault, task_queue, transit_key)
    request = rotate_input(settings, transit_key, reason="test")
    client, bundle = encrypting(temporal_client, settings, vault.token)

    @activity.defn(name="DescribeHistoryWindow")
    async def zero_retention(req: HistoryWindowRequest) -> HistoryWindow:
        real = await TemporalHistoryStandIn.real(req)
        return dataclasses.replace(real, retention_seconds=0)

    resolve = worker_settings_stand_in(settings, namespaces=[temporal_client.namespace])
    try:
        async with running_worker(client, settings, replace=[zero_retention, resolve]):
            result = await client.execute_workflow(RotateTransitKey.run, request,
                                                   id=f"blocked-{uuid.uuid4()}",
                                                   task_queue=task_queue)
    finally:
        await bundle.close()
    # The session's earlier workflows started before v2: Temporal still holds them.
    assert result.decryption_floor == 1
    assert "started" in result.floor_explanation


class TemporalHistoryStandIn:
    """Delegates to the real activity so a stand-in can adjust one field of its answer."""

    @staticmethod
    async def real(request: HistoryWindowRequest) -> HistoryWindow:
        from activities.temporal_history import TemporalHistoryActivities  # noqa: PLC0415

        return await TemporalHistoryActivities().describe_history_window(request)


async def test_ledger_rotates_when_budget_is_crossed(temporal_client: Client,
                                                     vault: VaultEndpoint,
                                                     vault_client: hvac.Client,
                                                     transit_key: str, task_queue: str) -> None:
    """Reports pushing v1 past rotate_at x budget start exactly one rotation to v2."""
    settings = settings_for(vault, task_queue, transit_key)
    ledger = dataclasses.replace(ledger_input(settings, transit_key), budget=10, rotate_at=0.9)
    ledger_id = ledger_workflow_id("transit", transit_key) + f"-{uuid.uuid4().hex[:6]}"
    client, bundle = encrypting(temporal_client, settings, vault.token)
    async with running_worker(client, settings):
        for count in (5, 4, 3):  # 5 → 9 (crosses 9) → 12 (already started: no second rotation)
            await client.start_workflow(
                TransitKeyLedger.run, ledger, id=ledger_id, task_queue=task_queue,
                start_signal="report",
                start_signal_args=[UsageReport("test", [VersionCount(1, count)])])

        async def rotated() -> None:
            assert latest(vault_client, transit_key) == 2

        await assert_eventually(rotated, within=20)
        state = await client.get_workflow_handle(ledger_id).query(TransitKeyLedger.usage)
        assert state.counts == {1: 12}
        assert state.rotations_started == [1]
        await client.get_workflow_handle(ledger_id).terminate("test over")
    await bundle.close()
    assert latest(vault_client, transit_key) == 2


async def test_schedule_fires_and_rotates(temporal_client: Client, vault: VaultEndpoint,
                                          vault_client: hvac.Client, transit_key: str,
                                          task_queue: str) -> None:
    """A schedule with a short interval fires RotateTransitKey and the version increments."""
    settings = settings_for(vault, task_queue, transit_key)
    cadence = Cadence(interval=timedelta(seconds=2), nist_bound=timedelta(days=1), budget=10,
                      budget_interval=timedelta(seconds=2), limited_by="budget",
                      explanation="test cadence")
    schedule_id = f"test-schedule-{uuid.uuid4()}"
    client, bundle = encrypting(temporal_client, settings, vault.token)
    async with running_worker(client, settings):
        handle = await client.create_schedule(
            schedule_id, build_schedule(settings, transit_key, cadence))
        try:
            async def two_rotations() -> None:
                assert latest(vault_client, transit_key) >= 3

            await assert_eventually(two_rotations, within=30, interval=0.5)
        finally:
            await handle.delete()
            await bundle.close()


async def test_rotation_waits_out_a_vault_outage(temporal_client: Client, tmp_path: Path,
                                                 vault: VaultEndpoint, transit_key: str,
                                                 task_queue: str) -> None:
    """With Vault down mid-rotation the workflow waits, and completes once Vault is back."""
    dev = DevVault(host="127.0.0.1", port=free_port(), state_dir=tmp_path)
    process, token = await dev.ensure_running()
    assert process is not None
    admin = build_hvac_client(dataclasses.replace(Settings().vault, address=dev.address))
    admin.token = token.reveal()
    ensure_transit(admin, "transit", ["outage"])
    settings = settings_for((dev.address, token), task_queue, "outage",
                            raise_decryption_floor=False)
    # The input is encrypted through the session's Vault, which stays up: the outage is
    # the rotated key's Vault, which the activities talk to.
    client, bundle = encrypting(temporal_client, settings_for(vault, task_queue, transit_key),
                                vault.token)
    try:
        async with running_worker(client, settings):
            process.stop()
            handle = await client.start_workflow(
                RotateTransitKey.run, RotateKeyInput(key="outage"),
                id=f"outage-{uuid.uuid4()}", task_queue=task_queue)
            await asyncio.sleep(3)  # activities fail and back off meanwhile
            assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
            process, _ = await dev.ensure_running()
            result = await asyncio.wait_for(handle.result(), timeout=60)
        assert result.rotated
        assert result.new_version == 2
    finally:
        if process is not None:
            process.stop()
        admin.adapter.close()
        await bundle.close()


async def test_rotation_reencrypts_schedule_inputs(temporal_client: Client,
                                                   vault: VaultEndpoint, transit_key: str,
                                                   task_queue: str) -> None:
    """A schedule's stored input moves to the new version, so it cannot pin the old one."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    cadence = Cadence(interval=timedelta(hours=1), nist_bound=timedelta(days=1), budget=10,
                      budget_interval=timedelta(hours=1), limited_by="budget",
                      explanation="test cadence")
    schedule_id = f"rewrap-{uuid.uuid4()}"
    try:
        handle = await client.create_schedule(schedule_id,
                                              build_schedule(settings, transit_key, cadence))

        async def stored_version() -> bytes:
            action = (await handle.describe()).schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            (payload,) = action.args
            return bytes(payload.metadata["keyward-key-version"])

        assert await stored_version() == b"1"
        async with running_worker(client, settings):
            result = await client.execute_workflow(
                RotateTransitKey.run, rotate_input(settings, transit_key, reason="test"),
                id=f"rotate-{uuid.uuid4()}", task_queue=task_queue)
        assert result.new_version == 2
        assert await stored_version() == b"2"
        # And the re-encrypted input still decodes to the same request.
        action = (await handle.describe()).schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        (decoded,) = await client.data_converter.decode(list(action.args), [RotateKeyInput])
        assert decoded.key == transit_key
        await handle.delete()
    finally:
        await bundle.close()


async def test_usage_reporter_delivers_counts_to_the_ledger(
        temporal_client: Client, vault: VaultEndpoint, transit_key: str,
        task_queue: str) -> None:
    """What the codec counted reaches the key's ledger by signal-with-start, summed."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    usage = UsageCounters()
    reporter = UsageReporter(client, settings, usage)
    ledger = client.get_workflow_handle(ledger_workflow_id("transit", transit_key))
    async with running_worker(client, settings):
        usage.add(transit_key, 1, 40)
        await reporter.flush()
        usage.add(transit_key, 1, 2)
        usage.add(transit_key, 2, 5)
        await reporter.flush()

        async def summed() -> None:
            state = await ledger.query(TransitKeyLedger.usage)
            assert state.counts == {1: 42, 2: 5}
            assert state.current_version == 2

        await assert_eventually(summed, within=10)
        await ledger.terminate("test over")
    await bundle.close()
    assert reporter.reports_sent == 2
    assert usage.drain() == []


async def test_failed_report_keeps_its_counts(temporal_client: Client, vault: VaultEndpoint,
                                              transit_key: str, task_queue: str) -> None:
    """When Temporal refuses the report, the counts stay for the next attempt."""
    settings = settings_for(vault, task_queue, transit_key)
    config = temporal_client.config()
    config["namespace"] = f"no-such-namespace-{uuid.uuid4().hex[:8]}"
    usage = UsageCounters()
    reporter = UsageReporter(Client(**config), settings, usage)
    usage.add(transit_key, 3, 7)
    await reporter.flush()
    assert reporter.reports_sent == 0
    assert [(s.key, s.version, s.encryptions) for s in usage.drain()] == [(transit_key, 3, 7)]
