"""Contract: AppRole login (each test enables AppRole at its own random path).

Against real Vault these tests need a token allowed to enable auth methods;
without that they are skipped, not failed.
"""

from __future__ import annotations

from collections.abc import Callable

import hvac
import hvac.exceptions
import pytest


def _role(root_client: hvac.Client, mount: str, **settings: object) -> tuple[str, str]:
    root_client.auth.approle.create_or_update_approle("worker", mount_point=mount, **settings)
    role_id = root_client.auth.approle.read_role_id("worker", mount_point=mount)["data"]["role_id"]
    secret = root_client.auth.approle.generate_secret_id("worker", mount_point=mount)["data"]
    return str(role_id), str(secret["secret_id"])


def test_approle_login_issues_a_token_with_the_roles_policies_and_ttl(
    root_client: hvac.Client,
    auth_mount: Callable[[str], str],
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """Logging in with role ID and secret ID yields a working token shaped by the role."""
    mount = auth_mount("approle")
    role_id, secret_id = _role(
        root_client, mount, token_policies=["kw-worker"], token_ttl="20m", token_max_ttl="1h"
    )

    login = client_for(None).auth.approle.login(role_id, secret_id, mount_point=mount)["auth"]

    assert login["policies"] == ["default", "kw-worker"]
    assert login["lease_duration"] == 1200
    assert login["renewable"] is True
    assert login["metadata"] == {"role_name": "worker"}
    looked_up = client_for(login["client_token"]).auth.token.lookup_self()["data"]
    assert looked_up["path"] == f"auth/{mount}/login"


def test_approle_secret_id_generation_answers_its_accessor(
    root_client: hvac.Client, auth_mount: Callable[[str], str]
) -> None:
    """Generating a secret ID returns the secret ID and its accessor."""
    mount = auth_mount("approle")
    root_client.auth.approle.create_or_update_approle("worker", mount_point=mount)

    secret = root_client.auth.approle.generate_secret_id("worker", mount_point=mount)["data"]

    assert secret["secret_id"]
    assert secret["secret_id_accessor"]
    assert secret["secret_id"] != secret["secret_id_accessor"]


def test_approle_login_with_a_wrong_secret_id_is_400(
    root_client: hvac.Client,
    auth_mount: Callable[[str], str],
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A wrong secret ID is refused with 400 without saying which part was wrong."""
    mount = auth_mount("approle")
    role_id, _ = _role(root_client, mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client_for(None).auth.approle.login(role_id, "not-the-secret", mount_point=mount)


def test_approle_login_with_an_unknown_role_id_is_400(
    root_client: hvac.Client,
    auth_mount: Callable[[str], str],
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """An unknown role ID is refused with the same 400 as a wrong secret ID."""
    mount = auth_mount("approle")
    _, secret_id = _role(root_client, mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        client_for(None).auth.approle.login("no-such-role-id", secret_id, mount_point=mount)


def test_approle_secret_id_with_one_use_works_once(
    root_client: hvac.Client,
    auth_mount: Callable[[str], str],
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A secret ID limited to one use logs in once and is refused the second time."""
    mount = auth_mount("approle")
    role_id, secret_id = _role(root_client, mount, secret_id_num_uses=1)
    anonymous = client_for(None)
    anonymous.auth.approle.login(role_id, secret_id, mount_point=mount, use_token=False)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role or secret ID"):
        anonymous.auth.approle.login(role_id, secret_id, mount_point=mount, use_token=False)
