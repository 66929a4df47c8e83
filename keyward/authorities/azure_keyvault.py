"""The ``azure-keyvault`` backend: a CA certificate kept in Azure Key Vault
(:mod:`keyward.azure.ca`: key usage keyCertSign/cRLSign, BasicConstraints CA, the key kept
in Key Vault unless ``azure_exportable``).

A successor is a **new certificate** (``<azure_certificate_name>-<UTC time>``), not a new
version of the active one, because of when readers switch. Key Vault's latest version is
what ``get_certificate(name)`` — and so every reader of the vault — sees, and a new version
becomes the latest the moment it is merged: staging would already hand the successor to
whoever issues from, or builds bundles out of, "the CA certificate", before any trust point
holds it. Under a new name nothing anyone reads changes until keyward switches.

Which certificate is active is then keyward's to say: the state file
``azure-keyvault-active-certificate`` names it (absent: ``azure_certificate_name``, where
the CA started), written by the switch. Leaves follow it: ``issuer = "azure-keyvault"``
certificates with ``azure_mode = "key-vault-ca"`` and ``azure_ca = "<this CA>"`` are made in
Key Vault from a CSR that the active CA signs (:func:`active_ca`), so after the switch every
renewal is the successor's. The successor's name is written to the state (the file
``azure-keyvault-next-certificate``) before it is made, so a rerun finds it; a creation that
died half-way (a seed version that is no CA) is replaced by :func:`create_ca`. Nothing is
ever deleted: the old CA certificate, its versions and its key stay in Key Vault.

Synchronous because the Azure SDK is; the rotation's steps run on the worker's threads.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from cryptography import x509

from keyward.authorities.base import CaRotationError
from keyward.authorities.state import RotationState
from keyward.azure.ca import CaRequest, KeyVaultCa, create_ca, open_ca
from keyward.azure.vault import KeyVaultCertificateRef
from keyward.config import AzureKeyVaultIssuerSettings, CertificateSettings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.pki.ca import is_ca

NEXT_CERTIFICATE: Final = "azure-keyvault-next-certificate"
ACTIVE_CERTIFICATE: Final = "azure-keyvault-active-certificate"


def active_certificate_name(ca: CertificateAuthoritySettings) -> str:
    """The Key Vault certificate that is the CA now (see the module docstring)."""
    _, base = _location(ca)
    return RotationState(ca.state_directory).read_text(ACTIVE_CERTIFICATE) or base


def active_ca(ca: CertificateAuthoritySettings, *, credential: TokenCredential | None = None,
              client_kwargs: Mapping[str, Any] | None = None) -> KeyVaultCa:
    """The active CA, ready to sign CSRs (through Key Vault's ``sign`` unless exportable)."""
    vault_url, _ = _location(ca)
    return open_ca(vault_url, active_certificate_name(ca), exportable=ca.azure_exportable,
                   credential=credential, client_kwargs=client_kwargs)


class KeyVaultCaBackend:
    """Implements :class:`keyward.authorities.base.CaBackend` for a CA in Key Vault."""

    def __init__(self, name: str, ca: CertificateAuthoritySettings,
                 certificates: dict[str, CertificateSettings], *,
                 credential: TokenCredential | None = None,
                 client_kwargs: Mapping[str, Any] | None = None,
                 polling_interval: float = 5.0) -> None:
        self._name = name
        self._ca = ca
        self._vault_url, self._base = _location(ca)
        self._certificates = certificates
        self._credential = credential
        self._client_kwargs = dict(client_kwargs or {})
        self._polling_interval = polling_interval
        self._state = RotationState(ca.state_directory)

    @property
    def where(self) -> str:
        return f"Azure Key Vault {self._vault_url}, CA certificate {self._active_name()!r}"

    def active(self) -> x509.Certificate:
        found = self._read(self._active_name())
        if found is None:
            raise CaRotationError(f"{self.where}: the vault holds no CA certificate of that "
                                  "name")
        return found

    def staged(self) -> x509.Certificate | None:
        name = self._state.read_text(NEXT_CERTIFICATE)
        return self._read(name) if name is not None else None

    def stage(self, common_name: str) -> x509.Certificate:
        name = self._successor_name()
        found = self._read(name)
        if found is not None:
            return found
        made = create_ca(self._vault_url, name, CaRequest(
            common_name=common_name, lifetime=timedelta(days=self._ca.lifetime_days),
            key_type=self._ca.key_type, exportable=self._ca.azure_exportable),
            credential=self._credential, client_kwargs=self._client_kwargs,
            polling_interval=self._polling_interval)
        return made.certificate

    def switch(self) -> x509.Certificate:
        name = self._state.read_text(NEXT_CERTIFICATE)
        found = self._read(name) if name is not None else None
        if name is None or found is None:
            raise CaRotationError(f"{self.where}: no successor is staged")
        self._state.write_text(ACTIVE_CERTIFICATE, name)
        return found

    def settle(self) -> None:
        self._state.path(NEXT_CERTIFICATE).unlink(missing_ok=True)

    def leaves(self) -> dict[str, CertificateSettings]:
        """The ``azure-keyvault`` certificates in ``key-vault-ca`` mode naming this CA."""
        return {name: cert for name, cert in sorted(self._certificates.items())
                if isinstance(cert.issuer, AzureKeyVaultIssuerSettings)
                and cert.issuer.azure_mode == "key-vault-ca"
                and cert.issuer.azure_ca == self._name}

    def _active_name(self) -> str:
        return self._state.read_text(ACTIVE_CERTIFICATE) or self._base

    def _successor_name(self) -> str:
        name = self._state.read_text(NEXT_CERTIFICATE)
        if name is None:
            name = f"{self._base}-{datetime.now(UTC).strftime('%Y%m%dt%H%M%Sz')}"
            self._state.write_text(NEXT_CERTIFICATE, name)
        return name

    def _read(self, name: str) -> x509.Certificate | None:
        """The CA certificate ``name``'s current version, None when there is none (or it is
        no CA yet: a creation that stopped after its seed version)."""
        vault = KeyVaultCertificateRef(self._vault_url, name, credential=self._credential,
                                       client_kwargs=self._client_kwargs)
        with vault.certificate_client() as certificates, vault.translate("reading the CA"):
            try:
                current = certificates.get_certificate(name)
            except ResourceNotFoundError:
                return None
        try:
            certificate = x509.load_der_x509_certificate(bytes(current.cer or b""))
        except ValueError:
            return None
        return certificate if is_ca(certificate) else None


def _location(ca: CertificateAuthoritySettings) -> tuple[str, str]:
    if ca.azure_vault_url is None or ca.azure_certificate_name is None:
        # The settings refuse this for backend = "azure-keyvault"; kept for the type checker.
        raise CaRotationError(f"backend {ca.backend!r} names no Key Vault CA")
    return ca.azure_vault_url, ca.azure_certificate_name
