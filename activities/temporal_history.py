"""Activities about what Temporal still holds: retention, old executions, schedule inputs.

The decryption floor may rise only when no payload under the old key version can
still be in Temporal. Temporal knows: each namespace's retention (DescribeNamespace)
and, through visibility, whether any execution that started before a given time
is still present (running, or closed within retention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity
from temporalio.api.common.v1 import Payload
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from keyward.codec.format import PayloadFormatError, is_encrypted, parse_header
from keyward.codec.transit_codec import VaultTransitCodec
from keyward.errors import KeywardError


@dataclass(frozen=True)
class HistoryWindowRequest:
    #: Every namespace whose payloads use the key.
    namespaces: list[str]
    #: Candidate thresholds, ascending: "is any execution that started before T still here?"
    thresholds: list[datetime] = field(default_factory=list)


@dataclass(frozen=True)
class HistoryWindow:
    #: The longest retention among the namespaces.
    retention_seconds: int
    #: Start time of an execution still present that started before the lowest blocked
    #: threshold (None: no threshold is blocked), and where it lives, for the explanation.
    oldest_execution_start: datetime | None = None
    oldest_execution: str | None = None


def _visibility_time(when: datetime) -> str:
    return when.astimezone().isoformat()


@dataclass(frozen=True)
class RewrapSchedulesRequest:
    namespaces: list[str]
    key: str
    latest_version: int


@dataclass(frozen=True)
class RewrapSchedulesResult:
    #: "namespace/schedule-id" of every schedule whose stored input was re-encrypted.
    updated: list[str]


class TemporalHistoryActivities:
    """Uses the worker's own client (``activity.client()``), so a certificate reload applies."""

    @activity.defn(name="DescribeHistoryWindow")
    async def describe_history_window(self, request: HistoryWindowRequest) -> HistoryWindow:
        client = activity.client()
        retention = timedelta(0)
        oldest: tuple[datetime, str] | None = None
        for namespace in request.namespaces:
            try:
                described = await client.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=namespace))
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    continue  # no such namespace: no history to protect in it
                raise
            retention = max(retention, described.config.workflow_execution_retention_ttl
                            .ToTimedelta())
            found = await _first_blocking(_for_namespace(client, namespace), request.thresholds,
                                          await _schedule_writes(_for_namespace(client,
                                                                                namespace)))
            if found is not None and (oldest is None or found[0] < oldest[0]):
                oldest = (found[0], f"{namespace}/{found[1]}")
        if not request.namespaces:
            raise ApplicationError("no namespaces given", type="InvalidRequest",
                                   non_retryable=True)
        return HistoryWindow(retention_seconds=int(retention.total_seconds()),
                             oldest_execution_start=oldest[0] if oldest else None,
                             oldest_execution=oldest[1] if oldest else None)


    @activity.defn(name="RewrapScheduleInputs")
    async def rewrap_schedule_inputs(
            self, request: RewrapSchedulesRequest) -> RewrapSchedulesResult:
        """Re-encrypt schedule inputs stored under older versions of ``key``.

        A schedule keeps the encrypted workflow input it was created with and sends it
        with every run, so it would hold an old version alive forever. This works at the
        payload level (decrypt, encrypt again under the latest version), so it needs no
        knowledge of the workflows' argument types.
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
            ns_codec = codec.for_namespace(namespace)
            try:
                schedules = [listed async for listed in await scoped.list_schedules()]
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    continue  # no such namespace: nothing stored there
                raise
            for listed in schedules:
                handle = scoped.get_schedule_handle(listed.id)
                described = await handle.describe()
                action = described.schedule.action
                if not isinstance(action, ScheduleActionStartWorkflow) or not action.args:
                    continue
                payloads = [arg for arg in action.args if isinstance(arg, Payload)]
                if not any(_stale(p, request.key, request.latest_version) for p in payloads):
                    continue
                try:
                    fresh = await ns_codec.encode(await ns_codec.decode(payloads))
                except KeywardError as exc:
                    # Left as it is, it keeps blocking the floor, which is the safe outcome.
                    activity.logger.warning("cannot re-encrypt input of schedule %s/%s: %s",
                                            namespace, listed.id, exc)
                    continue
                action.args = fresh

                def replace(_: ScheduleUpdateInput, schedule: Schedule = described.schedule
                            ) -> ScheduleUpdate:
                    return ScheduleUpdate(schedule=schedule)

                await handle.update(replace)
                updated.append(f"{namespace}/{listed.id}")
                activity.heartbeat(len(updated))
        return RewrapSchedulesResult(updated=updated)


def _stale(payload: Payload, key: str, latest_version: int) -> bool:
    if not is_encrypted(payload):
        return False
    try:
        header = parse_header(payload)
    except PayloadFormatError:
        return False
    return header.key == key and header.key_version < latest_version


async def _schedule_writes(client: Client) -> list[tuple[datetime, str]]:
    """When each schedule's stored input was last written (created or updated)."""
    writes: list[tuple[datetime, str]] = []
    async for listed in await client.list_schedules():
        info = (await client.get_schedule_handle(listed.id).describe()).info
        written = info.last_updated_at or info.created_at
        writes.append((written, f"schedule {listed.id}"))
    return writes


def _for_namespace(client: Client, namespace: str) -> Client:
    if client.namespace == namespace:
        return client
    config = client.config()
    config["namespace"] = namespace
    return Client(**config)


async def _first_blocking(client: Client, thresholds: list[datetime],
                          schedule_writes: list[tuple[datetime, str]]
                          ) -> tuple[datetime, str] | None:
    """Something still present that holds payloads from before the lowest threshold.

    An execution that started before it, or a schedule whose stored input was written
    before it. Thresholds ascend, so the first one anything precedes is where
    retirement stops; one such thing is enough to explain why.
    """
    for threshold in thresholds:
        older = [write for write in schedule_writes if write[0] < threshold]
        if older:
            return min(older)
        query = f'StartTime < "{_visibility_time(threshold)}"'
        counted = await client.count_workflows(query)
        if counted.count:
            async for execution in client.list_workflows(query, limit=1):
                return execution.start_time, execution.id
            return threshold - timedelta(microseconds=1), "<unlisted execution>"
    return None
