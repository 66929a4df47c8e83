"""Builds the backend a CA's settings name. The Azure Key Vault backend is imported only
when used: the Azure SDK is an extra (``pip install keyward[azure]``), as for the issuers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyward.authorities.base import CaBackend, CaRotationError
from keyward.authorities.local import LocalCaBackend
from keyward.authorities.vault_pki import VaultPkiCaBackend
from keyward.config import CertificateSettings
from keyward.config.authorities import CertificateAuthoritySettings


def backend_for(name: str, ca: CertificateAuthoritySettings,
                certificates: dict[str, CertificateSettings], *, vault: Any | None = None,
                azure_options: Mapping[str, Any] | None = None) -> CaBackend:
    """The backend of CA ``name``. ``vault`` is the worker's hvac client (vault-pki);
    ``azure_options`` the Key Vault ``credential``/``client_kwargs`` (azure-keyvault)."""
    if ca.backend == "local":
        return LocalCaBackend(ca, certificates)
    if ca.backend == "vault-pki":
        if vault is None:
            raise CaRotationError(f"certificate authority {name!r}: backend 'vault-pki' "
                                  "needs the worker's Vault connection")
        return VaultPkiCaBackend(name, ca, certificates, vault)
    from keyward.authorities.azure_keyvault import KeyVaultCaBackend  # noqa: PLC0415

    return KeyVaultCaBackend(name, ca, certificates, **dict(azure_options or {}))
