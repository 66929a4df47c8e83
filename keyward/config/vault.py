"""The ``[vault]`` section: how to reach and authenticate to Vault, and where Transit is.

Also read from Vault's own variables (``VAULT_ADDR``, ``VAULT_TOKEN``, ...; see
``keyward.config.loading``). Which credentials an auth method needs is checked where the
client is built (``keyward.vault.auth``), not here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import model_validator

from keyward.config.network import insecure_http
from keyward.config.section import settings_class
from keyward.config.values import (
    ConfigPath,
    Flag,
    HttpUrl,
    MaybePath,
    MaybeSecret,
    MaybeText,
    Mount,
    Positive,
    files_exist,
)


@settings_class("vault")
class VaultSettings:
    """How to reach and authenticate to Vault, and where Transit is mounted."""

    address: HttpUrl = "http://127.0.0.1:8200"
    namespace: MaybeText = None
    ca_cert: MaybePath = None
    timeout_seconds: Positive = 10.0
    auth_method: Literal["token", "approle", "kubernetes"] = "token"
    token: MaybeSecret = None
    approle_mount: Mount = "approle"
    approle_role_id: MaybeText = None
    approle_secret_id: MaybeSecret = None
    kubernetes_mount: Mount = "kubernetes"
    kubernetes_role: MaybeText = None
    kubernetes_jwt_path: ConfigPath = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    transit_mount: Mount = "transit"
    #: Allow ``address`` to be plain http:// to a host other than this machine. Off: the
    #: Vault token (and every payload in direct mode) would cross the network in clear.
    #: For a dev Vault on a private container network (deploy/compose) only.
    allow_insecure_http: Flag = False

    @model_validator(mode="after")
    def _transport(self) -> Self:
        # Which credentials an auth method needs is checked where the client is built
        # (keyward.vault.auth): with --dev the token only exists once the dev server runs.
        insecure_http("address", self.address, self.allow_insecure_http,
                      "vault.allow_insecure_http")
        return self

    def check_files(self) -> None:
        files_exist("vault", self, "ca_cert")
