"""A certificate authority made and kept in Azure Key Vault: the backend a CA rotation uses.

:func:`create_ca` makes a new CA certificate (as a new version of one Key Vault
certificate) and returns it as :class:`KeyVaultCa`, whose ``authority`` is a keyward
:class:`~keyward.pki.ca.CertificateAuthority` that signs CSRs and issues leaves. With
``exportable=False`` the private key never leaves Key Vault: every signature is Key Vault's
``sign`` operation on the certificate's key (``POST /keys/{name}/{version}/sign``). With
``exportable=True`` the key is read once from the certificate's secret and signing is
local. :func:`open_ca` returns the CA the vault holds now (after a restart, say).

What Key Vault can and cannot do here (the reason for the three steps below):

* A certificate policy cannot ask for BasicConstraints ``CA:true``. ``key_usage`` can say
  ``keyCertSign`` and ``cRLSign``, but the documented ``x509_props`` have no basic
  constraints, neither Azure's REST specification nor any Azure SDK models one
  (Azure/azure-rest-api-specs#8295 and #11962, still open), and Microsoft has answered that
  it is not supported. An undocumented ``x509_props.basic_constraints`` is reported to be
  honoured for issuer ``Self``; keyward does not rely on it. A Key Vault "Self" certificate
  is therefore no CA a verifier accepts.
* What Key Vault does support is a key that stays inside it, a CSR from it, signing with
  that key (the Keys API's ``sign``) and merging any certificate for the key. So:

  1. a first version with issuer ``Self`` makes the key pair (only its key is wanted; the
     version is disabled at the end);
  2. a second version with issuer ``Unknown`` and ``reuse_key`` yields a CSR for the same
     key;
  3. keyward builds the CA certificate itself (BasicConstraints CA:true with the path
     length, KeyUsage keyCertSign + cRLSign + digitalSignature, critical), has Key Vault
     sign it with the key from step 1 and merges it into the second version.

  The keyvault-ca project (github.com/vslepakov/keyvault-ca, code from Microsoft's OPC
  Vault) creates its root CA the same way.
* The Python SDK has no client for the Keys API in keyward's dependencies
  (azure-keyvault-keys is not one of them), so ``sign`` is sent through the certificate
  client's own authenticated pipeline (``CertificateClient.send_request``).
* The key usage is keyCertSign + cRLSign + digitalSignature. Whether Key Vault limits the
  operations of a certificate's key by the policy's key usage is not documented;
  digitalSignature keeps ``sign`` inside any such limit (the emulator does not model one).
* Not verified against the real service here (no Azure subscription): that the pending
  version's CSR carries the reused key (checked at run time: a different key is refused),
  and that ``sign`` is allowed on the first version's key until it is disabled.

Synchronous because the Azure SDK is; run it on a thread pool.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from azure.core.credentials import TokenCredential
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContentType,
    CertificatePolicy,
    KeyCurveName,
    KeyType,
    KeyUsageType,
    KeyVaultCertificate,
    WellKnownIssuerNames,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from keyward.azure import pem
from keyward.azure.vault import KeyVaultCertificateRef
from keyward.pki.ca import CLOCK_SKEW, CertificateAuthority, is_ca, utc
from keyward.pki.keys import PublicKey, key_type_of
from keyward.pki.remote import RemoteSigningError, sign_certificate
from keyward.pki.subject import key_vault_subject, subject_name
from keyward.pki.types import KeyType as SpecKeyType
from keyward.policy.key_vault import validity_in_months

#: What a CA's key may do (the policy's key usage, and the certificate's, critical).
CA_KEY_USAGE: Final = (KeyUsageType.digital_signature, KeyUsageType.key_cert_sign,
                       KeyUsageType.crl_sign)
_P256_COORDINATE: Final = 32


@dataclass(frozen=True)
class CaRequest:
    """What a new CA certificate says, and whether its key may leave Key Vault."""

    common_name: str
    organization: tuple[str, ...] = ()
    organizational_unit: tuple[str, ...] = ()
    country: str | None = None
    state: str | None = None
    locality: str | None = None
    lifetime: timedelta = timedelta(days=3650)
    key_type: SpecKeyType = "ec-p256"
    #: BasicConstraints pathLenConstraint: 0 signs leaves only (the default: a stolen
    #: leaf key cannot become a CA either), None sets no limit.
    path_length: int | None = 0
    #: False: the key stays in Key Vault and every certificate is signed by Key Vault.
    exportable: bool = False


@dataclass(frozen=True)
class KeyVaultCa:
    """One version of a CA certificate in Key Vault, ready to sign."""

    certificate: x509.Certificate
    #: The Key Vault certificate version (its key and secret have the same one).
    version: str
    #: Signs CSRs (``sign_csr``) and issues leaves (``issue``): locally with an exported
    #: key, else through Key Vault's ``sign``.
    authority: CertificateAuthority
    #: Whether ``authority`` holds the private key (policy ``exportable``).
    exportable: bool

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate as PEM: what relying parties trust."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


class KeyVaultSigningKey:
    """A certificate's key in Key Vault, signing SHA-256 digests with the Keys API.

    A :class:`~keyward.pki.remote.RemoteSigningKey`: ``CertificateAuthority`` takes it in
    place of a private key. Failures are :class:`IssuerError` with the usual ``retryable``.
    """

    def __init__(self, vault: KeyVaultCertificateRef, version: str, public: PublicKey) -> None:
        if key_type_of(public) is None:
            raise vault.error("the CA key is neither EC P-256 nor RSA 2048/4096",
                              retryable=False)
        self._vault = vault
        self._version = version
        self._public = public

    def __repr__(self) -> str:
        return (f"KeyVaultSigningKey({self._vault.vault_url!r}, "
                f"{self._vault.certificate_name!r}, version={self._version!r})")

    def public_key(self) -> PublicKey:
        return self._public

    def sign_sha256(self, digest: bytes) -> bytes:
        algorithm = "RS256" if isinstance(self._public, rsa.RSAPublicKey) else "ES256"
        request = HttpRequest(
            "POST", f"/keys/{self._vault.certificate_name}/{self._version}/sign",
            json={"alg": algorithm, "value": _b64url(digest)})
        with (self._vault.certificate_client() as client,
              self._vault.translate("signing with the CA key")):
            response = client.send_request(request)
            response.raise_for_status()
        try:
            signature = _unb64url(str(response.json()["value"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise self._vault.error("the vault's sign answer has no signature",
                                    retryable=False) from exc
        if algorithm == "RS256":
            return signature
        # JWS ES256 is r‖s (RFC 7518 3.4); X.509 carries a DER ECDSA-Sig-Value.
        if len(signature) != 2 * _P256_COORDINATE:
            raise self._vault.error("the vault's ES256 signature is not 64 bytes",
                                    retryable=False)
        return encode_dss_signature(int.from_bytes(signature[:_P256_COORDINATE], "big"),
                                    int.from_bytes(signature[_P256_COORDINATE:], "big"))


def create_ca(vault_url: str, certificate_name: str, request: CaRequest, *,
              credential: TokenCredential | None = None,
              client_kwargs: Mapping[str, Any] | None = None,
              polling_interval: float = 5.0, create_timeout: float = 300.0,
              now: datetime | None = None) -> KeyVaultCa:
    """Make a new CA certificate in Key Vault (two new versions: see the module docstring).

    Not idempotent: each call is a new key and a new CA. A call that died half-way leaves
    a disabled or pending version, which the next call replaces. Raises
    :class:`IssuerError` (``retryable`` as for issuing) for what the vault refuses, and
    ValueError for a request no vault could honour.
    """
    if request.lifetime <= timedelta(0):
        raise ValueError("a CA lifetime must be positive")
    if request.path_length is not None and request.path_length < 0:
        raise ValueError("path_length must be None or at least 0")
    subject = key_vault_subject(request)  # ValueError for what Key Vault cannot carry
    name = subject_name(request)
    vault = KeyVaultCertificateRef(vault_url, certificate_name, credential=credential,
                                   client_kwargs=client_kwargs)
    base = {"subject": subject, "exportable": request.exportable,
            "content_type": CertificateContentType.pem, "key_usage": list(CA_KEY_USAGE),
            **_key_options(request.key_type)}
    with vault.certificate_client() as certificates:
        seed = _create_seed(vault, certificates, base, polling_interval, create_timeout)
        public = _public(vault, _certificate_of(vault, seed).public_key())
        seed_version = _version_of(vault, seed)
        key = KeyVaultSigningKey(vault, seed_version, public)
        with vault.translate("requesting the CA version"):
            vault.begin_create(certificates, CertificatePolicy(
                issuer_name=WellKnownIssuerNames.unknown, reuse_key=True,
                validity_in_months=validity_in_months(request.lifetime), **base),
                polling_interval=polling_interval)
            operation = certificates.get_certificate_operation(certificate_name)
        try:
            csr = x509.load_der_x509_csr(bytes(operation.csr or b""))
        except ValueError as exc:
            raise vault.error("the CA version's pending operation has no usable CSR",
                              retryable=False) from exc
        if csr.public_key() != public:
            raise vault.error("Key Vault did not reuse the key for the CA version (reuse_key); "
                              "the CA certificate cannot be signed with it", retryable=False)
        try:
            certificate = sign_certificate(_ca_builder(name, public, request, now), key)
        except RemoteSigningError as exc:
            raise vault.error(str(exc), retryable=False) from exc
        with vault.translate("merging the CA certificate"):
            merged = certificates.merge_certificate(
                certificate_name, [certificate.public_bytes(serialization.Encoding.DER)])
        # The seed's certificate is no CA; only its key was wanted, and the CA version has it.
        with vault.translate("disabling the key's first version"):
            certificates.update_certificate_properties(certificate_name, seed_version,
                                                       enabled=False)
    return _ca_of(vault, merged, exportable=request.exportable)


def open_ca(vault_url: str, certificate_name: str, *, exportable: bool,
            credential: TokenCredential | None = None,
            client_kwargs: Mapping[str, Any] | None = None) -> KeyVaultCa:
    """The CA the vault holds now (its current version), ready to sign.

    ``exportable`` says where signing happens, as :class:`CaRequest` does: True reads the
    key from the certificate's secret (and fails if the policy never allowed it).
    """
    vault = KeyVaultCertificateRef(vault_url, certificate_name, credential=credential,
                                   client_kwargs=client_kwargs)
    with vault.certificate_client() as certificates, vault.translate("reading the CA"):
        current = certificates.get_certificate(certificate_name)
    return _ca_of(vault, current, exportable=exportable)


# -- steps ----------------------------------------------------------------------------------


def _create_seed(vault: KeyVaultCertificateRef, certificates: CertificateClient,
                 base: dict[str, Any], polling_interval: float,
                 create_timeout: float) -> KeyVaultCertificate:
    """Step 1: a Self version, one month, whose key the CA keeps."""
    with vault.translate("creating the CA key"):
        poller = vault.begin_create(certificates, CertificatePolicy(
            issuer_name=WellKnownIssuerNames.self, reuse_key=False, validity_in_months=1,
            **base), polling_interval=polling_interval)
        result = poller.result(timeout=create_timeout)
    if not isinstance(result, KeyVaultCertificate):
        raise vault.error("creating the CA key did not finish in time; will retry",
                          retryable=True)
    return result


def _ca_builder(name: x509.Name, public: PublicKey, request: CaRequest,
                now: datetime | None) -> x509.CertificateBuilder:
    moment = utc(now)
    ski = x509.SubjectKeyIdentifier.from_public_key(public)
    return (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(moment - CLOCK_SKEW).not_valid_after(moment + request.lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=request.path_length),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False))


def _ca_of(vault: KeyVaultCertificateRef, certificate: KeyVaultCertificate, *,
           exportable: bool) -> KeyVaultCa:
    leaf = _certificate_of(vault, certificate)
    version = _version_of(vault, certificate)
    if not is_ca(leaf):
        raise vault.error(f"version {version} is not a CA certificate (no BasicConstraints "
                          "CA:true with keyCertSign)", retryable=False)
    if exportable:
        issued = vault.export(certificate)
        key = pem.load_private_key(issued.private_key_pem)
        if key is None:
            raise vault.error("the CA's secret holds no private key (is the policy "
                              "exportable?)", retryable=False)
        authority = CertificateAuthority(leaf, key)
    else:
        authority = CertificateAuthority(
            leaf, KeyVaultSigningKey(vault, version, _public(vault, leaf.public_key())))
    return KeyVaultCa(certificate=leaf, version=version, authority=authority,
                      exportable=exportable)


def _certificate_of(vault: KeyVaultCertificateRef,
                    certificate: KeyVaultCertificate) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(bytes(certificate.cer or b""))
    except ValueError as exc:
        raise vault.error("the vault returned an unreadable certificate",
                          retryable=False) from exc


def _version_of(vault: KeyVaultCertificateRef, certificate: KeyVaultCertificate) -> str:
    version = certificate.properties.version if certificate.properties else None
    if not version:
        raise vault.error("the vault returned a certificate without a version",
                          retryable=False)
    return version


def _public(vault: KeyVaultCertificateRef, public: object) -> PublicKey:
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise vault.error("the CA key is neither EC nor RSA", retryable=False)
    return public


def _key_options(key_type: SpecKeyType) -> dict[str, Any]:
    if key_type == "ec-p256":
        return {"key_type": KeyType.ec, "key_curve_name": KeyCurveName.p_256}
    return {"key_type": KeyType.rsa, "key_size": {"rsa-2048": 2048, "rsa-4096": 4096}[key_type]}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


__all__ = ["CA_KEY_USAGE", "CaRequest", "KeyVaultCa", "KeyVaultSigningKey",
           "create_ca", "open_ca"]
