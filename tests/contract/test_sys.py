"""Contract: health, mounting and unmounting secrets engines, and the HTTP conventions."""

from __future__ import annotations

import uuid

import hvac
import hvac.exceptions
import pytest
import requests

from tests.contract.conftest import VaultTarget
from tests.contract.support import b64


def test_health_reports_initialized_and_unsealed(root_client: hvac.Client) -> None:
    """sys/health answers 200 without a token, initialized and unsealed."""
    health = root_client.sys.read_health_status(method="GET")

    assert health["initialized"] is True
    assert health["sealed"] is False
    assert health["standby"] is False
    assert health["version"]


def test_health_needs_no_token(vault_target: VaultTarget) -> None:
    """sys/health is served to a client without any token."""
    response = requests.get(
        f"{vault_target.url}/v1/sys/health", verify=vault_target.verify, timeout=5
    )

    assert response.status_code == 200


def test_transit_mounts_at_a_nested_custom_path(root_client: hvac.Client) -> None:
    """Transit can be enabled at a nested path and used there."""
    path = f"kw-{uuid.uuid4().hex[:8]}/nested/transit"
    root_client.sys.enable_secrets_engine("transit", path=path)
    try:
        root_client.secrets.transit.create_key("k", mount_point=path)
        reply = root_client.secrets.transit.encrypt_data("k", b64(b"x"), mount_point=path)

        assert reply["data"]["ciphertext"].startswith("vault:v1:")
        assert f"{path}/" in root_client.sys.list_mounted_secrets_engines()["data"]
    finally:
        root_client.sys.disable_secrets_engine(path)


def test_mounting_over_an_existing_path_is_400(root_client: hvac.Client) -> None:
    """Enabling an engine where one is already mounted is refused."""
    path = f"kw-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("transit", path=path)
    try:
        with pytest.raises(hvac.exceptions.InvalidRequest, match="path is already in use"):
            root_client.sys.enable_secrets_engine("transit", path=path)
    finally:
        root_client.sys.disable_secrets_engine(path)


def test_disabled_mount_no_longer_routes(root_client: hvac.Client) -> None:
    """After disabling a mount its paths have no handler (404)."""
    path = f"kw-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("transit", path=path)
    root_client.secrets.transit.create_key("k", mount_point=path)

    root_client.sys.disable_secrets_engine(path)

    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.transit.read_key("k", mount_point=path)


def test_remounting_starts_without_the_old_keys(root_client: hvac.Client) -> None:
    """Disabling a mount drops its keys; mounting the path again starts empty."""
    path = f"kw-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("transit", path=path)
    root_client.secrets.transit.create_key("k", mount_point=path)
    root_client.sys.disable_secrets_engine(path)

    root_client.sys.enable_secrets_engine("transit", path=path)
    try:
        with pytest.raises(hvac.exceptions.InvalidPath):
            root_client.secrets.transit.read_key("k", mount_point=path)
    finally:
        root_client.sys.disable_secrets_engine(path)


def test_unknown_mount_path_is_404(root_client: hvac.Client) -> None:
    """A path under no mount is a 404 naming the route."""
    with pytest.raises(hvac.exceptions.InvalidPath, match="no handler for route"):
        root_client.secrets.transit.read_key("k", mount_point=f"kw-nothing-{uuid.uuid4().hex[:8]}")


def test_wrong_method_on_a_transit_path_is_405(
    vault_target: VaultTarget, transit_mount: str
) -> None:
    """A served path used with an operation it does not support answers 405."""
    response = requests.get(
        f"{vault_target.url}/v1/{transit_mount}/encrypt/anything",
        headers={"X-Vault-Token": vault_target.token},
        verify=vault_target.verify,
        timeout=5,
    )

    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"


def test_malformed_json_body_is_400(vault_target: VaultTarget, transit_mount: str) -> None:
    """A request body that is not JSON is refused with 400."""
    response = requests.post(
        f"{vault_target.url}/v1/{transit_mount}/encrypt/anything",
        data=b"{not json",
        headers={"X-Vault-Token": vault_target.token, "Content-Type": "application/json"},
        verify=vault_target.verify,
        timeout=5,
    )

    assert response.status_code == 400
    assert response.json()["errors"]


def test_list_as_get_with_list_parameter(vault_target: VaultTarget, transit_mount: str) -> None:
    """GET with ?list=true lists, for clients that cannot send the LIST method."""
    client = hvac.Client(url=vault_target.url, token=vault_target.token, verify=vault_target.verify)
    client.secrets.transit.create_key("listed", mount_point=transit_mount)
    client.adapter.close()

    response = requests.get(
        f"{vault_target.url}/v1/{transit_mount}/keys?list=true",
        headers={"X-Vault-Token": vault_target.token},
        verify=vault_target.verify,
        timeout=5,
    )

    assert response.status_code == 200
    assert "listed" in response.json()["data"]["keys"]
