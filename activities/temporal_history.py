"""Activities about what Temporal still holds: retention, old executions, schedule inputs.

The decryption floor may rise only when no payload under the old key version can
still be in Temporal. Temporal knows: each namespace's retention (DescribeNamespace);
through visibility, whether any execution that started before a given time is still
present (running, or closed within retention); and, in the payloads themselves, which
key version each one is encrypted under. That last part matters because start times
lie: every retry attempt and cron run starts with a copy of the first run's input, and
a schedule keeps the memo, summary and arguments it was last written with. So the start
event of every execution still present and every schedule is read, and the versions its
payloads' metadata name are collected (no decryption needed).

Anything that cannot be checked — a namespace that cannot be described or listed, more
executions than ``rotation.history_scan_limit`` — keeps the floor where it is, with a
sentence saying why: the floor is irreversible, a missed rotation of it is not.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import (
    CreateScheduleRequest,
    DeleteScheduleRequest,
    DescribeNamespaceRequest,
    DescribeScheduleRequest,
    DescribeScheduleResponse,
    GetWorkflowExecutionHistoryRequest,
    UpdateScheduleRequest,
)
from temporalio.client import Client
from temporalio.client import WorkflowExecution as ListedExecution
from temporalio.service import RPCError, RPCStatusCode

from keyward.codec.transit_codec import VaultTransitCodec
from keyward.config import RotationSettings
from keyward.contracts import failures
from keyward.contracts.history import (
    DESCRIBE_HISTORY_WINDOW,
    REWRAP_SCHEDULE_INPUTS,
    HistoryWindow,
    HistoryWindowRequest,
    RewrapSchedulesRequest,
    RewrapSchedulesResult,
)
from keyward.contracts.ids import is_keyward_schedule
from keyward.errors import KeywardError
from keyward.temporal.failures import to_application_error
from keyward.temporal.payload_versions import key_versions, stale_payloads

#: Start events fetched at once; bounded so a large namespace does not flood the frontend.
SCAN_CONCURRENCY = 16
#: Re-describe and retry this often when a schedule changed between describe and update.
SCHEDULE_UPDATE_ATTEMPTS = 5


def _visibility_time(when: datetime) -> str:
    return when.astimezone().isoformat()


class _Incomplete(Exception):
    """Something in a namespace could not be checked; the message says what."""


class TemporalHistoryActivities:
    """Uses the worker's own client (``activity.client()``), so a certificate reload applies."""

    def __init__(self, *, scan_limit: int = RotationSettings().history_scan_limit) -> None:
        #: ``rotation.history_scan_limit``: executions read per namespace before giving up.
        self._scan_limit = scan_limit

    @activity.defn(name=DESCRIBE_HISTORY_WINDOW.name)
    async def describe_history_window(self, request: HistoryWindowRequest) -> HistoryWindow:
        if not request.namespaces or not request.key:
            raise to_application_error(KeywardError("namespaces and key are required",
                                                    failure_type=failures.INVALID_REQUEST))
        client = activity.client()
        retention = timedelta(0)
        oldest: tuple[datetime, str] | None = None
        in_use: tuple[int, str] | None = None
        incomplete: list[str] = []
        for namespace in request.namespaces:
            try:
                described = await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=namespace))
            except RPCError as exc:
                # Not skipped: a namespace keyward cannot see may hold anything.
                incomplete.append(f"namespace {namespace!r} cannot be described "
                                  f"({exc.status.name}: {exc.message}); if no such namespace "
                                  "uses the key, say which do in rotation.namespaces")
                continue
            retention = max(retention, described.config.workflow_execution_retention_ttl
                            .ToTimedelta())
            scoped = _for_namespace(client, namespace)
            found = await _first_blocking(scoped, request.thresholds)
            if found is not None and (oldest is None or found[0] < oldest[0]):
                oldest = (found[0], f"{namespace}/{found[1]}")
            try:
                carried = await self._versions_carried(scoped, request)
            except _Incomplete as exc:
                incomplete.append(str(exc))
                continue
            if carried is not None and (in_use is None or carried[0] < in_use[0]):
                in_use = carried
        return HistoryWindow(
            retention_seconds=int(retention.total_seconds()),
            oldest_execution_start=oldest[0] if oldest else None,
            oldest_execution=oldest[1] if oldest else None,
            oldest_version_in_use=in_use[0] if in_use else None,
            version_in_use_by=in_use[1] if in_use else None,
            incomplete=("; ".join(incomplete) + ": keyward cannot tell which versions their "
                        "payloads use") if incomplete else None)

    async def _versions_carried(self, client: Client,
                                request: HistoryWindowRequest) -> tuple[int, str] | None:
        """The lowest version of the key carried by an execution's start event or a
        schedule in ``client``'s namespace, and what carries it."""
        found: list[tuple[int, str]] = []
        for version, holder in await _schedule_versions(client, request.key):
            if version >= request.from_version:
                found.append((version, holder))
        batch: list[ListedExecution] = []
        scanned = 0
        try:
            async for execution in client.list_workflows(limit=self._scan_limit + 1):
                scanned += 1
                if scanned > self._scan_limit:
                    raise _Incomplete(
                        f"namespace {client.namespace!r} holds more than {self._scan_limit} "
                        "executions (rotation.history_scan_limit), so not every start event "
                        "was read")
                batch.append(execution)
                if len(batch) >= SCAN_CONCURRENCY:
                    found.extend(await _start_event_versions(client, batch, request))
                    batch = []
                    activity.heartbeat(scanned)
        except RPCError as exc:
            raise _Incomplete(f"namespace {client.namespace!r} cannot be listed "
                              f"({exc.status.name}: {exc.message})") from exc
        found.extend(await _start_event_versions(client, batch, request))
        return min(found) if found else None

    @activity.defn(name=REWRAP_SCHEDULE_INPUTS.name)
    async def rewrap_schedule_inputs(
            self, request: RewrapSchedulesRequest) -> RewrapSchedulesResult:
        """Re-encrypt every payload of a schedule stored under an older version of ``key``.

        A schedule keeps what it was written with — its memo, the action's arguments,
        memo, header and summary/details — and copies it into every run, so it would hold
        an old version alive forever. This works on the raw protos (decrypt, encrypt
        again under the latest version, in place), so it covers every field without
        knowing the workflows' argument types, and updates with the describe's conflict
        token so a concurrent change is not overwritten.
        """
        client = activity.client()
        codec = client.data_converter.payload_codec
        if not isinstance(codec, VaultTransitCodec):
            return RewrapSchedulesResult(updated=[])
        # Payloads encrypted from now on must use the new version, not a cached data key.
        codec.state.encode_keys.forget()
        updated: list[str] = []
        for namespace in request.namespaces:
            scoped = _for_namespace(client, namespace)
            try:
                schedule_ids = [listed.id async for listed in await scoped.list_schedules()]
            except RPCError as exc:
                # The history scan reports this namespace as unreadable and keeps the floor.
                activity.logger.warning("cannot list schedules of %s: %s", namespace, exc)
                continue
            for schedule_id in schedule_ids:
                if await _rewrap_schedule(scoped, codec.for_namespace(namespace), schedule_id,
                                          request):
                    updated.append(f"{namespace}/{schedule_id}")
                activity.heartbeat(len(updated))
        return RewrapSchedulesResult(updated=updated)


async def _rewrap_schedule(client: Client, codec: VaultTransitCodec, schedule_id: str,
                           request: RewrapSchedulesRequest) -> bool:
    """Re-encrypt one schedule's stale payloads; True when it was updated."""
    for attempt in range(1, SCHEDULE_UPDATE_ATTEMPTS + 1):
        try:
            described = await client.workflow_service.describe_schedule(
                DescribeScheduleRequest(namespace=client.namespace, schedule_id=schedule_id))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False  # deleted meanwhile: nothing left to hold a version
            raise
        in_schedule = stale_payloads(described.schedule, request.key, request.latest_version)
        in_memo = stale_payloads(described.memo, request.key, request.latest_version)
        if not in_schedule and not in_memo:
            return False
        try:
            stale = in_schedule + in_memo
            fresh = await codec.encode(await codec.decode(stale))
        except KeywardError as exc:
            # Left as it is, it keeps blocking the floor, which is the safe outcome.
            activity.logger.warning("cannot re-encrypt schedule %s/%s: %s", client.namespace,
                                    schedule_id, exc)
            return False
        for old, new in zip(stale, fresh, strict=True):
            old.CopyFrom(new)
        try:
            await _update_schedule(client, schedule_id, described, memo=bool(in_memo))
        except RPCError as exc:
            if exc.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.PERMISSION_DENIED,
                              RPCStatusCode.UNAUTHENTICATED) \
                    or attempt == SCHEDULE_UPDATE_ATTEMPTS:
                raise
            # Most likely the schedule changed since the describe (conflict token): again.
            activity.logger.info("schedule %s/%s changed while re-encrypting (%s); retrying",
                                 client.namespace, schedule_id, exc)
            continue
        return True
    return False


async def _update_schedule(client: Client, schedule_id: str,
                           described: DescribeScheduleResponse, *, memo: bool) -> None:
    """Write ``described`` (re-encrypted in place) back, memo included when ``memo``.

    Temporal's workflow-backed schedules refuse memo updates (FAILED_PRECONDITION). A
    schedule keyward owns (``keyward/rotate/…``, ``keyward/renew/…``) is then recreated
    with the same spec, policies and state — what ``schedules apply`` does when a
    cadence changes, and what it can redo from the settings. Anyone else's schedule is
    not deleted: its other fields are updated, and its memo keeps the old version (and
    the floor, which names it) until its owner recreates it.
    """
    update = UpdateScheduleRequest(
        namespace=client.namespace, schedule_id=schedule_id, schedule=described.schedule,
        conflict_token=described.conflict_token, identity=client.identity,
        request_id=str(uuid.uuid4()))
    if not memo:
        await client.workflow_service.update_schedule(update)
        return
    update.memo.CopyFrom(described.memo)
    try:
        await client.workflow_service.update_schedule(update)
        return
    except RPCError as exc:
        if exc.status != RPCStatusCode.FAILED_PRECONDITION:
            raise
    if not is_keyward_schedule(schedule_id):
        activity.logger.warning(
            "the memo of schedule %s/%s stays under an old key version: Temporal cannot "
            "update it and keyward does not recreate schedules it does not own; it keeps "
            "the decryption floor until the schedule is recreated",
            client.namespace, schedule_id)
        update.ClearField("memo")
        await client.workflow_service.update_schedule(update)
        return
    await _recreate_schedule(client, schedule_id, described)


async def _recreate_schedule(client: Client, schedule_id: str,
                             described: DescribeScheduleResponse) -> None:
    create = CreateScheduleRequest(
        namespace=client.namespace, schedule_id=schedule_id, schedule=described.schedule,
        memo=described.memo, search_attributes=described.search_attributes,
        identity=client.identity, request_id=str(uuid.uuid4()))
    await client.workflow_service.delete_schedule(DeleteScheduleRequest(
        namespace=client.namespace, schedule_id=schedule_id, identity=client.identity))
    for attempt in range(1, SCHEDULE_UPDATE_ATTEMPTS + 1):
        try:
            await client.workflow_service.create_schedule(create)
            return
        except RPCError as exc:
            if exc.status != RPCStatusCode.ALREADY_EXISTS or attempt == SCHEDULE_UPDATE_ATTEMPTS:
                activity.logger.error(
                    "schedule %s/%s was deleted to re-encrypt its memo and could not be "
                    "created again (%s); `starter.py schedules apply` recreates it from the "
                    "settings", client.namespace, schedule_id, exc)
                raise
            # The deleted schedule's own workflow is still closing.
            await asyncio.sleep(0.2 * attempt)


async def _schedule_versions(client: Client, key: str) -> list[tuple[int, str]]:
    """(version, "namespace/schedule id") for every version of ``key`` a schedule carries:
    its memo, and the action's arguments, memo, header and summary/details."""
    found: list[tuple[int, str]] = []
    try:
        schedule_ids = [listed.id async for listed in await client.list_schedules()]
        for schedule_id in schedule_ids:
            try:
                described = await client.workflow_service.describe_schedule(
                    DescribeScheduleRequest(namespace=client.namespace,
                                            schedule_id=schedule_id))
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    continue  # deleted meanwhile
                raise
            holder = f"{client.namespace}/schedule {schedule_id}"
            found.extend((version, holder) for version in key_versions(described, key))
    except RPCError as exc:
        raise _Incomplete(f"schedules of namespace {client.namespace!r} cannot be read "
                          f"({exc.status.name}: {exc.message})") from exc
    return found


async def _start_event_versions(client: Client, executions: list[ListedExecution],
                                request: HistoryWindowRequest) -> list[tuple[int, str]]:
    """(version, holder) for the versions of the key in each execution's start event."""
    async def one(execution: ListedExecution) -> list[tuple[int, str]]:
        try:
            history = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=client.namespace, maximum_page_size=1,
                    execution=WorkflowExecution(workflow_id=execution.id,
                                                run_id=execution.run_id)))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return []  # deleted since it was listed: it holds nothing any more
            raise _Incomplete(f"the history of {client.namespace}/{execution.id} (run "
                              f"{execution.run_id}) cannot be read ({exc.status.name}: "
                              f"{exc.message})") from exc
        if not history.history.events:
            return []
        holder = (f"{client.namespace}/{execution.id} (run {execution.run_id}, started "
                  f"{execution.start_time:%Y-%m-%dT%H:%MZ})")
        return [(version, holder)
                for version in key_versions(history.history.events[0], request.key)
                if version >= request.from_version]

    results = await asyncio.gather(*(one(execution) for execution in executions),
                                   return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [item for result in results if not isinstance(result, BaseException)
            for item in result]


def _for_namespace(client: Client, namespace: str) -> Client:
    if client.namespace == namespace:
        return client
    config = client.config()
    config["namespace"] = namespace
    return Client(**config)


async def _first_blocking(client: Client, thresholds: list[datetime]
                          ) -> tuple[datetime, str] | None:
    """An execution still present that started before the lowest threshold it precedes.

    Thresholds ascend, so the first one anything precedes is where retirement stops; one
    such execution is enough to explain why. (Schedules are judged by the versions they
    carry, not by when they were written: an update need not re-encrypt every field.)
    """
    for threshold in thresholds:
        query = f'StartTime < "{_visibility_time(threshold)}"'
        counted = await client.count_workflows(query)
        if counted.count:
            async for execution in client.list_workflows(query, limit=1):
                return execution.start_time, execution.id
            return threshold - timedelta(microseconds=1), "<unlisted execution>"
    return None
