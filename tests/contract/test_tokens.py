"""Contract: token authentication, creation, lookup, renewal, expiry and revocation."""

from __future__ import annotations

from collections.abc import Callable

import hvac
import hvac.exceptions
import pytest
import requests

from tests.contract.conftest import VaultTarget
from tests.contract.support import eventually


def test_wrong_token_is_forbidden(
    client_for: Callable[[str | None], hvac.Client], transit_mount: str
) -> None:
    """A token Vault never issued is refused with 403."""
    stranger = client_for("hvs.not-a-real-token")

    with pytest.raises(hvac.exceptions.Forbidden, match="permission denied"):
        stranger.secrets.transit.list_keys(mount_point=transit_mount)


def test_missing_token_is_forbidden(vault_target: VaultTarget, transit_mount: str) -> None:
    """A request without any token is refused with 403."""
    response = requests.post(
        f"{vault_target.url}/v1/{transit_mount}/keys/nobody",
        json={},
        verify=vault_target.verify,
        timeout=5,
    )

    assert response.status_code == 403


def test_bearer_authorization_header_is_accepted(vault_target: VaultTarget) -> None:
    """``Authorization: Bearer`` carries a token as well as ``X-Vault-Token`` does."""
    response = requests.get(
        f"{vault_target.url}/v1/auth/token/lookup-self",
        headers={"Authorization": f"Bearer {vault_target.token}"},
        verify=vault_target.verify,
        timeout=5,
    )

    assert response.status_code == 200
    assert response.json()["data"]["id"] == vault_target.token


def test_created_token_reports_its_ttl_and_policies(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """A created token carries the requested TTL and policies plus "default"."""
    created = root_client.auth.token.create(policies=["kw-reader"], ttl="1h")["auth"]

    looked_up = client_for(created["client_token"]).auth.token.lookup_self()["data"]

    assert created["lease_duration"] == 3600
    assert created["renewable"] is True
    assert created["policies"] == ["default", "kw-reader"]
    assert created["accessor"] == looked_up["accessor"]
    assert looked_up["policies"] == ["default", "kw-reader"]
    assert looked_up["creation_ttl"] == 3600
    assert 3590 <= looked_up["ttl"] <= 3600
    assert looked_up["expire_time"]
    assert looked_up["renewable"] is True


def test_renewal_is_capped_by_explicit_max_ttl(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """Renewing cannot extend a token past its explicit_max_ttl, and says so."""
    token = root_client.auth.token.create(ttl="60s", explicit_max_ttl="120s")["auth"][
        "client_token"
    ]

    renewed = client_for(token).auth.token.renew_self(increment="1h")

    assert 110 <= renewed["auth"]["lease_duration"] <= 120
    assert any("capped" in warning for warning in renewed["warnings"])


def test_renewal_extends_a_token(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """Renewing with an increment resets the TTL to that increment."""
    token = root_client.auth.token.create(ttl="30s")["auth"]["client_token"]
    client = client_for(token)

    renewed = client.auth.token.renew_self(increment="10m")

    assert renewed["auth"]["lease_duration"] == 600
    assert client.auth.token.lookup_self()["data"]["ttl"] > 500


def test_short_lived_token_expires(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """A 2-second token works, then is refused with 403 once it expires."""
    token = root_client.auth.token.create(ttl="2s")["auth"]["client_token"]
    client = client_for(token)
    assert client.auth.token.lookup_self()["data"]["ttl"] <= 2

    def refused() -> None:
        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return
        raise AssertionError("the token still works")

    eventually(refused, timeout=8, interval=0.25)


def test_revoked_token_is_refused(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """A token that revoked itself is refused afterwards."""
    token = root_client.auth.token.create(ttl="1h")["auth"]["client_token"]
    client = client_for(token)

    client.auth.token.revoke_self()

    with pytest.raises(hvac.exceptions.Forbidden):
        client.auth.token.lookup_self()


def test_revoking_a_token_revokes_its_children(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """Tokens a token created go away with it (they are not orphans)."""
    parent = client_for(root_client.auth.token.create(ttl="1h")["auth"]["client_token"])
    child = client_for(parent.auth.token.create(ttl="1h")["auth"]["client_token"])

    parent.auth.token.revoke_self()

    with pytest.raises(hvac.exceptions.Forbidden):
        child.auth.token.lookup_self()


def test_non_renewable_token_cannot_be_renewed(
    root_client: hvac.Client, client_for: Callable[[str | None], hvac.Client]
) -> None:
    """A token created with renewable=false refuses renewal."""
    token = root_client.auth.token.create(ttl="1h", renewable=False)["auth"]["client_token"]

    with pytest.raises(hvac.exceptions.InvalidRequest, match="not renewable"):
        client_for(token).auth.token.renew_self()


def test_root_token_never_expires(root_client: hvac.Client) -> None:
    """The root token reports no TTL and no expiry."""
    data = root_client.auth.token.lookup_self()["data"]
    if "root" not in data["policies"]:
        pytest.skip("VAULT_TOKEN is not a root token")

    assert data["ttl"] == 0
    assert data["expire_time"] is None
