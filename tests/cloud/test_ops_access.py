"""How keyward's CloudOps reaches the Ops API: the API key from a file (rotated at run time),
the pinned API version, TLS, one connection, each fault mapped to its failure type, and the
key never in a log line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from keyward.cloud.errors import (
    CloudOpsError,
    CloudOpsInvalidRequest,
    CloudOpsPermissionDenied,
    CloudOpsRateLimited,
    CloudOpsUnauthenticated,
    CloudOpsUnavailable,
)
from keyward.cloud.ops import CloudOps
from keyward.config.cloud import DEFAULT_API_VERSION as KEYWARD_DEFAULT_API_VERSION
from keyward.config.cloud import CloudSettings
from keyward.contracts import failures
from keyward.errors import ConfigError
from keyward.temporal.failures import to_application_error
from keyward_devstack.processes import free_port
from tests.emulators.cloud_ops import (
    ALL,
    DEFAULT_API_KEY,
    DEFAULT_API_VERSION,
    ORDERS,
    CloudOpsEmulator,
    RunningCloudOps,
    serve,
)
from tests.tls_material import make_server_tls

ROTATED_KEY = "tmprl-emulator-api-key-1-rotated"


def rewrite(path: Path, text: str) -> None:
    """What a secret manager's agent does to the key file (small and local: no thread)."""
    path.write_text(text)


def last_call(emulator: CloudOpsEmulator) -> tuple[str, str | None, str | None]:
    seen = emulator.seen[-1]
    return seen.method, seen.api_key, seen.api_version


async def test_the_key_file_is_reread_when_it_changes(
        ops: CloudOps, emulator: CloudOpsEmulator, key_file: Path) -> None:
    """Rotation without a restart: once the old key is revoked it is refused; after the file
    is rewritten, the very next call carries the new key and succeeds."""
    await ops.get_namespace(ORDERS)
    assert last_call(emulator)[1] == DEFAULT_API_KEY
    emulator.api_keys = {ROTATED_KEY}  # Cloud now knows only the new key
    with pytest.raises(CloudOpsUnauthenticated) as caught:
        await ops.get_namespace(ORDERS)
    assert not caught.value.retryable
    assert caught.value.failure_type == failures.CLOUD_OPS_UNAUTHENTICATED
    assert last_call(emulator)[1] == DEFAULT_API_KEY

    rewrite(key_file, ROTATED_KEY + "\n")
    assert (await ops.get_namespace(ORDERS)).name == ORDERS
    assert last_call(emulator) == ("GetNamespace", ROTATED_KEY, DEFAULT_API_VERSION)


async def test_a_key_file_being_rewritten_keeps_the_current_key(
        ops: CloudOps, emulator: CloudOpsEmulator, key_file: Path) -> None:
    """An empty file (a writer halfway through) is refused once; calls go on with the key
    they had, and the next real content is taken."""
    rewrite(key_file, "   \n")
    with capture_logs() as logs:
        await ops.get_namespace(ORDERS)
        await ops.get_namespace(ORDERS)
    assert [entry["event"] for entry in logs] == [
        "cloud ops api key refused; keeping the current one"]
    assert "cloud.api_key_file" in logs[0]["error"]
    assert last_call(emulator)[1] == DEFAULT_API_KEY
    emulator.api_keys.add(ROTATED_KEY)
    rewrite(key_file, ROTATED_KEY)
    await ops.get_namespace(ORDERS)
    assert last_call(emulator)[1] == ROTATED_KEY


async def test_a_missing_or_empty_key_file_is_a_settings_error_at_connect(
        cloud_ops: RunningCloudOps, tmp_path: Path) -> None:
    """No file, an empty one, or no setting at all: ConfigError naming cloud.api_key_file."""
    with pytest.raises(ConfigError, match=r"cloud\.api_key_file: cannot read"):
        await CloudOps.connect(cloud_ops.settings(tmp_path / "absent"))
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigError, match=r"cloud\.api_key_file: .*empty is empty"):
        await CloudOps.connect(cloud_ops.settings(tmp_path / "empty"))
    with pytest.raises(ConfigError, match=r"cloud\.api_key_file: required"):
        await CloudOps.connect(CloudSettings())


async def test_every_call_carries_the_pinned_api_version(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """temporal-cloud-api-version is the pinned version on every RPC keyward makes."""
    namespace = await ops.get_namespace(ORDERS)
    await ops.get_user_by_email("owner@example.com")
    await ops.wait_operation((await ops.update_namespace(namespace.with_codec_server(None))).id)
    assert {seen.method for seen in emulator.seen} == {
        "GetNamespace", "GetUsers", "UpdateNamespace", "GetAsyncOperation"}
    assert {seen.api_version for seen in emulator.seen} == {DEFAULT_API_VERSION}
    assert KEYWARD_DEFAULT_API_VERSION == DEFAULT_API_VERSION


async def test_a_version_cloud_does_not_accept_is_a_permanent_error(
        cloud_ops: RunningCloudOps, emulator: CloudOpsEmulator, key_file: Path) -> None:
    """Cloud answers an unknown version INVALID_ARGUMENT; keyward does not retry it. The
    setting decides what is sent."""
    ops = await CloudOps.connect(cloud_ops.settings(key_file, api_version="v0.99.0"))
    with pytest.raises(CloudOpsInvalidRequest, match="API version specified is invalid") as caught:
        await ops.get_namespace(ORDERS)
    assert not caught.value.retryable
    emulator.api_versions.add("v0.99.0")
    await ops.get_namespace(ORDERS)
    assert last_call(emulator)[2] == "v0.99.0"


def _unavailable(emulator: CloudOpsEmulator) -> None:
    emulator.unavailable_calls = 1


def _rate_limited(emulator: CloudOpsEmulator) -> None:
    emulator.rate_limited_calls = 1


def _slow(emulator: CloudOpsEmulator) -> None:
    emulator.call_delay = 1.0  # longer than the 0.3 s deadline below


def _denied(emulator: CloudOpsEmulator) -> None:
    emulator.denied_methods = {"GetNamespace"}


def _revoked(emulator: CloudOpsEmulator) -> None:
    emulator.api_keys = {"some-other-key"}


@pytest.mark.parametrize(("fault", "expected", "failure_type", "retryable"), [
    (_unavailable, CloudOpsUnavailable, failures.CLOUD_OPS_UNAVAILABLE, True),
    (_rate_limited, CloudOpsRateLimited, failures.CLOUD_OPS_RATE_LIMITED, True),
    (_slow, CloudOpsUnavailable, failures.CLOUD_OPS_UNAVAILABLE, True),
    (_denied, CloudOpsPermissionDenied, failures.CLOUD_OPS_PERMISSION_DENIED, False),
    (_revoked, CloudOpsUnauthenticated, failures.CLOUD_OPS_UNAUTHENTICATED, False),
], ids=["unavailable", "rate-limited", "deadline", "permission-denied", "unauthenticated"])
async def test_each_fault_maps_to_its_failure_type(
        cloud_ops: RunningCloudOps, emulator: CloudOpsEmulator, key_file: Path,
        fault: Callable[[CloudOpsEmulator], None], expected: type[CloudOpsError],
        failure_type: str, retryable: bool) -> None:
    """Unavailable, rate-limited and too slow are retried; denied and unauthenticated are
    not, and an activity's ApplicationError says the same."""
    ops = await CloudOps.connect(cloud_ops.settings(key_file, timeout_seconds=0.3))
    fault(emulator)
    with pytest.raises(CloudOpsError) as caught:
        await ops.get_namespace(ORDERS)
    assert type(caught.value) is expected
    assert (caught.value.failure_type, caught.value.retryable) == (failure_type, retryable)
    converted = to_application_error(caught.value)
    assert (converted.type, converted.non_retryable) == (failure_type, not retryable)
    assert "get namespace" in str(caught.value)


@pytest.mark.parametrize("attribute", ["unavailable_calls", "rate_limited_calls"])
async def test_a_counted_fault_passes_and_the_next_call_succeeds(
        ops: CloudOps, emulator: CloudOpsEmulator, attribute: str) -> None:
    """Nothing in keyward retries on its own: N faulty answers are N failed calls, and the
    call after them goes through."""
    setattr(emulator, attribute, 2)
    for _ in range(2):
        with pytest.raises(CloudOpsError):
            await ops.get_namespace(ORDERS)
    assert (await ops.get_namespace(ORDERS)).name == ORDERS
    assert emulator.calls_to("GetNamespace") == 3


async def test_denying_every_method_denies_writes_too(ops: CloudOps,
                                                      emulator: CloudOpsEmulator) -> None:
    """A read-only key: reads pass, UpdateNamespace is PERMISSION_DENIED, permanent."""
    namespace = await ops.get_namespace(ORDERS)
    emulator.denied_methods = {ALL}
    with pytest.raises(CloudOpsPermissionDenied):
        await ops.update_namespace(namespace.with_codec_server(None))


async def test_an_unreachable_endpoint_is_unavailable(key_file: Path) -> None:
    """Nobody listening: CloudOpsUnavailable naming the address, retryable; the client was
    still built (connecting waits for the first call), so a process can start without Cloud."""
    target_port = free_port()
    ops = await CloudOps.connect(CloudSettings(api_key_file=key_file, host="127.0.0.1",
                                               port=target_port, tls=False))
    with pytest.raises(CloudOpsUnavailable, match=f"127.0.0.1:{target_port}") as caught:
        await ops.get_namespace(ORDERS)
    assert caught.value.retryable


async def test_one_connection_serves_every_call(ops: CloudOps,
                                                emulator: CloudOpsEmulator) -> None:
    """Sequential and concurrent calls all travel over one connection."""
    for _ in range(5):
        await ops.get_namespace(ORDERS)
    await asyncio.gather(*(ops.get_user_by_email("owner@example.com") for _ in range(20)))
    assert emulator.calls_to("GetUsers") == 20
    assert len(emulator.peers) == 1, emulator.peers


async def test_tls_with_a_private_ca(emulator: CloudOpsEmulator, key_file: Path,
                                     tmp_path: Path) -> None:
    """tls_server_ca is trusted for the endpoint; without it the system roots refuse the
    test server's certificate (an error, not plain text)."""
    async with serve(emulator, tls=make_server_tls(tmp_path / "tls")) as running:
        ops = await CloudOps.connect(running.settings(key_file))
        assert (await ops.get_namespace(ORDERS)).name == ORDERS
        untrusting = await CloudOps.connect(running.settings(key_file, tls_server_ca=None))
        with pytest.raises(CloudOpsUnavailable, match="cannot connect"):
            await untrusting.get_namespace(ORDERS)


async def test_plain_text_is_only_for_a_loopback_host(key_file: Path) -> None:
    """tls = false to Cloud (or anything off this machine) is refused: the key would travel
    in clear."""
    with pytest.raises(ConfigError, match=r"cloud\.tls: plain text to saas-api\.tmprl\.cloud"):
        await CloudOps.connect(CloudSettings(api_key_file=key_file, tls=False))


async def test_the_api_key_never_reaches_a_log_line_or_an_error(
        cloud_ops: RunningCloudOps, emulator: CloudOpsEmulator, key_file: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Through connect, calls, a refused key, rotation and a refused rewrite, neither key
    appears in keyward's log events (before redaction), the SDK's log records or any
    error's text."""
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    with capture_logs() as logs:
        ops = await CloudOps.connect(cloud_ops.settings(key_file))
        await ops.get_namespace(ORDERS)
        emulator.api_keys = {ROTATED_KEY}
        for _ in range(2):
            try:
                await ops.get_namespace(ORDERS)
            except CloudOpsError as error:
                errors.append(repr(error) + str(error))
        rewrite(key_file, ROTATED_KEY)
        await ops.get_namespace(ORDERS)
        rewrite(key_file, "")
        await ops.get_namespace(ORDERS)
    events = [entry["event"] for entry in logs]
    assert events == ["cloud ops api key reloaded",
                      "cloud ops api key refused; keeping the current one"]
    assert len(errors) == 2
    for secret in (DEFAULT_API_KEY, ROTATED_KEY):
        assert secret not in repr(logs)
        assert secret not in caplog.text
        assert all(secret not in text for text in errors)
