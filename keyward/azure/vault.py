"""One Key Vault certificate as keyward reaches it: its SDK clients, the one place Azure
errors become keyward errors, and exporting a version with its key.

Synchronous because the Azure SDK is; activities run it on the worker's thread pool.
Messages name the vault and certificate and never carry tokens or keys.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.polling import LROPoller
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateOperation,
    CertificatePolicy,
    KeyVaultCertificate,
    WellKnownIssuerNames,
)
from azure.keyvault.secrets import SecretClient
from cryptography import x509

from keyward.azure import pem
from keyward.issuers.base import IssuerError
from keyward.log import get_logger
from keyward.pki.types import IssuedCertificate

#: Key Vault object names: 1-127 letters, digits and dashes.
OBJECT_NAME: Final = re.compile(r"[0-9A-Za-z-]{1,127}")
_SERVICE_MESSAGE_LIMIT: Final = 300


class KeyVaultCertificateRef:
    """One vault + certificate: names it in every error and maps Azure errors for it.

    One place decides retryability (STYLE: map statuses once): no answer, 408, 429 and 5xx
    may succeed later; anything else the service refused will be refused again.
    """

    def __init__(self, vault_url: str, certificate_name: str, *,
                 credential: TokenCredential | None = None,
                 client_kwargs: Mapping[str, Any] | None = None) -> None:
        if not vault_url.lower().startswith("https://"):
            # The SDK refuses bearer tokens over plain HTTP at request time, which would
            # otherwise look like a retryable connection failure.
            raise ValueError(f"vault_url must be an https URL, not {vault_url!r}")
        if not OBJECT_NAME.fullmatch(certificate_name):
            raise ValueError(f"{certificate_name!r} is not a Key Vault certificate name "
                             "(1-127 letters, digits and dashes)")
        self.vault_url = vault_url.rstrip("/")
        self.certificate_name = certificate_name
        self.where = f"Azure Key Vault {self.vault_url}, certificate {certificate_name!r}"
        self._credential = credential
        #: ``verify_challenge_resource=False`` for a vault not under ``vault.azure.net``
        #: (emulators, private endpoints), ``connection_verify``, ``retry_total`` and the like.
        self.client_kwargs = dict(client_kwargs or {})

    def error(self, problem: str, *, retryable: bool) -> IssuerError:
        return IssuerError(f"{self.where}: {problem}", retryable=retryable)

    @contextmanager
    def translate(self, action: str) -> Iterator[None]:
        """Turn Azure SDK failures inside the block into :class:`IssuerError`."""
        try:
            yield
        except AzureError as exc:
            raise self._from_azure(exc, action) from exc
        except ValueError as exc:
            # The SDK's challenge policy raises ValueError when the vault's challenge names
            # a resource that does not match the vault's domain (a local or private endpoint
            # without verify_challenge_resource=False): configuration, not a transient fault.
            raise self.error(f"{action} failed: the SDK rejected the vault's authentication "
                             f"challenge or the request ({clip(str(exc))})",
                             retryable=False) from exc

    def _from_azure(self, exc: AzureError, action: str) -> IssuerError:
        if isinstance(exc, ServiceRequestError | ServiceResponseError):
            return self.error(f"{action} failed: the vault did not answer "
                              f"({type(exc).__name__}); will retry", retryable=True)
        if isinstance(exc, HttpResponseError) and exc.status_code is not None:
            return self._from_status(exc, exc.status_code, action)
        if isinstance(exc, ClientAuthenticationError):
            # No HTTP status: the credential itself could not produce a token.
            return self.error(f"{action} failed: the credential could not get a token for "
                              f"the vault ({type(exc).__name__})", retryable=False)
        return self.error(f"{action} failed: {type(exc).__name__}", retryable=False)

    def _from_status(self, exc: HttpResponseError, status: int, action: str) -> IssuerError:
        retryable = status in (408, 429) or status >= 500
        code = f" {exc.error.code}" if exc.error is not None and exc.error.code else ""
        hint = {
            401: " (the vault rejected the credential's token)",
            403: " (the identity lacks permission, or a vault policy forbids this)",
            404: " (not found)",
        }.get(status, " (will retry)" if retryable else "")
        message = exc.error.message if exc.error is not None else None
        detail = f": {clip(message)}" if message else ""
        return self.error(f"{action} failed: HTTP {status}{code}{hint}{detail}",
                          retryable=retryable)

    # -- clients ----------------------------------------------------------------------------

    @property
    def credential(self) -> TokenCredential:
        """The credential given, else ``DefaultAzureCredential`` (made on first use)."""
        if self._credential is None:
            self._credential = default_credential()
        return self._credential

    def certificate_client(self) -> CertificateClient:
        return CertificateClient(self.vault_url, self.credential, **self.client_kwargs)

    def secret_client(self) -> SecretClient:
        return SecretClient(self.vault_url, self.credential, **self.client_kwargs)

    # -- creation ---------------------------------------------------------------------------

    def begin_create(self, certificates: CertificateClient, policy: CertificatePolicy, *,
                     polling_interval: float,
                     ) -> LROPoller[KeyVaultCertificate | CertificateOperation]:
        """Start creating a new version; on 409 clear an abandoned CSR request and start again.

        Key Vault answers 409 while a pending operation is "inProgress". An issuer "Unknown"
        operation stays that way forever if a previous attempt died between create and merge,
        so it is ours to delete; a "Self" one is Key Vault still working, so the 409 stands
        (and is retryable). Call inside :meth:`translate`.
        """
        try:
            return certificates.begin_create_certificate(
                self.certificate_name, policy, _polling_interval=polling_interval)
        except ResourceExistsError as exc:
            pending = certificates.get_certificate_operation(self.certificate_name)
            if (pending.issuer_name or "").lower() != WellKnownIssuerNames.unknown.lower():
                raise self.error("another creation is in progress in the vault; will retry",
                                 retryable=True) from exc
            get_logger("keyward.azure.vault", vault=self.vault_url,
                       certificate=self.certificate_name).warning(
                "deleting an abandoned CSR request before creating anew")
            certificates.delete_certificate_operation(self.certificate_name)
            return certificates.begin_create_certificate(
                self.certificate_name, policy, _polling_interval=polling_interval)

    # -- export -----------------------------------------------------------------------------

    def export(self, certificate: KeyVaultCertificate, *,
               ca_certificates: Sequence[x509.Certificate] = (),
               self_signed_leaf_is_ca: bool = False) -> IssuedCertificate:
        """``certificate``'s version with its key, read from the same version of its secret.

        ``ca_certificates`` (the CA the caller trusts) win over a root found in the bundle;
        with ``self_signed_leaf_is_ca`` a self-signed leaf is its own CA (Key Vault ``Self``).
        """
        version = certificate.properties.version if certificate.properties else None
        if not version or not certificate.cer:
            raise self.error("the vault returned a certificate without version or body",
                             retryable=False)
        try:
            leaf = x509.load_der_x509_certificate(bytes(certificate.cer))
        except ValueError as exc:
            raise self.error("the vault returned an unreadable certificate",
                             retryable=False) from exc
        # The same version of the backing secret: a renewal racing us cannot mix key and cert.
        with self.secret_client() as secrets, self.translate("exporting the private key"):
            secret = secrets.get_secret(self.certificate_name, version)
        try:
            key, bundled = pem.parse_secret(secret.value or "", secret.properties.content_type)
        except pem.SecretFormatError as exc:
            raise self.error(str(exc), retryable=False) from exc
        if key.public_key() != leaf.public_key():
            raise self.error("the exported key does not match the certificate",
                             retryable=False)
        chain, root = pem.order_chain(leaf, bundled)
        authorities = list(ca_certificates) or ([root] if root is not None else [])
        if self_signed_leaf_is_ca and not ca_certificates and pem.is_self_signed(leaf):
            authorities = [leaf]
        return IssuedCertificate(
            certificate_pem=b"".join(pem.pem(cert) for cert in chain),
            private_key_pem=pem.private_key_pem(key),
            ca_pem=b"".join(pem.pem(cert) for cert in authorities) or None)


def default_credential() -> TokenCredential:
    # Imported here: azure-identity is only needed when no credential is passed in.
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415

    return DefaultAzureCredential()


def clip(text: str) -> str:
    """A service message on one line, at most a few hundred characters."""
    text = " ".join(text.split())
    return text if len(text) <= _SERVICE_MESSAGE_LIMIT else text[:_SERVICE_MESSAGE_LIMIT] + "…"
