"""The ``[certificate_authorities.<name>]`` tables: CAs keyward rotates.

A CA table says where the CA lives (``backend``), the subject and lifetime of a successor,
the trust bundles every process that trusts the CA reads, how long the new bundle soaks
before issuance switches, and how long the old CA stays trusted after the switch.
Everything that decides when trust is withdrawn is here, in the operator's settings, never
in a workflow's input.

The backends and what each needs (the rest of the backend keys are refused):

* ``local``: keyward's CA files ``ca_cert``/``ca_key`` (the same paths the ``local-ca``
  certificates give, which is how keyward knows the leaves the CA signs);
* ``vault-pki``: the issuers of the Vault PKI mount ``vault_pki_mount`` (its leaves: the
  ``vault-pki`` certificates on that mount). The successor is a new root in that mount, or,
  with ``vault_pki_parent_mount``, an intermediate signed by that mount's default issuer;
* ``azure-keyvault``: a CA certificate in the Key Vault ``azure_vault_url`` named
  ``azure_certificate_name`` (its leaves: ``azure-keyvault`` certificates with
  ``azure_mode = "key-vault-ca"`` naming this CA in ``azure_ca``). Each successor is a
  new certificate named ``<azure_certificate_name>-<UTC time>`` (see
  ``keyward/authorities/azure_keyvault.py`` for why a new name, not a new version).

``state_dir`` holds the rotation's bookkeeping for every backend; it defaults to
``rotation/`` beside ``ca_cert`` for ``local`` and must be given for the others.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Final, Literal, Self
from urllib.parse import urlparse

from pydantic import AfterValidator, model_validator

from keyward.cloud.names import check_namespace_name
from keyward.config.section import settings_class
from keyward.config.values import (
    ConfigPath,
    Flag,
    MaybeMount,
    MaybePath,
    MaybeText,
    NonEmpty,
    Positive,
    checked_by,
)
from keyward.config_errors import problem
from keyward.errors import KeywardError

KeyType = Literal["ec-p256", "rsa-2048", "rsa-4096"]
Backend = Literal["local", "vault-pki", "azure-keyvault"]

#: A Key Vault certificate name (1-127 letters, digits, dashes) with room for the
#: ``-YYYYMMDDTHHMMSSZ`` (17 characters) a successor's name adds.
_KEY_VAULT_BASE_NAME: Final = re.compile(r"[0-9A-Za-z-]{1,110}")
#: The keys each backend takes; any other backend's key is refused.
BACKEND_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "local": ("ca_cert", "ca_key"),
    "vault-pki": ("vault_pki_mount", "vault_pki_parent_mount"),
    "azure-keyvault": ("azure_vault_url", "azure_certificate_name", "azure_exportable"),
}
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "local": ("ca_cert", "ca_key"),
    "vault-pki": ("vault_pki_mount", "state_dir"),
    "azure-keyvault": ("azure_vault_url", "azure_certificate_name", "state_dir"),
}


def _distinct(paths: tuple[Path, ...]) -> tuple[Path, ...]:
    if len(set(paths)) != len(paths):
        raise ValueError("each trust bundle is listed once")
    return paths


def _cloud_names(names: tuple[str, ...]) -> str | None:
    for name in names:
        try:
            check_namespace_name(name)
        except KeywardError as exc:
            return str(exc)
    return None


def _key_vault_url(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme != "https" or not parsed.hostname or parsed.path not in ("", "/") \
            or parsed.query or parsed.fragment or parsed.username or parsed.password:
        return "must be a vault's https:// URL (https://<name>.vault.azure.net), nothing after it"
    return None


def _key_vault_base_name(value: str) -> str | None:
    if not _KEY_VAULT_BASE_NAME.fullmatch(value):
        return ("must be a Key Vault certificate name: 1-110 letters, digits and dashes "
                "(a successor adds 17 characters, Key Vault allows 127)")
    return None


@settings_class("")
class CertificateAuthoritySettings:
    """One CA that ``RotateCertificateAuthority`` may replace."""

    #: Where the CA lives: "local" (keyward's CA files), "vault-pki" (a Vault PKI mount's
    #: issuers) or "azure-keyvault" (a CA certificate in Azure Key Vault).
    backend: Backend = "local"
    #: local: the active CA, what ``issuer = "local-ca"`` certificates with the same paths
    #: sign with.
    ca_cert: MaybePath = None
    ca_key: MaybePath = None
    #: vault-pki: the mount whose default issuer is the CA; ``<mount>/issue/<role>`` leaves
    #: come from it, and activating the successor makes it the default issuer.
    vault_pki_mount: MaybeMount = None
    #: vault-pki: unset, the successor is a new root; set, an intermediate signed by this
    #: mount's default issuer (``<parent>/root/sign-intermediate``).
    vault_pki_parent_mount: MaybeMount = None
    #: azure-keyvault: the vault (``https://<name>.vault.azure.net``) and the name of the
    #: CA certificate the rotation starts from.
    azure_vault_url: Annotated[MaybeText, checked_by(_key_vault_url)] = None
    azure_certificate_name: Annotated[MaybeText, checked_by(_key_vault_base_name)] = None
    #: azure-keyvault: whether a successor's key may leave Key Vault (then keyward signs
    #: with the exported key); false keeps it there and every signature is Key Vault's.
    azure_exportable: Flag = False
    #: The successor's subject common name (the old CA's is kept when unset).
    common_name: NonEmpty | None = None
    lifetime_days: Positive = 3650.0
    key_type: KeyType = "ec-p256"
    #: PEM files every process that trusts this CA reads (the Temporal server's
    #: ``clientCaFiles``, the worker's ``temporal.tls_server_ca``, the codec server's
    #: ``tls_client_ca``, a gateway's client CA): each gets old + new during a rotation.
    trust_bundles: Annotated[tuple[ConfigPath, ...], AfterValidator(_distinct)] = ()
    #: Temporal Cloud namespaces (``<name>.<account>``) whose accepted client CAs trust this
    #: CA: each gets the successor added, and later the old CA removed, through the Cloud
    #: Ops API of the ``[cloud]`` section (its key needs Namespace Admin on them).
    trust_cloud_namespaces: Annotated[tuple[str, ...], checked_by(_cloud_names)] = ()
    #: How long the old + new bundle is given to reach every process before issuance
    #: switches to the new CA (reload intervals, config-map propagation, rollouts).
    soak_seconds: Positive = 600.0
    #: After the switch the old CA stays trusted for the longest lifetime of a leaf it
    #: signed plus this, so no leaf still in use is ever untrusted.
    grace_hours: Positive = 24.0
    #: The rotation's bookkeeping (the run doing it, when issuance switched, the replaced
    #: CA's certificate) and the local backend's staged successor and archive of old key
    #: material (never deleted). Default for "local": ``rotation/`` beside ``ca_cert``;
    #: required for the other backends. Shared by every worker replica that may run the
    #: rotation's steps (a volume they all mount), or the rotation runs on one replica.
    state_dir: MaybePath = None

    @model_validator(mode="after")
    def _backend_keys(self) -> Self:
        for backend, names in BACKEND_KEYS.items():
            if backend == self.backend:
                continue
            for name in names:
                if name not in BACKEND_KEYS[self.backend] and getattr(self, name) not in (
                        None, False):
                    raise problem(f"does not apply with backend = {self.backend!r}", at=name)
        for name in _REQUIRED[self.backend]:
            if getattr(self, name) is None:
                raise problem(f"required with backend = {self.backend!r}", at=name)
        if self.vault_pki_parent_mount is not None \
                and self.vault_pki_parent_mount == self.vault_pki_mount:
            raise problem("must be another mount than vault_pki_mount (a root signs itself: "
                          "leave it unset)", at="vault_pki_parent_mount")
        return self

    @property
    def local_files(self) -> tuple[Path, Path]:
        """``(ca_cert, ca_key)`` of a local CA (the constructor makes sure both are set)."""
        if self.ca_cert is None or self.ca_key is None:
            raise KeywardError(f"backend {self.backend!r} has no CA files")
        return self.ca_cert, self.ca_key

    @property
    def state_directory(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        return self.local_files[0].parent / "rotation"
