"""A Cloud namespace's codec-server endpoint through keyward's CloudNamespaces service:
https:// only, the two switches written with it, the same values a no-op that sends
nothing, everything else in the spec kept."""

from __future__ import annotations

import pytest
from temporalio.api.cloud.namespace import v1 as namespace_pb

from keyward.cloud.names import InvalidCodecEndpoint
from keyward.cloud.ops import CloudOps
from keyward.contracts import failures
from keyward.contracts.cloud import CodecServerSetting
from keyward.services.cloud_namespaces import CloudNamespaces
from tests.emulators.cloud_ops import BILLING, ORDERS, CloudOpsEmulator

ENDPOINT = "https://codec.keyward.example/orders"


@pytest.fixture
def namespaces(ops: CloudOps) -> CloudNamespaces:
    return CloudNamespaces(ops)


async def test_setting_the_endpoint_writes_it_with_both_switches(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator) -> None:
    """Endpoint, pass_access_token and include_cross_origin_credentials as asked; the CA
    bundle and the rest of the spec as they were; the operation waited for."""
    before = emulator.namespace(ORDERS)
    change = await namespaces.set_codec_server(ORDERS, ENDPOINT, pass_access_token=True,
                                               include_cross_origin_credentials=True)
    assert change.changed
    assert change.summary == (
        f"codec server of orders.a1b2c set to {ENDPOINT} (pass access token: yes, include "
        "cross-origin credentials: yes) (was https://codec.example.com)")
    assert change.after.codec_server == CodecServerSetting(ENDPOINT, True, True)
    assert emulator.calls_to("GetAsyncOperation") >= 1
    after = emulator.namespace(ORDERS)
    assert after.spec.codec_server == namespace_pb.CodecServerSpec(
        endpoint=ENDPOINT, pass_access_token=True, include_cross_origin_credentials=True)
    assert after.spec.mtls_auth == before.spec.mtls_auth
    assert after.spec.retention_days == before.spec.retention_days


async def test_a_namespace_without_a_codec_server_gets_one(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator) -> None:
    change = await namespaces.set_codec_server(BILLING, ENDPOINT)
    assert change.changed
    assert change.summary.endswith("(was not set)")
    assert emulator.namespace(BILLING).spec.codec_server.endpoint == ENDPOINT


async def test_the_same_values_again_are_a_no_op_that_says_so(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator) -> None:
    """The sample namespace already has this endpoint with pass_access_token on: nothing is
    sent, and the summary says so."""
    emulator.reset_counts()
    change = await namespaces.set_codec_server(ORDERS, "https://codec.example.com",
                                               pass_access_token=True)
    assert not change.changed
    assert change.summary == (
        "the codec server of orders.a1b2c is already https://codec.example.com (pass access "
        "token: yes, include cross-origin credentials: no): nothing to change")
    assert emulator.calls_to("UpdateNamespace") == 0
    assert change.operation_id is None


@pytest.mark.parametrize(("pass_token", "credentials"), [(False, False), (True, True)])
async def test_a_different_switch_alone_is_a_change(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator, pass_token: bool,
        credentials: bool) -> None:
    """Same endpoint, a switch flipped: written (the comparison covers the switches)."""
    change = await namespaces.set_codec_server(ORDERS, "https://codec.example.com",
                                               pass_access_token=pass_token,
                                               include_cross_origin_credentials=credentials)
    assert change.changed
    spec = emulator.namespace(ORDERS).spec.codec_server
    assert (spec.pass_access_token, spec.include_cross_origin_credentials) == (
        pass_token, credentials)


@pytest.mark.parametrize(("endpoint", "problem"), [
    ("http://codec.example.com", "must be https://"),
    ("codec.example.com", "must be https://"),
    ("wss://codec.example.com", "must be https://"),
    ("https://", "has no host"),
    ("https://user:secret@codec.example.com", "user name or password"),
    ("https://codec.example.com/#x", "#fragment"),
    ("https://codec.example.com/ x", "white space"),
    ("https://codec.example.com:99999", "not a URL"),
    ("", "is empty"),
])
async def test_an_endpoint_that_is_not_https_is_refused_before_any_call(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator, endpoint: str,
        problem: str) -> None:
    emulator.reset_counts()
    with pytest.raises(InvalidCodecEndpoint, match=problem) as caught:
        await namespaces.set_codec_server(ORDERS, endpoint)
    assert (caught.value.failure_type, caught.value.retryable) == (
        failures.INVALID_CODEC_ENDPOINT, False)
    assert sum(emulator.calls.values()) == 0
