"""Rules of the floor's version scan (``DescribeHistoryWindow``) that mutation testing found
unpinned (bench/mutation.py, ``activities/temporal_history.py``).

The activity runs in an ``ActivityEnvironment`` against the real Temporal dev server.
Executions are started with no worker polling their task queue, so they stay present; their
payloads carry keyward's encrypted metadata naming a key and a version (the scan reads
metadata only, nothing is decrypted). Each test uses its own key name, so executions of
other tests in the shared namespaces never count. Where Temporal must fail a call (a list or
describe refused), the real client is wrapped so that one RPC answers an error; everything
else goes to the server.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import google.protobuf.message
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsResponse
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
)
from temporalio.converter import DataConverter, PayloadCodec
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode, ServiceClient
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.temporal_history import SCAN_CONCURRENCY, TemporalHistoryActivities
from keyward.contracts.history import HistoryWindow, HistoryWindowRequest
from tests.support import assert_eventually
from tests.trust_boundary.test_floor_follows_payload_versions import (
    _encrypted as encrypted_metadata,
)
from tests.trust_boundary.test_floor_follows_payload_versions import (
    in_namespace,
    register_namespace,
)


class VersionStamp(PayloadCodec):
    """Writes keyward's encrypted-payload metadata (key, version) on every payload."""

    def __init__(self, key: str, version: int) -> None:
        self.key, self.version = key, version

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        metadata = encrypted_metadata(self.key, str(self.version))
        return [Payload(metadata=metadata, data=p.data) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def stamping(client: Client, key: str, version: int) -> Client:
    config = client.config()
    config["data_converter"] = dataclasses.replace(DataConverter.default,
                                                   payload_codec=VersionStamp(key, version))
    return Client(**config)


#: What a faulty frontend answers for one RPC request: None passes it on to the server,
#: an RPCError is raised, anything else is returned as the response.
Answer = Callable[[google.protobuf.message.Message], Any]


class FaultyService(ServiceClient):
    """The real service client, except for the RPCs given an ``Answer``."""

    def __init__(self, inner: ServiceClient, answers: Mapping[str, Answer]) -> None:
        super().__init__(inner.config)
        self._inner, self._answers = inner, dict(answers)

    @property
    def worker_service_client(self) -> Any:
        return self._inner.worker_service_client

    def update_rpc_metadata(self, metadata: Mapping[str, str | bytes]) -> None:
        self._inner.update_rpc_metadata(metadata)

    def update_api_key(self, api_key: str | None) -> None:
        self._inner.update_api_key(api_key)

    async def _rpc_call(self, rpc: str, req: google.protobuf.message.Message,
                        resp_type: Any, **kwargs: Any) -> Any:
        answer = self._answers.get(rpc)
        outcome = answer(req) if answer is not None else None
        if isinstance(outcome, RPCError):
            raise outcome
        if outcome is not None:
            return outcome
        return await self._inner._rpc_call(rpc, req, resp_type, **kwargs)


def refuse(status: RPCStatusCode) -> Answer:
    return lambda _request: RPCError("refused by the test", status, b"")


def first_call_only(answer: Answer) -> Answer:
    seen: list[object] = []

    def once(request: google.protobuf.message.Message) -> Any:
        seen.append(request)
        return answer(request) if len(seen) == 1 else None

    return once


def faulty(client: Client, **answers: Answer) -> Client:
    config = client.config()
    config["service_client"] = FaultyService(client.service_client, answers)
    return Client(**config)


@pytest.fixture(scope="module")
async def shared(temporal_env: WorkflowEnvironment) -> tuple[str, str, str]:
    """Three namespaces shared by this module's tests; each test has its own key, and
    only the first two ever hold payloads (the third holds none of any test's key)."""
    return (await register_namespace(temporal_env.client),
            await register_namespace(temporal_env.client),
            await register_namespace(temporal_env.client))


@pytest.fixture
def key() -> str:
    return f"scan-{uuid.uuid4().hex[:10]}"


async def start(client: Client, namespace: str, key: str, version: int, *,
                count: int = 1) -> list[str]:
    """``count`` executions whose input is under ``key`` version ``version``; their ids."""
    scoped = stamping(in_namespace(client, namespace), key, version)
    ids = []
    for _ in range(count):
        workflow_id = f"v{version}-{uuid.uuid4().hex[:8]}"
        await scoped.start_workflow("Nothing", "input", id=workflow_id,
                                    task_queue=f"nobody-{uuid.uuid4()}")
        ids.append(workflow_id)
    return ids


async def listed(client: Client, namespace: str, workflow_ids: list[str]) -> None:
    """Wait until visibility lists every one of ``workflow_ids``."""
    scoped = in_namespace(client, namespace)

    async def visible() -> None:
        found = {execution.id async for execution in scoped.list_workflows()}
        assert set(workflow_ids) <= found

    await assert_eventually(visible, within=20, interval=0.2)


async def scan(client: Client, request: HistoryWindowRequest, *,
               scan_limit: int = 100_000) -> HistoryWindow:
    env = ActivityEnvironment(client=client)
    return await env.run(TemporalHistoryActivities(scan_limit=scan_limit)
                         .describe_history_window, request)


async def test_namespaces_and_key_are_required(temporal_client: Client) -> None:
    """No namespace or no key is a permanent InvalidRequest failure, not a window that
    found nothing (which would let the floor rise)."""
    for request in (HistoryWindowRequest(namespaces=[], key="k"),
                    HistoryWindowRequest(namespaces=["default"], key="")):
        with pytest.raises(ApplicationError) as caught:
            await scan(temporal_client, request)
        assert caught.value.type == "InvalidRequest"
        assert caught.value.non_retryable


async def test_the_lowest_version_at_or_above_the_floor_is_reported(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """Among the executions still present, the lowest version of the key at or above
    ``from_version`` is in use (versions below it are already unreadable), and the
    execution carrying it is named."""
    namespace = shared[0]
    ids = [*await start(temporal_client, namespace, key, 5),
           *(low := await start(temporal_client, namespace, key, 3)),
           *await start(temporal_client, namespace, key, 2)]
    await listed(temporal_client, namespace, ids)
    window = await scan(temporal_client, HistoryWindowRequest(
        namespaces=[namespace], key=key, from_version=3))
    assert window.incomplete is None
    assert window.oldest_version_in_use == 3
    assert window.version_in_use_by is not None
    assert window.version_in_use_by.startswith(f"{namespace}/{low[0]} (run ")
    other_key = await scan(temporal_client, HistoryWindowRequest(
        namespaces=[namespace], key=f"{key}-other"))
    assert other_key.oldest_version_in_use is None
    assert other_key.version_in_use_by is None


async def test_every_batch_of_start_events_is_read(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """More executions than are read at once: the versions in every batch count, the
    last partial batch included."""
    namespace = shared[0]
    ids = await start(temporal_client, namespace, key, 4, count=SCAN_CONCURRENCY)
    ids += await start(temporal_client, namespace, key, 2)
    await listed(temporal_client, namespace, ids)
    window = await scan(temporal_client, HistoryWindowRequest(namespaces=[namespace], key=key))
    assert window.oldest_version_in_use == 2


async def test_a_schedule_at_the_floor_version_holds_it(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """A schedule carrying exactly ``from_version`` holds it (it copies the payload into
    every run); one carrying a version below the floor is not reported."""
    namespace = shared[1]
    schedule_ids = []
    for version in (1, 2):
        schedule_id = f"scan-{version}-{uuid.uuid4().hex[:8]}"
        await stamping(in_namespace(temporal_client, namespace), key, version).create_schedule(
            schedule_id,
            Schedule(action=ScheduleActionStartWorkflow(
                "Nothing", "scheduled input", id=f"{schedule_id}-run",
                task_queue=f"nobody-{uuid.uuid4()}"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(paused=True)))
        schedule_ids.append(schedule_id)
    scoped = in_namespace(temporal_client, namespace)
    try:
        async def schedules_listed() -> None:
            found = {listed.id async for listed in await scoped.list_schedules()}
            assert set(schedule_ids) <= found

        await assert_eventually(schedules_listed, within=20, interval=0.2)
        window = await scan(temporal_client, HistoryWindowRequest(
            namespaces=[namespace], key=key, from_version=2))
        assert window.oldest_version_in_use == 2
        assert window.version_in_use_by == f"{namespace}/schedule {schedule_ids[1]}"
    finally:
        for schedule_id in schedule_ids:
            await scoped.get_schedule_handle(schedule_id).delete()


async def test_the_lowest_across_namespaces_wins(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """With several namespaces, the lowest version in any of them is in use, whichever
    namespace is listed first."""
    first, second, empty = shared
    ids_first = await start(temporal_client, first, key, 4)
    ids_second = await start(temporal_client, second, key, 3)
    await listed(temporal_client, first, ids_first)
    await listed(temporal_client, second, ids_second)
    for order in ([first, second], [second, first, empty], [empty, second, first]):
        window = await scan(temporal_client, HistoryWindowRequest(namespaces=order, key=key))
        assert window.oldest_version_in_use == 3
        assert window.version_in_use_by is not None
        assert window.version_in_use_by.startswith(f"{second}/{ids_second[0]} ")


async def test_an_undescribable_namespace_does_not_end_the_scan(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """A namespace that cannot be described makes the window incomplete, and the
    namespaces after it are still read (their retention and versions reported)."""
    missing = f"no-such-namespace-{uuid.uuid4().hex[:8]}"
    namespace = shared[0]
    await listed(temporal_client, namespace, await start(temporal_client, namespace, key, 2))
    window = await scan(temporal_client, HistoryWindowRequest(
        namespaces=[missing, namespace], key=key))
    assert window.incomplete is not None
    assert repr(missing) in window.incomplete
    assert window.oldest_version_in_use == 2
    assert window.retention_seconds == 86_400
    alone = await scan(temporal_client, HistoryWindowRequest(namespaces=[missing], key=key))
    assert alone.retention_seconds == 0
    assert alone.oldest_version_in_use is None


async def test_an_unlistable_namespace_keeps_the_floor_and_the_rest_is_read(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """If a namespace's executions cannot be listed, or its schedules cannot be read, the
    window is incomplete (naming the namespace); later namespaces are still read."""
    first, second, _ = shared
    await listed(temporal_client, second, await start(temporal_client, second, key, 2))
    for rpc, text in (("list_workflow_executions", "cannot be listed"),
                      ("list_schedules", "schedules of namespace")):
        broken = faulty(temporal_client, **{rpc: refuse(RPCStatusCode.UNAVAILABLE)})
        window = await scan(broken, HistoryWindowRequest(namespaces=[first], key=key))
        assert window.incomplete is not None, rpc
        assert text in window.incomplete
        assert repr(first) in window.incomplete
    both = await scan(faulty(temporal_client, list_schedules=refuse(RPCStatusCode.UNAVAILABLE)),
                      HistoryWindowRequest(namespaces=[first, second], key=key))
    assert both.incomplete is not None
    assert repr(second) in both.incomplete  # every namespace's schedules fail here
    fine = await scan(temporal_client, HistoryWindowRequest(namespaces=[first, second],
                                                            key=key))
    assert fine.incomplete is None
    assert fine.oldest_version_in_use == 2


async def test_a_start_event_that_cannot_be_read_keeps_the_floor(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """A history read refused (other than not-found) makes the window incomplete; a
    history not found (deleted since it was listed) holds nothing and is skipped."""
    namespace = shared[0]
    await listed(temporal_client, namespace, await start(temporal_client, namespace, key, 2))
    refused = await scan(
        faulty(temporal_client, get_workflow_execution_history=refuse(RPCStatusCode.UNAVAILABLE)),
        HistoryWindowRequest(namespaces=[namespace], key=key))
    assert refused.incomplete is not None
    assert "cannot be read" in refused.incomplete
    gone = await scan(
        faulty(temporal_client, get_workflow_execution_history=refuse(RPCStatusCode.NOT_FOUND)),
        HistoryWindowRequest(namespaces=[namespace], key=key))
    assert gone.incomplete is None
    assert gone.oldest_version_in_use is None


async def test_a_schedule_deleted_while_scanning_holds_nothing(
        temporal_client: Client, shared: tuple[str, str, str], key: str) -> None:
    """A schedule listed but not found when described (deleted meanwhile) is skipped and
    the schedules after it are still read; any other describe error makes the window
    incomplete."""
    namespace = shared[1]
    scoped = in_namespace(temporal_client, namespace)
    schedule_ids = [f"scan-gone-{n}-{uuid.uuid4().hex[:8]}" for n in range(2)]
    for schedule_id in schedule_ids:  # both carry v2: whichever is "deleted", one is left
        await stamping(scoped, key, 2).create_schedule(
            schedule_id, Schedule(action=ScheduleActionStartWorkflow(
                "Nothing", "x", id=f"{schedule_id}-run", task_queue=f"nobody-{uuid.uuid4()}"),
                spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
                state=ScheduleState(paused=True)))
    try:
        async def schedules_listed() -> None:
            found = {s.id async for s in await scoped.list_schedules()}
            assert set(schedule_ids) <= found

        await assert_eventually(schedules_listed, within=20, interval=0.2)
        request = HistoryWindowRequest(namespaces=[namespace], key=key)
        one_gone = await scan(faulty(temporal_client, describe_schedule=first_call_only(
            refuse(RPCStatusCode.NOT_FOUND))), request)
        assert one_gone.incomplete is None
        assert one_gone.oldest_version_in_use == 2
        all_gone = await scan(
            faulty(temporal_client, describe_schedule=refuse(RPCStatusCode.NOT_FOUND)), request)
        assert all_gone.incomplete is None
        assert all_gone.oldest_version_in_use is None
        refused = await scan(
            faulty(temporal_client, describe_schedule=refuse(RPCStatusCode.PERMISSION_DENIED)),
            request)
        assert refused.incomplete is not None
        assert "schedules of namespace" in refused.incomplete
    finally:
        for schedule_id in schedule_ids:
            await scoped.get_schedule_handle(schedule_id).delete()


async def test_the_scan_limit_is_exact(temporal_client: Client, key: str) -> None:
    """Exactly ``history_scan_limit`` executions are all read; one more makes the window
    incomplete rather than deciding on part of the namespace."""
    namespace = await register_namespace(temporal_client)
    ids = await start(temporal_client, namespace, key, 2, count=3)
    await listed(temporal_client, namespace, ids)
    request = HistoryWindowRequest(namespaces=[namespace], key=key)
    complete = await scan(temporal_client, request, scan_limit=3)
    assert complete.incomplete is None
    assert complete.oldest_version_in_use == 2
    over = await scan(temporal_client, request, scan_limit=2)
    assert over.incomplete is not None
    assert "more than 2 executions (rotation.history_scan_limit)" in over.incomplete


async def test_the_earliest_blocking_execution_explains_the_window(
        temporal_client: Client, key: str) -> None:
    """For ascending thresholds, the first one an execution still present started before
    is where retirement stops; the earliest such execution among the namespaces is named
    with its start time. Thresholds nothing precedes block nothing."""
    older, newer = (await register_namespace(temporal_client),
                    await register_namespace(temporal_client))
    early = await start(temporal_client, older, key, 1)
    await listed(temporal_client, older, early)
    between = datetime.now(UTC)
    late = await start(temporal_client, newer, key, 1)
    await listed(temporal_client, newer, late)
    after = datetime.now(UTC) + timedelta(seconds=1)
    before_all = between - timedelta(days=1)

    nothing = await scan(temporal_client, HistoryWindowRequest(
        namespaces=[older, newer], key=key, thresholds=[before_all]))
    assert nothing.oldest_execution_start is None
    assert nothing.oldest_execution is None

    for order in ([older, newer], [newer, older]):
        window = await scan(temporal_client, HistoryWindowRequest(
            namespaces=order, key=key, thresholds=[before_all, between, after]))
        assert window.oldest_execution == f"{older}/{early[0]}"
        assert window.oldest_execution_start is not None
        assert before_all < window.oldest_execution_start < between
    only_newer = await scan(temporal_client, HistoryWindowRequest(
        namespaces=[newer], key=key, thresholds=[before_all, between, after]))
    assert only_newer.oldest_execution == f"{newer}/{late[0]}"
    assert only_newer.oldest_execution_start is not None
    assert between < only_newer.oldest_execution_start < after


async def test_an_execution_counted_but_not_listed_still_blocks(
        temporal_client: Client, key: str) -> None:
    """Visibility may count an execution before it lists it (or after it stops listing
    it): the threshold still blocks, explained as an unlisted execution started just
    before it."""
    namespace = await register_namespace(temporal_client)
    await listed(temporal_client, namespace, await start(temporal_client, namespace, key, 1))
    threshold = datetime.now(UTC) + timedelta(seconds=1)
    lagging = faulty(temporal_client,
                     list_workflow_executions=lambda _request: ListWorkflowExecutionsResponse())
    window = await scan(lagging, HistoryWindowRequest(namespaces=[namespace], key=key,
                                                      thresholds=[threshold]))
    assert window.oldest_execution == f"{namespace}/<unlisted execution>"
    assert window.oldest_execution_start == threshold - timedelta(microseconds=1)
