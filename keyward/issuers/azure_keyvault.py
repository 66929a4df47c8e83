"""Issue mTLS certificates through Azure Key Vault.

Key Vault generates the key pair itself and either signs the certificate itself
(``mode="self"``, issuer ``Self``) or hands out a CSR for an outside CA to sign
(``mode="external-ca"``, issuer ``Unknown``; keyward's own CA signs it and the chain
is merged back). Either way the private key only leaves the vault through the
certificate's backing *secret*, so the policy always asks for an exportable key
and PEM content: that secret is what becomes ``tls.key`` / ``tls.crt``.

Installing into Key Vault and reading what it holds is the store's
(:mod:`keyward.stores.azure_keyvault`); the vault's clients, its error mapping and the
export are :mod:`keyward.azure.vault`, shared by both. Everything here is synchronous
because the Azure SDK is; renewal activities run it on the worker's thread pool.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal

from azure.core.credentials import TokenCredential
from azure.core.polling import LROPoller
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContentType,
    CertificateOperation,
    CertificatePolicy,
    CertificatePolicyAction,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    KeyVaultCertificate,
    LifetimeAction,
    WellKnownIssuerNames,
)
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from keyward.azure import pem
from keyward.azure.vault import KeyVaultCertificateRef, clip
from keyward.issuers.base import IssuerError
from keyward.log import get_logger
from keyward.pki.subject import key_vault_subject
from keyward.pki.types import CertificateSpec, IssuedCertificate, Usage
from keyward.pki.types import KeyType as SpecKeyType
from keyward.policy.key_vault import lifetime_action_problem, validity_in_months

Mode = Literal["self", "external-ca"]
LifetimeActionType = Literal["AutoRenew", "EmailContacts"]  # keyward.policy.key_vault.Action
#: Takes the vault's CSR (DER) and the spec; returns the signed leaf as PEM, optionally
#: followed by intermediates. keyward's local ``CertificateAuthority.sign_csr`` fits.
CsrSigner = Callable[[bytes, CertificateSpec], bytes]

#: API versions older than 2025-07-01 have no IP address SANs in a certificate policy.
_API_VERSIONS_WITHOUT_IP_SANS: Final = frozenset(
    {"2016-10-01", "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6"})
#: azure-keyvault-certificates gained ``san_ip_addresses`` in 4.11 (API 2025-07-01).
_SDK_HAS_IP_SANS: Final = hasattr(CertificatePolicy, "san_ip_addresses")

_EKUS: Final[dict[Usage, tuple[x509.ObjectIdentifier, ...]]] = {
    "client": (ExtendedKeyUsageOID.CLIENT_AUTH,),
    "server": (ExtendedKeyUsageOID.SERVER_AUTH,),
    "both": (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
}


class AzureKeyVaultIssuer:
    """Issues certificates for one named Key Vault certificate (each issue is a new version).

    ``mode="self"``: Key Vault signs the certificate itself (the certificate is its own
    trust anchor, so it is also returned as ``ca_pem`` unless ``ca_pem`` is given).
    ``mode="external-ca"``: Key Vault creates the key and a CSR, ``sign_csr`` signs it and
    the chain (leaf, intermediates, ``ca_pem``) is merged back into the vault.

    ``lifetime_action`` sets what Key Vault itself does as the certificate ages
    (``AutoRenew`` only for certificates Key Vault signs; ``EmailContacts`` for any),
    triggered at ``lifetime_percentage`` of the lifetime or ``days_before_expiry``.
    Without one, Key Vault applies its default.

    ``client_kwargs`` go to both SDK clients: ``verify_challenge_resource=False`` for
    a vault that is not under ``vault.azure.net`` (emulators, private endpoints),
    ``connection_verify=<CA bundle>``, ``retry_total`` and the like.
    """

    def __init__(self, vault_url: str, certificate_name: str, *, mode: Mode,
                 credential: TokenCredential | None = None,
                 sign_csr: CsrSigner | None = None, ca_pem: bytes | None = None,
                 lifetime_action: LifetimeActionType | None = None,
                 lifetime_percentage: int | None = None,
                 days_before_expiry: int | None = None,
                 client_kwargs: Mapping[str, Any] | None = None,
                 polling_interval: float = 5.0,
                 create_timeout: float = 300.0) -> None:
        self._call = KeyVaultCertificateRef(vault_url, certificate_name,
                                            credential=credential,
                                            client_kwargs=client_kwargs)
        if mode not in ("self", "external-ca"):
            raise ValueError(f"mode must be 'self' or 'external-ca', not {mode!r}")
        if mode == "external-ca" and sign_csr is None:
            raise ValueError("mode='external-ca' needs sign_csr to sign the vault's CSR")
        if mode == "self" and sign_csr is not None:
            raise ValueError("sign_csr is only used with mode='external-ca'")
        _check_lifetime_action(mode, lifetime_action, lifetime_percentage, days_before_expiry)
        if polling_interval <= 0 or create_timeout <= 0:
            raise ValueError("polling_interval and create_timeout must be positive")
        self._certificate_name = certificate_name
        self._mode: Mode = mode
        self._sign_csr = sign_csr
        self._ca_certificates = pem.load_certificates(ca_pem, "ca_pem") if ca_pem else []
        self._lifetime_action = lifetime_action
        self._lifetime_percentage = lifetime_percentage
        self._days_before_expiry = days_before_expiry
        self._polling_interval = polling_interval
        self._create_timeout = create_timeout
        self._log = get_logger("keyward.issuers.azure_keyvault", vault=self._call.vault_url,
                               certificate=certificate_name, mode=mode)

    @property
    def name(self) -> str:
        return "azure-keyvault"

    def certificate_policy(self, spec: CertificateSpec) -> CertificatePolicy:
        """The Key Vault policy for ``spec`` (public so the mapping can be checked on its own).

        Raises a non-retryable :class:`IssuerError` for a spec Key Vault cannot honour.
        """
        try:
            months = validity_in_months(spec.lifetime)
        except ValueError as exc:
            raise self._call.error(str(exc), retryable=False) from exc
        try:
            subject = key_vault_subject(spec)
        except ValueError as exc:
            raise self._call.error(f"spec {spec.name!r}: {exc}", retryable=False) from exc
        options: dict[str, Any] = {
            # Key Vault's own X.500 string syntax (keyward.pki.subject): CN first, values
            # with commas in double quotes.
            "subject": subject,
            "exportable": True,  # the key must leave the vault to become tls.key
            "reuse_key": False,  # every renewal gets a fresh key pair
            "content_type": CertificateContentType.pem,
            "validity_in_months": months,
            "enhanced_key_usage": [oid.dotted_string for oid in _EKUS[spec.usage]],
            **_key_options(spec.key_type),
        }
        if spec.dns_names:
            options["san_dns_names"] = list(spec.dns_names)
        if spec.ip_addresses:
            options["san_ip_addresses"] = self._ip_sans(spec.ip_addresses)
        if self._lifetime_action is not None:
            found = lifetime_action_problem(
                signed_by_key_vault=self._mode == "self", action=self._lifetime_action,
                percentage=self._lifetime_percentage, days=self._days_before_expiry,
                months=months)
            if found is not None:
                raise self._call.error(found[1], retryable=False)
            options["lifetime_actions"] = [LifetimeAction(
                CertificatePolicyAction(self._lifetime_action),
                lifetime_percentage=self._lifetime_percentage,
                days_before_expiry=self._days_before_expiry)]
        issuer = WellKnownIssuerNames.self if self._mode == "self" else WellKnownIssuerNames.unknown
        return CertificatePolicy(issuer_name=issuer, **options)

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        """Create a new version of the vault certificate for ``spec`` and export it with its key."""
        policy = self.certificate_policy(spec)
        with self._call.certificate_client() as certificates:
            if self._mode == "self":
                certificate = self._create_self_signed(certificates, policy)
            else:
                certificate = self._create_from_csr(certificates, policy, spec)
        issued = self._export(certificate)
        self._log.info("certificate issued", version=certificate.properties.version
                       if certificate.properties else None)
        return issued

    def export_current(self) -> IssuedCertificate:
        """The certificate's current version with its key, as the vault holds it now.

        For ``AutoRenew`` lifetime actions: Key Vault renews on its own, and keyward only has
        to pick the new version up.
        """
        with (self._call.certificate_client() as certificates,
              self._call.translate("reading the certificate")):
            certificate = certificates.get_certificate(self._certificate_name)
        return self._export(certificate)

    # -- creation ---------------------------------------------------------------------------

    def _create_self_signed(self, certificates: CertificateClient,
                            policy: CertificatePolicy) -> KeyVaultCertificate:
        with self._call.translate("creation"):
            poller = self._begin_create(certificates, policy)
            result = poller.result(timeout=self._create_timeout)
        if isinstance(result, KeyVaultCertificate):
            return result
        if not poller.done():
            # Key Vault keeps going; a retry meets 409 until it finishes, which is retryable.
            raise self._call.error(f"creation still in progress after {self._create_timeout}s; "
                                   "will retry", retryable=True)
        raise self._failed_operation(result)

    def _create_from_csr(self, certificates: CertificateClient, policy: CertificatePolicy,
                         spec: CertificateSpec) -> KeyVaultCertificate:
        sign_csr = self._sign_csr
        if sign_csr is None:  # __init__ refuses this; kept for the type checker
            raise self._call.error("external-ca mode without sign_csr", retryable=False)
        with self._call.translate("creation"):
            # For issuer "Unknown" the poller is finished at once; the CSR is read back from
            # the operation because SDKs before 4.11 return None instead of the operation.
            self._begin_create(certificates, policy)
            operation = certificates.get_certificate_operation(self._certificate_name)
        csr_der = bytes(operation.csr or b"")
        try:
            csr = x509.load_der_x509_csr(csr_der)
        except ValueError as exc:
            raise self._call.error("the pending operation has no usable CSR",
                                   retryable=False) from exc
        if not csr.is_signature_valid:
            raise self._call.error("the vault's CSR has an invalid signature", retryable=False)
        try:
            signed = sign_csr(csr_der, spec)
        except IssuerError:
            raise  # the signer classified it (a remote CA may say "retry")
        except Exception as exc:
            # keyward's local CA raises CertificateAuthorityError (expired CA, wrong key
            # type): nothing a retry changes. The CSR is public, so its text may be shown.
            raise self._call.error(f"signing the CSR failed: {type(exc).__name__}: "
                                   f"{clip(str(exc))}", retryable=False) from exc
        try:
            chain = pem.load_certificates(signed, "the signed certificate")
        except ValueError as exc:
            raise self._call.error(str(exc), retryable=False) from exc
        if chain[0].public_key() != csr.public_key():
            raise self._call.error("sign_csr returned a certificate for a different key than "
                                   "the vault's CSR", retryable=False)
        x5c = pem.unique_der([*chain, *self._ca_certificates])
        with self._call.translate("merging the signed chain"):
            return certificates.merge_certificate(self._certificate_name, x5c)

    def _begin_create(self, certificates: CertificateClient, policy: CertificatePolicy,
                      ) -> LROPoller[KeyVaultCertificate | CertificateOperation]:
        return self._call.begin_create(certificates, policy,
                                       polling_interval=self._polling_interval)

    def _failed_operation(self, result: object) -> IssuerError:
        if isinstance(result, CertificateOperation):
            reason = result.error.message if result.error else result.status_details
            return self._call.error(f"creation ended with status {result.status!r}: "
                                    f"{clip(reason or 'no details')}", retryable=False)
        return self._call.error("creation returned no certificate", retryable=False)

    # -- clients ----------------------------------------------------------------------------

    def _export(self, certificate: KeyVaultCertificate) -> IssuedCertificate:
        return self._call.export(certificate, ca_certificates=self._ca_certificates,
                                 self_signed_leaf_is_ca=self._mode == "self")

    def _ip_sans(self, addresses: Sequence[str]) -> list[str]:
        api_version = str(self._call.client_kwargs.get("api_version", ""))
        if not _SDK_HAS_IP_SANS or api_version in _API_VERSIONS_WITHOUT_IP_SANS:
            raise self._call.error(
                "the spec asks for IP address SANs, which Key Vault only accepts from API "
                "version 2025-07-01 (azure-keyvault-certificates >= 4.11); use DNS names or "
                "upgrade", retryable=False)
        try:
            return [str(ipaddress.ip_address(address)) for address in addresses]
        except ValueError as exc:
            raise self._call.error(f"invalid IP address SAN in spec: {exc}",
                                   retryable=False) from exc


# -- helpers ---------------------------------------------------------------------------------


def _check_lifetime_action(mode: Mode, action: LifetimeActionType | None,
                           percentage: int | None, days: int | None) -> None:
    found = lifetime_action_problem(signed_by_key_vault=mode == "self", action=action,
                                    percentage=percentage, days=days)
    if found is not None:
        raise ValueError(found[1])


def _key_options(key_type: SpecKeyType) -> dict[str, Any]:
    if key_type == "ec-p256":
        # keyEncipherment means nothing for EC keys; TLS needs only signatures from them.
        return {"key_type": KeyType.ec, "key_curve_name": KeyCurveName.p_256,
                "key_usage": [KeyUsageType.digital_signature]}
    size = {"rsa-2048": 2048, "rsa-4096": 4096}[key_type]
    return {"key_type": KeyType.rsa, "key_size": size,
            "key_usage": [KeyUsageType.digital_signature, KeyUsageType.key_encipherment]}


__all__ = [
    "AzureKeyVaultIssuer",
    "CsrSigner",
    "LifetimeActionType",
    "Mode",
    "validity_in_months",
]
