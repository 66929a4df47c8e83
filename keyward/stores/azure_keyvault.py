"""Certificates installed in Azure Key Vault, for consumers that read them from there (App
Gateway, Front Door, the Key Vault CSI provider): each install imports a new version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.keyvault.certificates import CertificateContentType, CertificatePolicy

from keyward.azure import pem
from keyward.azure.vault import KeyVaultCertificateRef
from keyward.contracts import failures
from keyward.issuers.base import IssuerError
from keyward.pki.types import IssuedCertificate


class AzureKeyVaultStore:
    """One Key Vault certificate. ``credential`` and ``client_kwargs`` as for the issuer
    (production: ``DefaultAzureCredential`` and the SDK's defaults)."""

    def __init__(self, name: str, vault_url: str, certificate_name: str, *,
                 credential: TokenCredential | None = None,
                 client_kwargs: Mapping[str, Any] | None = None) -> None:
        self._name = name
        self._vault = KeyVaultCertificateRef(vault_url, certificate_name, credential=credential,
                                             client_kwargs=client_kwargs)

    @property
    def where(self) -> str:
        return self._vault.where

    def read(self) -> IssuedCertificate | None:
        """What the vault holds now (with its key), or None when there is no such certificate."""
        try:
            return read_from_key_vault(self._vault)
        except IssuerError as exc:
            raise IssuerError(f"reading {self._vault.certificate_name!r} from Key Vault "
                              f"failed: {exc}", retryable=exc.retryable,
                              failure_type=failures.INSPECT_FAILED) from exc

    def install(self, issued: IssuedCertificate) -> str:
        try:
            return _import(self._vault, issued)
        except IssuerError as exc:
            raise IssuerError(f"importing {self._name!r} into Key Vault failed: {exc}",
                              retryable=exc.retryable,
                              failure_type=failures.INSTALL_FAILED) from exc

    def key_files(self) -> None:
        return None


def read_from_key_vault(vault: KeyVaultCertificateRef) -> IssuedCertificate | None:
    """The certificate's current version with its key, or None when the vault has none."""
    with vault.certificate_client() as certificates, vault.translate("reading the certificate"):
        try:
            certificate = certificates.get_certificate(vault.certificate_name)
        except ResourceNotFoundError:
            return None
    return vault.export(certificate, self_signed_leaf_is_ca=True)


def import_to_key_vault(vault_url: str, certificate_name: str, issued: IssuedCertificate, *,
                        credential: TokenCredential | None = None, exportable: bool = True,
                        tags: Mapping[str, str] | None = None,
                        client_kwargs: Mapping[str, Any] | None = None) -> str:
    """Install ``issued`` (key + chain) as a new version of a Key Vault certificate.

    Imported as PEM so the backing secret stays PEM. Failures raise :class:`IssuerError`
    with the same ``retryable`` contract as issuing. Returns the new version's certificate
    id (a URL ending in the version).
    """
    vault = KeyVaultCertificateRef(vault_url, certificate_name, credential=credential,
                                   client_kwargs=client_kwargs)
    return _import(vault, issued, exportable=exportable, tags=tags)


def _import(vault: KeyVaultCertificateRef, issued: IssuedCertificate, *,
            exportable: bool = True, tags: Mapping[str, str] | None = None) -> str:
    try:
        chain = pem.load_certificates(issued.certificate_pem, "the certificate to import")
    except ValueError as exc:
        raise vault.error(str(exc), retryable=False) from exc
    key = pem.load_private_key(issued.private_key_pem)
    if key is None or key.public_key() != chain[0].public_key():
        raise vault.error("the private key does not match the certificate", retryable=False)
    body = issued.private_key_pem.rstrip(b"\n") + b"\n" + issued.certificate_pem
    policy = CertificatePolicy(content_type=CertificateContentType.pem, exportable=exportable)
    with vault.certificate_client() as client, vault.translate("import"):
        imported = client.import_certificate(vault.certificate_name, body, policy=policy,
                                             tags=dict(tags) if tags else None)
    if not imported.id:
        raise vault.error("the vault returned no id for the imported certificate",
                          retryable=False)
    return imported.id


