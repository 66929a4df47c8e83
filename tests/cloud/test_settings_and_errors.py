"""The [cloud] settings section, the pinned API version, and the one status → error table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from temporalio.api.cloud.cloudservice.v1 import service_pb2_grpc
from temporalio.api.cloud.region import v1 as region
from temporalio.service import RPCError, RPCStatusCode

from keyward.cloud import errors
from keyward.cloud.errors import (
    ERROR_BY_STATUS,
    CloudOpsConflict,
    CloudOpsError,
    CloudOpsInvalidRequest,
    CloudOpsNothingToChange,
    CloudOpsUnavailable,
    connect_error,
    error_class_for_status,
    map_rpc_error,
)
from keyward.config import Settings, load_settings
from keyward.config.cloud import DEFAULT_API_VERSION, CloudSettings
from keyward.contracts import failures
from keyward.errors import ConfigError


def test_the_defaults_reach_temporal_cloud_over_tls_with_the_pinned_version() -> None:
    """Nothing configured: saas-api.tmprl.cloud:443, TLS, v0.17.0, no key file yet."""
    settings = Settings().cloud
    assert (settings.target, settings.tls, settings.api_version) == (
        "saas-api.tmprl.cloud:443", True, DEFAULT_API_VERSION)
    assert settings.api_key_file is None


def test_the_section_loads_from_toml_and_the_environment(tmp_path: Path) -> None:
    """[cloud] in the file, KEYWARD_CLOUD__* over it; the named files must exist."""
    key = tmp_path / "key"
    key.write_text("k")
    config = tmp_path / "keyward.toml"
    config.write_text(f'[cloud]\napi_key_file = "{key}"\nhost = "ops.proxy.internal"\n'
                      'timeout_seconds = 3\n')
    settings = load_settings(config, env={"KEYWARD_CLOUD__PORT": "8443",
                                          "KEYWARD_CLOUD__API_VERSION": "v0.16.0"}).cloud
    assert (settings.api_key_file, settings.target, settings.timeout_seconds,
            settings.api_version) == (key, "ops.proxy.internal:8443", 3.0, "v0.16.0")
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"KEYWARD_CLOUD__API_KEY_FILE": str(tmp_path / "gone")})
    assert caught.value.setting == "cloud.api_key_file"


@pytest.mark.parametrize(("values", "setting", "problem"), [
    ({"api_version": "latest"}, "cloud.api_version", "api-cloud release"),
    ({"host": "https://saas-api.tmprl.cloud"}, "cloud.host", "without scheme or port"),
    ({"host": "saas-api.tmprl.cloud:443"}, "cloud.host", "without scheme or port"),
    ({"port": 0}, "cloud.port", "TCP port"),
    ({"port": True}, "cloud.port", "must be a number"),
    ({"timeout_seconds": 0}, "cloud.timeout_seconds", "greater than 0"),
    ({"operation_poll_seconds": -1}, "cloud.operation_poll_seconds", "greater than 0"),
    ({"api_key": "tmprl-abc"}, "cloud.api_key", "unknown setting"),
    ({"namespaces": ["orders"]}, "cloud.namespaces", "not a Temporal Cloud namespace"),
    ({"namespaces": ["Orders.a1b2c"]}, "cloud.namespaces", "not a Temporal Cloud namespace"),
    ({"codec_endpoints": ["http://codec.example.com"]}, "cloud.codec_endpoints",
     "must be https://"),
])
def test_a_bad_value_is_a_config_error_naming_the_setting(
        values: dict[str, object], setting: str, problem: str) -> None:
    """Built directly or through Settings, the error names cloud.<setting>."""
    with pytest.raises(ConfigError) as direct:
        CloudSettings(**values)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as nested:
        Settings(cloud=values)  # type: ignore[arg-type]
    for caught in (direct, nested):
        assert caught.value.setting == setting
        assert problem in caught.value.problem


def test_the_namespaces_and_codec_endpoints_activities_may_touch_are_lists(
        tmp_path: Path) -> None:
    """Empty by default (the activities then touch nothing); from TOML as arrays and from the
    environment comma-separated, each value held to its rule."""
    assert (CloudSettings().namespaces, CloudSettings().codec_endpoints) == ((), ())
    config = tmp_path / "keyward.toml"
    config.write_text('[cloud]\nnamespaces = ["orders.a1b2c", "billing.a1b2c"]\n')
    settings = load_settings(config, env={
        "KEYWARD_CLOUD__CODEC_ENDPOINTS": "https://codec.example.com/a, https://codec.example.com/b"
    }).cloud
    assert settings.namespaces == ("orders.a1b2c", "billing.a1b2c")
    assert settings.codec_endpoints == ("https://codec.example.com/a",
                                        "https://codec.example.com/b")
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"KEYWARD_CLOUD__NAMESPACES": "orders.a1b2c,../x"})
    assert caught.value.setting == "cloud.namespaces"
    assert CloudSettings(namespaces="orders.a1b2c").namespaces == (  # type: ignore[arg-type]
        "orders.a1b2c",)


def test_settings_derive_with_replace_and_validate_again() -> None:
    """dataclasses.replace works as for every other section, and re-checks."""
    settings = dataclasses.replace(CloudSettings(), host="127.0.0.1", tls=False)
    assert settings.target == "127.0.0.1:443"
    with pytest.raises(ConfigError):
        dataclasses.replace(settings, port=70000)


def test_the_pinned_version_is_the_one_the_sdk_protos_are_built_from() -> None:
    """v0.17.0 added the *NamespaceAssignments RPCs; v0.17.1 added the Azure cloud provider.
    When a temporalio upgrade brings newer protos this fails: raise DEFAULT_API_VERSION with
    it, so a whole-spec write never drops a field the pinned version has."""
    rpcs = set(dir(service_pb2_grpc.CloudServiceServicer))
    assert {"GetUserNamespaceAssignments", "GetServiceAccountNamespaceAssignments"} <= rpcs
    assert "CLOUD_PROVIDER_AZURE" not in region.Region.CloudProvider.keys()  # noqa: SIM118 - an enum wrapper, not a dict
    assert DEFAULT_API_VERSION == "v0.17.0"


@pytest.mark.parametrize("status", list(RPCStatusCode))
def test_one_table_decides_every_status(status: RPCStatusCode) -> None:
    """Unavailable, deadline, rate limit, server errors and conflicts are retried; every
    refusal and every status the table does not list are not."""
    cls = error_class_for_status(status)
    transient = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED,
                 RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.INTERNAL,
                 RPCStatusCode.UNKNOWN, RPCStatusCode.DATA_LOSS, RPCStatusCode.ABORTED}
    assert cls.retryable is (status in transient), cls
    assert cls is ERROR_BY_STATUS.get(status, CloudOpsError)


def test_failed_precondition_is_a_conflict_only_on_a_write() -> None:
    """A stale version may come back FAILED_PRECONDITION; on a read it stays a refusal."""
    assert error_class_for_status(RPCStatusCode.FAILED_PRECONDITION, write=True) \
        is CloudOpsConflict
    assert error_class_for_status(RPCStatusCode.FAILED_PRECONDITION) is CloudOpsInvalidRequest
    assert error_class_for_status(RPCStatusCode.ABORTED) is CloudOpsConflict


def test_the_cores_own_deadline_and_nothing_to_change_are_recognised() -> None:
    """The core reports keyward's deadline as CANCELLED "Timeout expired" (unavailable, so
    retried); a CANCELLED for any other reason is not; "nothing to change" has its type."""
    timeout = map_rpc_error(RPCError("Timeout expired", RPCStatusCode.CANCELLED, b""), "get x")
    assert isinstance(timeout, CloudOpsUnavailable)
    assert timeout.status == RPCStatusCode.DEADLINE_EXCEEDED
    cancelled = map_rpc_error(RPCError("cancelled", RPCStatusCode.CANCELLED, b""), "get x")
    assert type(cancelled) is CloudOpsError
    assert not cancelled.retryable
    nothing = map_rpc_error(RPCError("Nothing to change", RPCStatusCode.INVALID_ARGUMENT, b""),
                            "update namespace", write=True)
    assert isinstance(nothing, CloudOpsNothingToChange)
    assert str(nothing) == ("Cloud Ops API update namespace failed (INVALID_ARGUMENT): "
                            "Nothing to change")


def test_only_the_cores_connect_failure_is_an_unavailable_endpoint() -> None:
    """"Failed client connect" is CloudOpsUnavailable; any other RuntimeError stays a bug."""
    mapped = connect_error(RuntimeError("Failed client connect: refused"), "get x", "h:1")
    assert isinstance(mapped, CloudOpsUnavailable)
    assert "cannot connect to h:1" in str(mapped)
    assert connect_error(RuntimeError("event loop is closed"), "get x", "h:1") is None


def test_every_error_class_has_a_documented_failure_type() -> None:
    """Each CloudOps error class carries one of keyward.contracts.failures' names, its own."""
    classes = [value for value in vars(errors).values()
               if isinstance(value, type) and issubclass(value, CloudOpsError)]
    types = [cls.failure_type for cls in classes]
    assert len(classes) == 12
    assert len(set(types)) == len(types)
    assert set(types) <= set(failures.all_failure_types().values())
