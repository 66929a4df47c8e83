"""Vault authentication methods: static token, AppRole and Kubernetes.

Each method knows how to obtain a token (``login``) and whether it can obtain a
fresh one when renewal is no longer possible (``can_relogin``). A static token
cannot: when it stops being renewable the process keeps using it until Vault
refuses it, and says so in the logs well before.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import hvac

from keyward.config import VaultSettings
from keyward.errors import ConfigError
from keyward.secrets import REGISTRY, Secret
from keyward.vault.errors import vault_errors


@dataclass(frozen=True)
class TokenLease:
    """What Vault said about the token we hold."""

    ttl_seconds: int  # 0 = never expires (root or periodic without TTL)
    renewable: bool


class VaultAuthMethod(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def can_relogin(self) -> bool: ...

    def login(self, client: hvac.Client) -> TokenLease:
        """Authenticate and set ``client.token``."""
        ...


def _lease_from_auth(response: dict[str, Any]) -> TokenLease:
    auth = response["auth"]
    REGISTRY.add(auth["client_token"])
    return TokenLease(ttl_seconds=int(auth.get("lease_duration") or 0),
                      renewable=bool(auth.get("renewable")))


def lookup_self(client: hvac.Client) -> TokenLease:
    with vault_errors("token lookup-self"):
        data = client.auth.token.lookup_self()["data"]
    return TokenLease(ttl_seconds=int(data.get("ttl") or 0), renewable=bool(data.get("renewable")))


@dataclass(frozen=True)
class TokenAuth:
    token: Secret
    name: str = "token"

    @property
    def can_relogin(self) -> bool:
        return False

    def login(self, client: hvac.Client) -> TokenLease:
        client.token = self.token.reveal()
        # lookup-self both proves the token works and tells us its TTL.
        return lookup_self(client)


@dataclass(frozen=True)
class AppRoleAuth:
    role_id: str
    secret_id: Secret
    mount: str = "approle"
    name: str = "approle"

    @property
    def can_relogin(self) -> bool:
        return True

    def login(self, client: hvac.Client) -> TokenLease:
        with vault_errors("approle login"):
            response = client.auth.approle.login(
                role_id=self.role_id, secret_id=self.secret_id.reveal(), mount_point=self.mount
            )
        return _lease_from_auth(response)


@dataclass(frozen=True)
class KubernetesAuth:
    """Logs in with the pod's service-account token, re-read at every login.

    Projected service-account tokens are rotated by the kubelet, so the file is
    read each time rather than once at start.
    """

    role: str
    jwt_path: Path
    mount: str = "kubernetes"
    name: str = "kubernetes"

    @property
    def can_relogin(self) -> bool:
        return True

    def login(self, client: hvac.Client) -> TokenLease:
        try:
            jwt = self.jwt_path.read_text().strip()
        except OSError as exc:
            raise ConfigError("vault.kubernetes_jwt_path",
                              f"cannot read service-account token {self.jwt_path}: "
                              f"{exc.strerror}") from None
        REGISTRY.add(jwt)
        with vault_errors("kubernetes login"):
            response = client.auth.kubernetes.login(role=self.role, jwt=jwt,
                                                    mount_point=self.mount)
        return _lease_from_auth(response)


def auth_from_settings(settings: VaultSettings) -> VaultAuthMethod:
    """The auth method the settings ask for, with its required values checked."""
    if settings.auth_method == "approle":
        if not settings.approle_role_id:
            raise ConfigError("vault.approle_role_id", "required when vault.auth_method='approle'")
        if not settings.approle_secret_id:
            raise ConfigError("vault.approle_secret_id",
                              "required when vault.auth_method='approle'")
        return AppRoleAuth(settings.approle_role_id, settings.approle_secret_id,
                           mount=settings.approle_mount)
    if settings.auth_method == "kubernetes":
        if not settings.kubernetes_role:
            raise ConfigError("vault.kubernetes_role",
                              "required when vault.auth_method='kubernetes'")
        return KubernetesAuth(settings.kubernetes_role, settings.kubernetes_jwt_path,
                              mount=settings.kubernetes_mount)
    if not settings.token:
        raise ConfigError("vault.token", "required when vault.auth_method='token' "
                          "(set VAULT_TOKEN or KEYWARD_VAULT__TOKEN)")
    return TokenAuth(settings.token)
