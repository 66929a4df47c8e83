"""One Temporal Schedule per configured Transit key, applied idempotently.

``apply_schedules`` creates missing schedules, leaves matching ones alone,
updates an existing one in place when only its workflow input changed, and
recreates it when its cadence changed (a schedule's memo cannot be updated, and
the memo must keep explaining the current cadence). Schedules of keys (and
certificates) no longer in the settings are reported, and deleted only when asked.
Each configured certificate gets a schedule too, checking it four times per
renewal window (``RenewCertificate`` renews only inside the window).

Each schedule fires ``RotateTransitKey`` with ``min_version_age`` = half the
interval, so a duplicate or catch-up firing does not rotate twice; overlapping
runs are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleListDescription,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from keyward.codec.trust import unstamped
from keyward.config import CertificateSettings, Settings
from keyward.contracts.certificates import RENEW_CERTIFICATE_WORKFLOW, RenewCertificateInput
from keyward.contracts.ids import (
    is_keyward_schedule,
    renewal_schedule_id,
    rotation_schedule_id,
    scheduled_renewal_workflow_id,
    scheduled_rotation_workflow_id,
)
from keyward.contracts.rotation import ROTATE_TRANSIT_KEY_WORKFLOW
from keyward.policy.cadence import Cadence, format_interval
from keyward.policy.renewal import check_interval
from keyward.rotation.inputs import cadence_for, rotate_input

#: Memo key naming who manages a schedule that the settings file does not list.
MANAGED_BY_MEMO = "managed_by"
#: Temporal's minimum catchup window.
MIN_CATCHUP = timedelta(seconds=10)
Change = Literal["created", "updated", "recreated", "unchanged", "stale", "deleted"]


@dataclass(frozen=True)
class ScheduleChange:
    schedule_id: str
    key: str | None
    change: Change
    detail: str


@dataclass(frozen=True)
class RotationScheduleInfo:
    schedule_id: str
    interval: timedelta | None
    next_run: datetime | None
    note: str
    paused: bool


def build_schedule(settings: Settings, key: str, cadence: Cadence) -> Schedule:
    mount = settings.vault.transit_mount
    request = rotate_input(settings, key, reason="schedule", min_version_age=cadence.interval / 2)
    catchup = max(MIN_CATCHUP, min(cadence.interval / 2,
                                   timedelta(minutes=settings.rotation.catchup_window_minutes)))
    return Schedule(
        action=ScheduleActionStartWorkflow(
            ROTATE_TRANSIT_KEY_WORKFLOW.name, request,
            id=scheduled_rotation_workflow_id(mount, key),
            task_queue=settings.temporal.task_queue, execution_timeout=timedelta(hours=6),
            static_summary=f"scheduled rotation of {mount}/{key}",
            static_details=cadence.explanation),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=cadence.interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=catchup),
        state=ScheduleState(note=f"{mount}/{key}: {cadence.explanation}"),
    )


async def apply_schedules(client: Client, settings: Settings, *,
                          prune: bool = False) -> list[ScheduleChange]:
    changes: list[ScheduleChange] = []
    mount = settings.vault.transit_mount
    wanted: dict[str, str] = {}
    for key, rate in sorted(settings.rotation.keys.items()):
        schedule_id = rotation_schedule_id(mount, key)
        wanted[schedule_id] = key
        cadence = cadence_for(settings, key, rate)
        changes.append(await _apply_one(client, schedule_id, key, cadence,
                                        build_schedule(settings, key, cadence)))
    for name, cert in sorted(settings.certificates.items()):
        schedule_id = renewal_schedule_id(name)
        wanted[schedule_id] = name
        schedule, explanation = build_certificate_schedule(settings, name, cert)
        changes.append(await _apply_one(client, schedule_id, name, explanation, schedule))
    async for listed in await client.list_schedules():
        if not is_keyward_schedule(listed.id) or listed.id in wanted:
            continue
        if await _managed_elsewhere(listed):
            continue
        if prune:
            await client.get_schedule_handle(listed.id).delete()
            changes.append(ScheduleChange(listed.id, None, "deleted", "key no longer configured"))
        else:
            changes.append(ScheduleChange(listed.id, None, "stale",
                                          "key no longer configured; --prune deletes it"))
    return changes


def build_certificate_schedule(settings: Settings, name: str,
                               cert: CertificateSettings) -> tuple[Schedule, str]:
    """A schedule that checks a certificate four times per renewal window."""
    lifetime = timedelta(hours=cert.lifetime_hours)
    renew_before = (timedelta(hours=cert.renew_before_hours)
                    if cert.renew_before_hours is not None else None)
    interval = check_interval(lifetime, renew_before)
    window = renew_before or lifetime / 3
    explanation = (f"lifetime {format_interval(lifetime)}, renew with "
                   f"{format_interval(window)} left → check every {format_interval(interval)}")
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            RENEW_CERTIFICATE_WORKFLOW.name, RenewCertificateInput(name),
            id=scheduled_renewal_workflow_id(name), task_queue=settings.temporal.task_queue,
            execution_timeout=max(interval, timedelta(minutes=30)),
            static_summary=f"scheduled renewal check of certificate {name}",
            static_details=explanation),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP,
                              catchup_window=max(MIN_CATCHUP, interval)),
        state=ScheduleState(note=f"certificate {name}: {explanation}"),
    )
    return schedule, explanation


async def apply_certificate_schedule(client: Client, settings: Settings, name: str, *,
                                     managed_by: str) -> ScheduleChange:
    """Create or update one certificate's schedule on behalf of ``managed_by``.

    ``worker --dev`` uses this for the certificate it adds itself; the memo records
    who manages the schedule, so ``schedules apply`` (which does not know that
    certificate) neither calls it stale nor prunes it.
    """
    schedule, explanation = build_certificate_schedule(settings, name,
                                                       settings.certificates[name])
    return await _apply_one(client, renewal_schedule_id(name), name, explanation, schedule,
                            managed_by=managed_by)


async def remove_managed_schedule(client: Client, schedule_id: str, *, managed_by: str) -> bool:
    """Delete ``schedule_id`` if ``managed_by`` created it; True when it was deleted.

    ``worker --dev`` with ``devstack.mtls = false`` removes the schedule an earlier
    mTLS run left behind, which would otherwise fail every few minutes on a
    certificate this run does not know.
    """
    handle = client.get_schedule_handle(schedule_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    if (await described.memo()).get(MANAGED_BY_MEMO) != managed_by:
        return False
    await handle.delete()
    return True


async def _managed_elsewhere(listed: ScheduleListDescription) -> bool:
    try:
        memo = await listed.memo()
    except Exception:  # noqa: BLE001 - an unreadable memo is not a claim of ownership
        return False
    return bool(memo.get(MANAGED_BY_MEMO))


async def _apply_one(client: Client, schedule_id: str, key: str, cadence: Cadence | str,
                     schedule: Schedule, *, managed_by: str | None = None) -> ScheduleChange:
    handle = client.get_schedule_handle(schedule_id)
    explanation = cadence if isinstance(cadence, str) else cadence.explanation
    interval = schedule.spec.intervals[0].every
    memo: dict[str, object] = {"subject": key, "cadence": explanation,
                               "interval_seconds": int(interval.total_seconds())}
    if managed_by is not None:
        memo[MANAGED_BY_MEMO] = managed_by
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        await client.create_schedule(schedule_id, schedule, memo=memo)
        return ScheduleChange(schedule_id, key, "created", explanation)

    try:
        current_memo = await described.memo()
    except Exception:  # noqa: BLE001 - unreadable (e.g. a retired key version): rewrite it
        current_memo = {}
    if current_memo.get("cadence") != explanation:
        await handle.delete()
        await client.create_schedule(schedule_id, schedule, memo=memo)
        return ScheduleChange(schedule_id, key, "recreated", f"cadence changed: {explanation}")
    current = described.schedule
    action = current.action
    if isinstance(action, ScheduleActionStartWorkflow) and \
            await _same_args(client, action, schedule) and current.state.note == \
            schedule.state.note:
        return ScheduleChange(schedule_id, key, "unchanged", f"every {format_interval(interval)}")

    def update(_: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(schedule=schedule)

    await handle.update(update)
    return ScheduleChange(schedule_id, key, "updated", "workflow input changed")


async def _same_args(client: Client, current: ScheduleActionStartWorkflow,
                     wanted: Schedule) -> bool:
    """Compare decoded workflow inputs: a described schedule holds encrypted payloads."""
    wanted_action = wanted.action
    assert isinstance(wanted_action, ScheduleActionStartWorkflow)
    wanted_args = list(wanted_action.args)
    try:
        decoded = await client.data_converter.decode(list(current.args),
                                                     [type(arg) for arg in wanted_args])
    except Exception:  # noqa: BLE001 - unreadable (older key version, older shape): replace it
        return False
    # The decoder sets `authenticated` from the codec's stamp; it is not part of the input.
    return [unstamped(arg) for arg in decoded] == [unstamped(arg) for arg in wanted_args]


async def list_rotation_schedules(client: Client) -> list[RotationScheduleInfo]:
    found: list[RotationScheduleInfo] = []
    async for listed in await client.list_schedules():
        if not is_keyward_schedule(listed.id):
            continue
        described = await client.get_schedule_handle(listed.id).describe()
        intervals = described.schedule.spec.intervals
        next_runs = described.info.next_action_times
        found.append(RotationScheduleInfo(
            schedule_id=listed.id, interval=intervals[0].every if intervals else None,
            next_run=next_runs[0] if next_runs else None,
            note=described.schedule.state.note or "", paused=described.schedule.state.paused))
    return sorted(found, key=lambda info: info.schedule_id)
