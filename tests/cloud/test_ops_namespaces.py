"""Namespaces and async operations through keyward's CloudOps against the emulator: the CA
bundle and codec server read and written back with the whole spec, resource_version
conflicts, operations waited for and their failures reported."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import grpc
import pytest
from temporalio.api.cloud.namespace import v1 as namespace_pb

from keyward.cloud.errors import (
    CloudOpsConflict,
    CloudOpsError,
    CloudOpsInvalidRequest,
    CloudOpsNotFound,
    CloudOpsNothingToChange,
    CloudOpsOperationFailed,
    CloudOpsOperationTimeout,
)
from keyward.cloud.models import CloudNamespace, CodecServer, OperationState
from keyward.cloud.ops import CloudOps
from keyward.contracts import failures
from keyward.temporal.failures import to_application_error
from tests.emulators.cloud_ops import BILLING, ORDERS, CloudOpsEmulator, RunningCloudOps
from tests.support import assert_eventually
from tests.tls_material import CertificateAuthority


def other_ca_pem() -> str:
    return CertificateAuthority.create(f"another CA {uuid.uuid4().hex[:6]}").cert_pem().decode()


async def test_a_namespace_is_read_with_its_version_ca_bundle_and_codec_server(
        ops: CloudOps, emulator: CloudOpsEmulator, client_ca: CertificateAuthority) -> None:
    """get_namespace: resource_version, the accepted CAs as PEM, the codec-server setting."""
    namespace = await ops.get_namespace(ORDERS)
    assert namespace.name == ORDERS
    assert namespace.resource_version == emulator.namespace(ORDERS).resource_version
    assert namespace.accepted_client_ca_pem == client_ca.cert_pem().decode()
    assert namespace.mtls_enabled
    assert namespace.codec_server == CodecServer("https://codec.example.com",
                                                 pass_access_token=True,
                                                 include_cross_origin_credentials=False)
    assert (await ops.get_namespace(BILLING)).codec_server is None


async def test_a_base64_bundle_from_older_writers_reads_as_pem(
        ops: CloudOps, emulator: CloudOpsEmulator, client_ca: CertificateAuthority) -> None:
    """tcld and older Terraform stored base64 of the PEM in the bytes field; it reads the
    same, and a bundle that is neither is an error, not a silently empty trust list."""
    emulator.add_namespace("legacy.a1b2c",
                           accepted_client_ca=base64.b64encode(client_ca.cert_pem()))
    assert (await ops.get_namespace("legacy.a1b2c")).accepted_client_ca_pem == \
        client_ca.cert_pem().decode()
    emulator.add_namespace("garbled.a1b2c", accepted_client_ca=b"not a certificate")
    with pytest.raises(CloudOpsError, match="neither PEM nor base64"):
        _ = (await ops.get_namespace("garbled.a1b2c")).accepted_client_ca_pem


async def test_an_unknown_namespace_is_not_found(ops: CloudOps) -> None:
    """NOT_FOUND is CloudOpsNotFound, permanent."""
    with pytest.raises(CloudOpsNotFound) as caught:
        await ops.get_namespace("missing.a1b2c")
    assert (caught.value.retryable, caught.value.failure_type) == (
        False, failures.CLOUD_OPS_NOT_FOUND)


async def test_an_update_writes_the_whole_spec_and_is_waited_for(
        ops: CloudOps, emulator: CloudOpsEmulator, client_ca: CertificateAuthority) -> None:
    """A new CA bundle and codec setting are written with every other field as read, and
    wait_operation returns once Cloud says fulfilled."""
    before = emulator.namespace(ORDERS)
    bundle = client_ca.cert_pem().decode() + other_ca_pem()
    namespace = await ops.get_namespace(ORDERS)
    edited = namespace.with_accepted_client_ca(bundle).with_codec_server(
        CodecServer("https://codec.keyward.example/orders", pass_access_token=True,
                    include_cross_origin_credentials=True))
    assert namespace.accepted_client_ca_pem == client_ca.cert_pem().decode()  # a copy changed
    started = await ops.update_namespace(edited)
    assert started.state is OperationState.PENDING
    done = await ops.wait_operation(started.id)
    assert (done.id, done.state) == (started.id, OperationState.FULFILLED)

    after = emulator.namespace(ORDERS)
    assert after.spec.mtls_auth.accepted_client_ca == bundle.encode()  # raw PEM, as cloud-cli
    assert after.spec.codec_server == namespace_pb.CodecServerSpec(
        endpoint="https://codec.keyward.example/orders", pass_access_token=True,
        include_cross_origin_credentials=True)
    for kept in ("name", "regions", "retention_days", "search_attributes"):
        assert getattr(after.spec, kept) == getattr(before.spec, kept), kept
    assert after.resource_version != before.resource_version
    reread = await ops.get_namespace(ORDERS)
    assert reread.accepted_client_ca_pem == bundle
    assert reread.state == "active"


async def test_an_operation_goes_pending_then_in_progress_then_fulfilled(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """get_operation reports each state of the operation's life as Cloud does."""
    emulator.operation_delay = 0.6
    namespace = await ops.get_namespace(ORDERS)
    started = await ops.update_namespace(namespace.with_codec_server(None))
    assert (await ops.get_operation(started.id)).state is OperationState.PENDING
    assert (await ops.get_namespace(ORDERS)).state == "updating"

    async def in_progress() -> None:
        assert (await ops.get_operation(started.id)).state is OperationState.IN_PROGRESS

    await assert_eventually(in_progress, within=2)
    assert (await ops.wait_operation(started.id)).state is OperationState.FULFILLED
    assert (await ops.get_namespace(ORDERS)).codec_server is None


@pytest.mark.parametrize("code", [grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION])
async def test_a_stale_resource_version_is_a_conflict_a_reread_resolves(
        ops: CloudOps, emulator: CloudOpsEmulator, code: grpc.StatusCode) -> None:
    """Another writer moved the namespace on: the write is CloudOpsConflict (its own type,
    retryable) whichever of the two statuses Cloud uses, nothing is written, and the same
    change on a fresh read goes through."""
    emulator.conflict_code = code
    namespace = await ops.get_namespace(ORDERS)
    emulator.modify_namespace(ORDERS, lambda spec: setattr(spec, "retention_days", 7))
    with pytest.raises(CloudOpsConflict) as caught:
        await ops.update_namespace(namespace.with_codec_server(None))
    assert caught.value.retryable
    assert caught.value.failure_type == failures.CLOUD_OPS_CONFLICT
    assert not to_application_error(caught.value).non_retryable
    assert emulator.namespace(ORDERS).spec.HasField("codec_server")

    fresh = await ops.get_namespace(ORDERS)
    await ops.wait_operation((await ops.update_namespace(fresh.with_codec_server(None))).id)
    after = emulator.namespace(ORDERS)
    assert not after.spec.HasField("codec_server")
    assert after.spec.retention_days == 7  # the other writer's change survived


async def test_a_failed_operation_is_reported_with_its_reason(
        ops: CloudOps, emulator: CloudOpsEmulator, client_ca: CertificateAuthority) -> None:
    """An operation Cloud fails raises CloudOpsOperationFailed naming the reason; it is not
    retried, and the namespace keeps its old CAs."""
    emulator.operation_failure = "certificate chain could not be validated"
    namespace = await ops.get_namespace(ORDERS)
    started = await ops.update_namespace(namespace.with_accepted_client_ca(other_ca_pem()))
    with pytest.raises(CloudOpsOperationFailed) as caught:
        await ops.wait_operation(started.id)
    assert "certificate chain could not be validated" in str(caught.value)
    assert (caught.value.state, caught.value.operation_id) == ("failed", started.id)
    assert not caught.value.retryable
    assert caught.value.failure_type == failures.CLOUD_OPS_OPERATION_FAILED
    assert (await ops.get_namespace(ORDERS)).accepted_client_ca_pem == \
        client_ca.cert_pem().decode()


async def test_an_operation_still_running_at_the_deadline_is_a_retryable_timeout(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """Past the timeout, wait_operation stops with CloudOpsOperationTimeout (retryable: the
    operation goes on in Cloud) saying where it was."""
    emulator.operation_delay = 30
    started = await ops.update_namespace((await ops.get_namespace(ORDERS)).with_codec_server(None))
    with pytest.raises(CloudOpsOperationTimeout, match="still pending") as caught:
        await ops.wait_operation(started.id, timeout=0.2)
    assert caught.value.retryable
    assert caught.value.failure_type == failures.CLOUD_OPS_OPERATION_TIMEOUT


async def test_waiting_rides_out_transient_errors(ops: CloudOps,
                                                  emulator: CloudOpsEmulator) -> None:
    """UNAVAILABLE and RESOURCE_EXHAUSTED while polling do not end the wait."""
    started = await ops.update_namespace((await ops.get_namespace(ORDERS)).with_codec_server(None))
    emulator.reset_counts()
    emulator.unavailable_calls, emulator.rate_limited_calls = 2, 1
    assert (await ops.wait_operation(started.id)).state is OperationState.FULFILLED
    assert emulator.calls_to("GetAsyncOperation") >= 4


async def test_waiting_stops_at_once_on_a_permanent_error(ops: CloudOps,
                                                          emulator: CloudOpsEmulator) -> None:
    """An unknown operation id is not waited for: one call, CloudOpsNotFound."""
    emulator.reset_counts()
    with pytest.raises(CloudOpsNotFound):
        await ops.wait_operation("no-such-operation", timeout=5)
    assert emulator.calls_to("GetAsyncOperation") == 1


async def test_an_update_that_changes_nothing_is_its_own_refusal(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """Cloud's INVALID_ARGUMENT "nothing to change" is CloudOpsNothingToChange, permanent."""
    namespace = await ops.get_namespace(ORDERS)
    with pytest.raises(CloudOpsNothingToChange) as caught:
        await ops.update_namespace(namespace)
    assert not caught.value.retryable
    assert caught.value.failure_type == failures.CLOUD_OPS_NOTHING_TO_CHANGE
    assert isinstance(caught.value, CloudOpsInvalidRequest)
    assert emulator.namespace(ORDERS).resource_version == namespace.resource_version


async def test_a_retried_write_with_its_operation_id_is_not_applied_twice(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """Sending the same write again with the same async_operation_id (a retry after a lost
    answer) returns the first operation instead of a conflict."""
    namespace = (await ops.get_namespace(ORDERS)).with_codec_server(None)
    first = await ops.update_namespace(namespace, async_operation_id="op-retry-1")
    version = emulator.namespace(ORDERS).resource_version
    again = await ops.update_namespace(namespace, async_operation_id="op-retry-1")
    assert again.id == first.id == "op-retry-1"
    assert emulator.namespace(ORDERS).resource_version == version


@pytest.mark.parametrize(("poll_seconds", "check_duration"), [(5.0, 0.02), (0.02, 5.0)],
                         ids=["cloud-suggests-sooner", "setting-caps-cloud"])
async def test_polling_takes_the_shorter_of_the_setting_and_clouds_suggestion(
        cloud_ops: RunningCloudOps, emulator: CloudOpsEmulator, key_file: Path,
        poll_seconds: float, check_duration: float) -> None:
    """An operation of 0.2 s is seen done well within a second whichever of the two is long:
    neither Cloud's check_duration nor cloud.operation_poll_seconds alone sets the pace."""
    emulator.check_duration = check_duration
    ops = await CloudOps.connect(cloud_ops.settings(key_file, operation_poll_seconds=poll_seconds))
    started = await ops.update_namespace((await ops.get_namespace(ORDERS)).with_codec_server(None))
    began = time.monotonic()
    await ops.wait_operation(started.id)
    assert time.monotonic() - began < 1.0


async def test_every_write_carries_an_operation_id(ops: CloudOps,
                                                   emulator: CloudOpsEmulator) -> None:
    """Without one given, keyward sends a fresh UUID (so a retry can be told apart)."""
    started = await ops.update_namespace((await ops.get_namespace(ORDERS)).with_codec_server(None))
    assert uuid.UUID(started.id)
    assert started.id in emulator.operations


async def test_a_partial_spec_would_be_refused(ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """The emulator refuses a spec that drops what it does not change, as a guard that
    keyward always writes the spec it read (here a hand-built one, to prove the guard)."""
    namespace = await ops.get_namespace(ORDERS)
    partial = CloudNamespace(namespace.name, namespace.resource_version,
                             namespace_pb.NamespaceSpec(mtls_auth=namespace.spec.mtls_auth))
    with pytest.raises(CloudOpsInvalidRequest, match="whole spec"):
        await ops.update_namespace(partial)


@pytest.mark.parametrize(("bundle", "problem"), [
    ("-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n", "private key"),
    ("hello", "not PEM certificates"),
])
async def test_a_bundle_that_is_not_certificates_is_refused_before_sending(
        ops: CloudOps, emulator: CloudOpsEmulator, bundle: str, problem: str) -> None:
    """A private key (pasted by mistake) or junk never leaves keyward."""
    namespace = await ops.get_namespace(ORDERS)
    emulator.reset_counts()
    with pytest.raises(CloudOpsInvalidRequest, match=problem):
        namespace.with_accepted_client_ca(bundle)
    assert emulator.calls_to("UpdateNamespace") == 0


async def test_a_codec_endpoint_cloud_refuses_is_a_permanent_error(ops: CloudOps) -> None:
    """Cloud's INVALID_ARGUMENT (an http:// endpoint) is CloudOpsInvalidRequest, not retried."""
    namespace = await ops.get_namespace(ORDERS)
    with pytest.raises(CloudOpsInvalidRequest, match="https") as caught:
        await ops.update_namespace(namespace.with_codec_server(CodecServer("http://x")))
    assert not caught.value.retryable
