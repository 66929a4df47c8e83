"""The Cloud namespace activities, run as Temporal runs them (ActivityEnvironment) against the
emulator: thin adapters over CloudNamespaces whose untrusted inputs are held, before any Ops
API call, to Cloud's naming rule, the worker's cloud.namespaces and cloud.codec_endpoints,
and (for a change) encryption; removing a CA is no activity at all."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.cloud_namespaces import CloudNamespaceActivities
from keyward.cloud.ops import CloudOps
from keyward.config.cloud import CloudSettings
from keyward.contracts import ACTIVITIES, failures
from keyward.contracts.cloud import (
    CLOUD_ACTIVITIES,
    AddClientCAInput,
    CloudNamespaceChange,
    ReadCloudNamespaceInput,
    SetCodecServerInput,
)
from keyward.services.cloud_namespaces import CloudNamespaces
from tests.cloud.certs import new_ca, pem, sha256
from tests.emulators.cloud_ops import (
    BILLING,
    DEFAULT_API_KEY,
    ORDERS,
    CloudOpsEmulator,
    RunningCloudOps,
)
from tests.tls_material import CertificateAuthority

ALLOWED_ENDPOINT = "https://codec.keyward.example/orders"


class CountingConnect:
    """CloudOps.connect, counted: a refused input must not even read the API key file."""

    def __init__(self) -> None:
        self.count = 0

    async def __call__(self, settings: CloudSettings) -> CloudOps:
        self.count += 1
        return await CloudOps.connect(settings)


@pytest.fixture
def connect() -> CountingConnect:
    return CountingConnect()


@pytest.fixture
def activities(cloud_ops: RunningCloudOps, key_file: Path,
               connect: CountingConnect) -> CloudNamespaceActivities:
    settings = cloud_ops.settings(key_file, namespaces=(ORDERS,),
                                  codec_endpoints=(ALLOWED_ENDPOINT,))
    return CloudNamespaceActivities(settings, connect=connect)


async def run(fn: Callable[[Any], Awaitable[Any]], arg: object) -> Any:
    return await ActivityEnvironment().run(fn, arg)


async def refused(fn: Callable[[Any], Awaitable[Any]], arg: object) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(fn, arg)
    return caught.value


def assert_no_call(emulator: CloudOpsEmulator, connect: CountingConnect) -> None:
    assert sum(emulator.calls.values()) == 0, emulator.calls
    assert connect.count == 0


async def test_a_listed_namespace_is_read(activities: CloudNamespaceActivities,
                                          client_ca: CertificateAuthority) -> None:
    trust = await run(activities.read_namespace, ReadCloudNamespaceInput(ORDERS))
    assert [ca.fingerprint_sha256 for ca in trust.accepted_client_cas] == [sha256(client_ca)]


@pytest.mark.parametrize("name", ["orders", "ORDERS.A1B2C", "orders.a1b2c/../billing.a1b2c",
                                  "orders.a1b2c ", "", "orders.a1b2c%2f", "*",
                                  "orders.a1b2c\x00"])
async def test_a_bad_namespace_name_is_refused_before_any_rpc(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator,
        connect: CountingConnect, client_ca: CertificateAuthority, name: str) -> None:
    """Read, add and set alike: InvalidCloudNamespace, not retried, and no Ops API call
    (not even the API key read)."""
    emulator.reset_counts()
    for fn, arg in [
            (activities.read_namespace, ReadCloudNamespaceInput(name)),
            (activities.add_client_ca, AddClientCAInput(name, pem(client_ca), authenticated=True)),
            (activities.set_codec_server,
             SetCodecServerInput(name, ALLOWED_ENDPOINT, authenticated=True))]:
        error = await refused(fn, arg)
        assert (error.type, error.non_retryable) == (failures.INVALID_CLOUD_NAMESPACE, True)
    assert_no_call(emulator, connect)


async def test_a_namespace_not_in_the_settings_is_refused_before_any_rpc(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator,
        connect: CountingConnect) -> None:
    """billing.a1b2c exists and the API key could change it, but cloud.namespaces lists
    only orders.a1b2c: refused for reads and changes, nothing sent."""
    emulator.reset_counts()
    for fn, arg in [
            (activities.read_namespace, ReadCloudNamespaceInput(BILLING)),
            (activities.add_client_ca,
             AddClientCAInput(BILLING, pem(new_ca()), authenticated=True)),
            (activities.set_codec_server,
             SetCodecServerInput(BILLING, ALLOWED_ENDPOINT, authenticated=True))]:
        error = await refused(fn, arg)
        assert (error.type, error.non_retryable) == (failures.CLOUD_NAMESPACE_NOT_ALLOWED, True)
        assert "cloud.namespaces" in error.message
    assert_no_call(emulator, connect)


async def test_with_no_namespaces_configured_the_activities_touch_none(
        cloud_ops: RunningCloudOps, key_file: Path, emulator: CloudOpsEmulator,
        connect: CountingConnect) -> None:
    """The default (cloud.namespaces empty) refuses every namespace."""
    activities = CloudNamespaceActivities(cloud_ops.settings(key_file), connect=connect)
    emulator.reset_counts()
    error = await refused(activities.read_namespace, ReadCloudNamespaceInput(ORDERS))
    assert error.type == failures.CLOUD_NAMESPACE_NOT_ALLOWED
    assert_no_call(emulator, connect)


async def test_a_change_from_an_unencrypted_input_is_refused_before_any_rpc(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator,
        connect: CountingConnect) -> None:
    """Plain JSON (authenticated False, whatever it claimed: the worker's converter sets the
    flag) adds no CA and sets no endpoint: UnauthenticatedInput, not retried."""
    emulator.reset_counts()
    for fn, arg in [(activities.add_client_ca, AddClientCAInput(ORDERS, pem(new_ca()))),
                    (activities.set_codec_server, SetCodecServerInput(ORDERS, ALLOWED_ENDPOINT))]:
        error = await refused(fn, arg)
        assert (error.type, error.non_retryable) == (failures.UNAUTHENTICATED_INPUT, True)
    assert_no_call(emulator, connect)


async def test_an_authenticated_input_adds_a_ca_once(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator) -> None:
    """The first add writes; the same input again (a retried activity) is a no-op."""
    successor = new_ca()
    request = AddClientCAInput(ORDERS, pem(successor), authenticated=True)
    first: CloudNamespaceChange = await run(activities.add_client_ca, request)
    again: CloudNamespaceChange = await run(activities.add_client_ca, request)
    assert (first.changed, again.changed) == (True, False)
    assert "nothing to change" in again.summary
    assert emulator.calls_to("UpdateNamespace") == 1
    assert sha256(successor) in [ca.fingerprint_sha256 for ca in again.after.accepted_client_cas]


async def test_a_leaf_through_the_activity_is_refused_before_any_rpc(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority, connect: CountingConnect) -> None:
    emulator.reset_counts()
    leaf = client_ca.issue_client("worker").cert_pem().decode()
    error = await refused(activities.add_client_ca,
                          AddClientCAInput(ORDERS, leaf, authenticated=True))
    assert (error.type, error.non_retryable) == (failures.INVALID_CLIENT_CA, True)
    assert "not a CA certificate" in error.message
    assert sum(emulator.calls.values()) == 0


async def test_only_a_configured_codec_endpoint_is_set(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator,
        connect: CountingConnect) -> None:
    """An https endpoint the settings do not list (where Web UI users' tokens would go) is
    refused before any call; a listed one is set."""
    emulator.reset_counts()
    error = await refused(activities.set_codec_server, SetCodecServerInput(
        ORDERS, "https://collector.attacker.example", pass_access_token=True,
        authenticated=True))
    assert (error.type, error.non_retryable) == (failures.CLOUD_NAMESPACE_NOT_ALLOWED, True)
    assert "cloud.codec_endpoints" in error.message
    assert_no_call(emulator, connect)
    error = await refused(activities.set_codec_server, SetCodecServerInput(
        ORDERS, "http://codec.keyward.example/orders", authenticated=True))
    assert error.type == failures.INVALID_CODEC_ENDPOINT

    change: CloudNamespaceChange = await run(activities.set_codec_server, SetCodecServerInput(
        ORDERS, ALLOWED_ENDPOINT, pass_access_token=True, authenticated=True))
    assert change.changed
    assert emulator.namespace(ORDERS).spec.codec_server.endpoint == ALLOWED_ENDPOINT


async def test_cloud_failures_keep_their_type_and_retryability(
        activities: CloudNamespaceActivities, emulator: CloudOpsEmulator) -> None:
    """A failed operation is non-retryable with Cloud's reason; a namespace that kept
    changing is a retryable CloudOpsConflict (the next attempt reads again)."""
    emulator.operation_failure = "quota exceeded"
    error = await refused(activities.add_client_ca,
                          AddClientCAInput(ORDERS, pem(new_ca()), authenticated=True))
    assert (error.type, error.non_retryable) == (failures.CLOUD_OPS_OPERATION_FAILED, True)
    assert "quota exceeded" in error.message
    emulator.operation_failure = None
    emulator.interleave_writes(ORDERS, lambda spec: setattr(spec, "retention_days", 2))
    error = await refused(activities.add_client_ca,
                          AddClientCAInput(ORDERS, pem(new_ca()), authenticated=True))
    assert (error.type, error.non_retryable) == (failures.CLOUD_OPS_CONFLICT, False)
    assert DEFAULT_API_KEY not in error.message


async def test_the_client_is_made_once_for_every_call(
        activities: CloudNamespaceActivities, connect: CountingConnect) -> None:
    for _ in range(3):
        await run(activities.read_namespace, ReadCloudNamespaceInput(ORDERS))
    assert connect.count == 1


def test_no_activity_removes_a_ca() -> None:
    """Removal retires trust: only the operator command does it. No contract names a
    removal, and the activity class has no path to the service's removal methods."""
    assert not [c.name for c in ACTIVITIES if "remove" in c.name.lower()]
    assert {c.name for c in CLOUD_ACTIVITIES} == {
        "ReadCloudNamespace", "AddAcceptedClientCA", "SetNamespaceCodecServer"}
    source = inspect.getsource(CloudNamespaceActivities)
    removals = [name for name in dir(CloudNamespaces) if name.startswith("remove")]
    assert removals == ["remove_client_ca_pem", "remove_client_cas"]
    assert not [name for name in removals if name in source]
