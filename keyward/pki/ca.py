"""A small certificate authority: the local-ca issuer, ``pki bootstrap`` and the tests' CA.

The CA signs exactly what a :class:`CertificateSpec` says and nothing a requester
adds: :meth:`CertificateAuthority.sign_csr` takes only the public key from a CSR,
never its subject or extensions, because a CSR is written by whoever wants the
certificate and the CA is the party that decides what it vouches for.

Subject alternative names and the common name: Go's ``crypto/tls`` (Temporal
server, ``tctl``, the Go SDK) has ignored the common name for host checks since
Go 1.15, so a *server* certificate must carry its names as SANs. For ``server``
and ``both`` certificates the CN is therefore added as a SAN too (a DNS name, or
an IP address when the CN is one) when it looks like a host name; a CN such as
``"Temporal frontend"`` is left in the subject only. *Client* certificates get
exactly the spec's SANs and no more: servers do not match client names against
SANs, the client identity an authorizer sees is the subject, and a CA should
not assert that a worker called ``keyward-worker`` is a DNS host of that name.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyward.errors import KeywardError
from keyward.pki.install import atomic_write
from keyward.pki.keys import (
    MIN_RSA_BITS,
    PublicKey,
    generate_private_key,
    key_type_of,
    load_private_key,
    private_key_pem,
    public_key_der,
)
from keyward.pki.remote import RemoteSigningError, SigningKey, sign_certificate
from keyward.pki.subject import subject_name
from keyward.pki.types import CertificateSpec, IssuedCertificate, KeyType, Usage

#: Backdating of ``not_before``, so a peer whose clock runs a little behind the
#: CA's does not reject a certificate that was issued "in its future".
CLOCK_SKEW = timedelta(minutes=1)

_HOST_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?:\*\.)?{_HOST_LABEL}(?:\.{_HOST_LABEL})*", re.IGNORECASE)
_MAX_HOSTNAME = 253

_EKU: dict[Usage, list[x509.ObjectIdentifier]] = {
    "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
    "server": [ExtendedKeyUsageOID.SERVER_AUTH],
    "both": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
}


class CertificateAuthorityError(KeywardError):
    """The CA cannot sign: its own material is unusable, or the request is not signable.

    Retrying does not help with any of these (the local-ca issuer reports them as
    non-retryable).
    """


def utc(moment: datetime | None) -> datetime:
    """``moment`` (or the current time) as an aware UTC datetime.

    Naive datetimes are refused rather than guessed at: certificate validity is
    UTC, and a local time taken for UTC shifts every boundary by hours.
    """
    if moment is None:
        return datetime.now(UTC)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("expected a timezone-aware datetime")
    return moment.astimezone(UTC)


def looks_like_hostname(name: str) -> bool:
    """True for an RFC 1123 host name (optionally a ``*.`` wildcard), ASCII only."""
    return len(name) <= _MAX_HOSTNAME and _HOSTNAME.fullmatch(name) is not None


def _name(common_name: str) -> x509.Name:
    try:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    except ValueError as error:
        # cryptography enforces the X.520 upper bound of 64 characters.
        raise CertificateAuthorityError(f"invalid common name {common_name!r}: {error}") \
            from None


def _subject(spec: CertificateSpec) -> x509.Name:
    """The leaf's subject: the spec's C, ST, L, O, OU and CN (keyward.pki.subject)."""
    _name(spec.common_name)  # a bad CN is reported as one
    try:
        return subject_name(spec)
    except ValueError as error:
        # cryptography enforces the X.520 bounds (a country code of two letters).
        raise CertificateAuthorityError(f"invalid subject in spec {spec.name!r}: {error}") \
            from None


def _subject_alt_names(spec: CertificateSpec) -> list[x509.GeneralName]:
    """The spec's SANs in order, without duplicates, plus the CN for server certificates."""
    dns_names = list(spec.dns_names)
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for text in spec.ip_addresses:
        try:
            ips.append(ipaddress.ip_address(text))
        except ValueError:
            raise CertificateAuthorityError(f"invalid IP address {text!r} in spec "
                                            f"{spec.name!r}") from None
    if spec.usage in ("server", "both"):
        try:
            ips.append(ipaddress.ip_address(spec.common_name))
        except ValueError:
            if looks_like_hostname(spec.common_name):
                dns_names.append(spec.common_name)
    names: list[x509.GeneralName] = []
    seen_dns: set[str] = set()
    for name in dns_names:
        if not looks_like_hostname(name):
            raise CertificateAuthorityError(f"invalid DNS name {name!r} in spec {spec.name!r}")
        if name.lower() not in seen_dns:
            seen_dns.add(name.lower())
            names.append(x509.DNSName(name))
    for ip in dict.fromkeys(ips):
        names.append(x509.IPAddress(ip))
    if not names and spec.usage in ("server", "both"):
        raise CertificateAuthorityError(
            f"spec {spec.name!r} is a server certificate without a DNS name or IP address "
            "(and its common name is not a host name): TLS clients would reject it")
    return names


def _key_usage(public_key: PublicKey, *, ca: bool) -> x509.KeyUsage:
    # keyEncipherment only for RSA: TLS 1.2 RSA key exchange encrypts to the key;
    # an EC key never does, and RFC 8813 says not to assert it.
    return x509.KeyUsage(digital_signature=True, content_commitment=False,
                         key_encipherment=isinstance(public_key, rsa.RSAPublicKey) and not ca,
                         data_encipherment=False, key_agreement=False, key_cert_sign=ca,
                         crl_sign=ca, encipher_only=False, decipher_only=False)


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def is_ca(certificate: x509.Certificate) -> bool:
    """BasicConstraints CA:true, and keyCertSign if KeyUsage is present (RFC 5280 4.2.1.3)."""
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return False
    if not constraints.value.ca:
        return False
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True  # no KeyUsage means no restriction (RFC 5280 4.2.1.3)
    return usage.key_cert_sign


def _check_key_strength(public_key: object) -> PublicKey:
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_BITS:
            raise CertificateAuthorityError(f"RSA key of {public_key.key_size} bits is too "
                                            f"weak (minimum {MIN_RSA_BITS})")
        return public_key
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key
    raise CertificateAuthorityError(f"unsupported public key type {type(public_key).__name__}")


class CertificateAuthority:
    """A CA certificate with its private key (and, for an intermediate, its chain).

    ``chain`` holds the CA certificate's issuers, nearest first; its last entry is
    the trust anchor that goes into ``ca.crt``. A root CA has no chain and is its
    own anchor.

    ``key`` is the private key, or a :class:`~keyward.pki.remote.RemoteSigningKey` for a
    CA whose key stays in a vault (``keyward.azure.ca``): such a CA signs the same
    certificates, through the vault, and has no key to :meth:`save`.
    """

    def __init__(self, certificate: x509.Certificate, key: SigningKey,
                 chain: Sequence[x509.Certificate] = ()) -> None:
        if public_key_der(certificate.public_key()) != public_key_der(key.public_key()):
            raise CertificateAuthorityError("the CA key does not belong to the CA certificate")
        if not is_ca(certificate):
            raise CertificateAuthorityError(
                f"{certificate.subject.rfc4514_string()} is not a CA certificate "
                "(needs BasicConstraints CA:true and keyCertSign)")
        self._certificate = certificate
        self._key = key
        self._chain = tuple(chain)

    def __repr__(self) -> str:
        # Never the key: this repr can end up in a log line or a test failure.
        return (f"CertificateAuthority({self._certificate.subject.rfc4514_string()!r}, "
                f"not_after={self.not_after.isoformat()})")

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def not_after(self) -> datetime:
        return self._certificate.not_valid_after_utc

    @property
    def ca_pem(self) -> bytes:
        """The trust anchor as PEM: what relying parties put in ``ca.crt``."""
        return _pem(self._chain[-1] if self._chain else self._certificate)

    @property
    def _chain_to_send(self) -> list[x509.Certificate]:
        """Certificates a leaf must be sent with so a peer trusting ``ca_pem`` can verify it."""
        path = [self._certificate, *self._chain]
        return path[:-1]

    @classmethod
    def bootstrap(cls, common_name: str, *, lifetime: timedelta = timedelta(days=3650),
                  key_type: KeyType = "ec-p256", path_length: int | None = 0,
                  now: datetime | None = None) -> CertificateAuthority:
        """A new self-signed root CA.

        ``path_length=0`` (the default) lets it sign leaf certificates only: a
        local CA has no business minting further CAs, and a stolen leaf key then
        cannot be turned into one either.
        """
        if lifetime <= timedelta(0):
            raise CertificateAuthorityError("CA lifetime must be positive")
        moment = utc(now)
        key = generate_private_key(key_type)
        subject = _name(common_name)
        public_key = key.public_key()
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject).issuer_name(subject).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(moment - CLOCK_SKEW).not_valid_after(moment + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length),
                           critical=True)
            .add_extension(_key_usage(public_key, ca=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem: bytes) -> CertificateAuthority:
        """The CA from PEM: the CA certificate first, then any issuers of it; and its key."""
        try:
            certificates = x509.load_pem_x509_certificates(cert_pem)
        except ValueError:
            raise CertificateAuthorityError("CA certificate is not readable PEM") from None
        return cls(certificates[0], load_private_key(key_pem), certificates[1:])

    @classmethod
    def load(cls, cert_path: Path, key_path: Path) -> CertificateAuthority:
        """The CA from files, as :meth:`save` and certstrap-style tools write them.

        ``OSError`` passes through unchanged: a missing file may be a volume not
        mounted yet, which the caller may want to retry, unlike unreadable content.
        """
        return cls.from_pem(Path(cert_path).read_bytes(), Path(key_path).read_bytes())

    def save(self, cert_path: Path, key_path: Path) -> None:
        """Write certificate (and chain) and key, each replaced in one rename; key mode 0600.

        Two files cannot change in one step: a crash between the renames leaves a key
        and a certificate of two different CAs, which :meth:`from_pem` refuses (it
        checks that the key belongs to the certificate) instead of signing with them.
        """
        if not isinstance(self._key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise CertificateAuthorityError("the CA key is held remotely: there is no key "
                                            "file to write")
        atomic_write(Path(key_path), private_key_pem(self._key), mode=0o600)
        atomic_write(Path(cert_path),
                     b"".join(_pem(c) for c in (self._certificate, *self._chain)), mode=0o644)

    def issue(self, spec: CertificateSpec, *, now: datetime | None = None) -> IssuedCertificate:
        """A new key of ``spec.key_type`` and a certificate for it, signed by this CA."""
        names = _subject_alt_names(spec)  # refuse a bad spec before the slow RSA keygen
        _subject(spec)  # likewise a bad subject
        key = generate_private_key(spec.key_type)
        leaf = self._sign(key.public_key(), spec, names, utc(now))
        return IssuedCertificate(
            certificate_pem=b"".join(_pem(c) for c in (leaf, *self._chain_to_send)),
            private_key_pem=private_key_pem(key), ca_pem=self.ca_pem)

    def sign_csr(self, csr: bytes, spec: CertificateSpec, *,
                 now: datetime | None = None) -> bytes:
        """Sign the public key of a CSR (PEM or DER) as ``spec`` says; returns the chain PEM.

        The CSR's own signature must verify (it proves the requester holds the
        key), and its key must be the spec's ``key_type``. Its subject, SANs and
        requested extensions are ignored on purpose: Azure Key Vault's external-CA
        flow and cert-manager hand over CSRs built by someone else.
        """
        request = _load_csr(csr)
        if not request.is_signature_valid:
            raise CertificateAuthorityError("CSR signature does not verify")
        public_key = _check_key_strength(request.public_key())
        if key_type_of(public_key) != spec.key_type:
            raise CertificateAuthorityError(
                f"CSR key is {key_type_of(public_key) or 'another kind of key'}, "
                f"spec {spec.name!r} asks for {spec.key_type}")
        leaf = self._sign(public_key, spec, _subject_alt_names(spec), utc(now))
        return b"".join(_pem(c) for c in (leaf, *self._chain_to_send))

    def _sign(self, public_key: PublicKey, spec: CertificateSpec,
              names: list[x509.GeneralName], now: datetime) -> x509.Certificate:
        ca = self._certificate
        if not ca.not_valid_before_utc <= now < ca.not_valid_after_utc:
            raise CertificateAuthorityError(
                f"CA {ca.subject.rfc4514_string()} is not valid at {now.isoformat()} "
                f"(valid {ca.not_valid_before_utc.isoformat()} to "
                f"{ca.not_valid_after_utc.isoformat()})")
        if spec.lifetime <= timedelta(0):
            raise CertificateAuthorityError(f"spec {spec.name!r} has a non-positive lifetime")
        # Inside the CA's own validity: many verifiers reject a leaf that outlives its
        # issuer, and none would accept it once the CA has expired anyway.
        not_before = max(now - CLOCK_SKEW, ca.not_valid_before_utc)
        not_after = min(now + spec.lifetime, ca.not_valid_after_utc)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_subject(spec)).issuer_name(ca.subject)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(public_key, ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(_EKU[spec.usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False)
            .add_extension(self._authority_key_identifier(), critical=False)
        )
        if names:
            # An empty SAN extension is invalid (RFC 5280 4.2.1.6): omit it instead.
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        try:
            return sign_certificate(builder, self._key)
        except RemoteSigningError as error:
            raise CertificateAuthorityError(str(error)) from None

    def _authority_key_identifier(self) -> x509.AuthorityKeyIdentifier:
        try:
            ski = self._certificate.extensions.get_extension_for_class(
                x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key())
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except (ValueError, InvalidSignature):
        raise CertificateAuthorityError("CSR is not a readable PEM or DER request") from None
