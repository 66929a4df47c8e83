"""The certificate mechanics of the PKI engine: keys, names, certificates, CSRs and CRLs.

Everything here is pure: it builds and parses X.509 objects the way Vault's
``sdk/helper/certutil`` does, and knows nothing about requests, storage or
mounts. The backend decides *what* to issue; this module decides how the bytes
look (which extensions, which hash, how a serial or a PEM string is printed).
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    SignatureAlgorithmOID,
)

from keyward_devstack.vaultdev.errors import UserError

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_RSA_BITS = (2048, 3072, 4096, 8192)
_EC_CURVES: dict[int, ec.EllipticCurve] = {
    224: ec.SECP224R1(),
    256: ec.SECP256R1(),
    384: ec.SECP384R1(),
    521: ec.SECP521R1(),
}
#: The hash Vault picks for an EC key of this size when ``signature_bits`` is 0.
_EC_DEFAULT_SIGNATURE_BITS = {224: 256, 256: 256, 384: 384, 521: 512}
SigningHash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_HASHES: dict[int, type[SigningHash]] = {
    256: hashes.SHA256, 384: hashes.SHA384, 512: hashes.SHA512,
}

#: Vault's key usage names (``x509.KeyUsage`` constants without the prefix).
KEY_USAGES = (
    "DigitalSignature", "ContentCommitment", "KeyEncipherment", "DataEncipherment",
    "KeyAgreement", "CertSign", "CRLSign", "EncipherOnly", "DecipherOnly",
)
#: Vault's extended key usage names and the OIDs they stand for.
EXT_KEY_USAGES: dict[str, x509.ObjectIdentifier] = {
    "any": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "serverauth": ExtendedKeyUsageOID.SERVER_AUTH,
    "clientauth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "codesigning": ExtendedKeyUsageOID.CODE_SIGNING,
    "emailprotection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsecendsystem": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsectunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsecuser": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocspsigning": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoftservergatedcrypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscapeservergatedcrypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoftcommercialcodesigning": x509.ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoftkernelcodesigning": x509.ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}
#: Go's names for the signature algorithms Vault reports (``revocation_signature_algorithm``).
_SIGNATURE_ALGORITHM_NAMES = {
    SignatureAlgorithmOID.RSA_WITH_SHA256: "SHA256WithRSA",
    SignatureAlgorithmOID.RSA_WITH_SHA384: "SHA384WithRSA",
    SignatureAlgorithmOID.RSA_WITH_SHA512: "SHA512WithRSA",
    SignatureAlgorithmOID.ECDSA_WITH_SHA256: "ECDSAWithSHA256",
    SignatureAlgorithmOID.ECDSA_WITH_SHA384: "ECDSAWithSHA384",
    SignatureAlgorithmOID.ECDSA_WITH_SHA512: "ECDSAWithSHA512",
    SignatureAlgorithmOID.ED25519: "PureEd25519",
}


# keys ------------------------------------------------------------------------------


def key_parameters(key_type: str, key_bits: int, *, allow_any: bool = False) -> tuple[str, int]:
    """Validate a key type and size as ``certutil.ValidateKeyTypeLength`` does."""
    if key_type == "rsa":
        bits = key_bits or 2048
        if bits not in _RSA_BITS:
            raise UserError(f"unsupported bit length for RSA key: {bits}")
        return key_type, bits
    if key_type == "ec":
        bits = key_bits or 256
        if bits not in _EC_CURVES:
            raise UserError(f"unsupported bit length for EC key: {bits}")
        return key_type, bits
    if key_type == "ed25519":
        return key_type, 0
    if key_type == "any" and allow_any:
        return key_type, key_bits
    raise UserError(f"unknown key type {key_type}")


def signature_bits(key_type: str, key_bits: int, requested: int) -> int:
    """``certutil.ValidateDefaultOrValueKeyTypeSignatureLength``: 0 picks the key's default."""
    if key_type == "ed25519":
        return 0
    if requested == 0:
        if key_type == "ec":
            return _EC_DEFAULT_SIGNATURE_BITS.get(key_bits, 256)
        return 0 if key_type == "any" else 256
    if requested not in _HASHES:
        raise UserError(f"unsupported signature algorithm: {requested}")
    return requested


def generate_key(key_type: str, key_bits: int) -> PrivateKey:
    """A fresh key of a validated type and size (see :func:`key_parameters`)."""
    if key_type == "ec":
        return ec.generate_private_key(_EC_CURVES[key_bits])
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=key_bits)


def load_private_key(pem: str) -> PrivateKey:
    """A PEM private key (PKCS#1, SEC 1 or PKCS#8); UserError for anything else."""
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), None)
    except (ValueError, TypeError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise UserError(f"unable to parse private key: {exc}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
                      | ed25519.Ed25519PrivateKey):
        raise UserError("unsupported private key type")
    return key


def key_type_of(key: PrivateKey | PublicKey) -> str:
    """Vault's ``private_key_type`` for a key: ``rsa``, ``ec`` or ``ed25519``."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    return "ed25519"


def key_bits_of(key: PrivateKey | PublicKey) -> int:
    """The key's size as Vault counts it (0 for Ed25519)."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey | ec.EllipticCurvePrivateKey
                  | ec.EllipticCurvePublicKey):
        return key.key_size
    return 0


def public_key_of(certificate: x509.Certificate | x509.CertificateSigningRequest) -> PublicKey:
    """The subject's public key, refused when it is not one Vault can use."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey
                      | ed25519.Ed25519PublicKey):
        raise UserError("Refusing to sign CSR with empty PublicKey. This usually means the "
                        "SubjectPublicKeyInfo field has an OID not recognized by Go, such as "
                        "1.2.840.113549.1.1.10 for rsaPSS.")
    return key


def same_public_key(left: PublicKey, right: PublicKey) -> bool:
    """Whether two public keys are the same key (compared by their SubjectPublicKeyInfo)."""
    encoding, public_format = serialization.Encoding.DER, serialization.PublicFormat
    return bool(left.public_bytes(encoding, public_format.SubjectPublicKeyInfo)
                == right.public_bytes(encoding, public_format.SubjectPublicKeyInfo))


def private_key_pem(key: PrivateKey, *, pkcs8: bool) -> str:
    """PKCS#8, or Vault's default: the key's own DER (PKCS#1, SEC 1; PKCS#8 for Ed25519)."""
    return private_key_der_pem(key, pkcs8=pkcs8)[1]


def private_key_der_pem(key: PrivateKey, *, pkcs8: bool) -> tuple[bytes, str]:
    """The DER bytes and the PEM text (no trailing newline) of a private key."""
    formats = serialization.PrivateFormat
    own = formats.PKCS8 if isinstance(key, ed25519.Ed25519PrivateKey) else \
        formats.TraditionalOpenSSL
    key_format = formats.PKCS8 if pkcs8 else own
    der = key.private_bytes(serialization.Encoding.DER, key_format, serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, key_format, serialization.NoEncryption())
    return der, pem.decode("ascii").rstrip("\n")


def storage_key_pem(key: PrivateKey) -> str:
    """How a key is kept in the mount: PKCS#8 PEM with one trailing newline."""
    return private_key_pem(key, pkcs8=True) + "\n"


def hash_for(signing_key: PrivateKey, bits: int) -> SigningHash | None:
    """The digest to sign with: none for Ed25519, else the requested or the key's default."""
    if isinstance(signing_key, ed25519.Ed25519PrivateKey):
        return None
    if bits == 0:
        bits = signature_bits(key_type_of(signing_key), key_bits_of(signing_key), 0)
    return _HASHES[bits]()


def signature_algorithm_name(certificate: x509.Certificate) -> str:
    """Go's name for a certificate's signature algorithm (``SHA256WithRSA``), or ``""``."""
    return _SIGNATURE_ALGORITHM_NAMES.get(certificate.signature_algorithm_oid, "")


# names -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """The distinguished name fields Vault accepts on CA and role requests."""

    common_name: str = ""
    ou: Sequence[str] = ()
    organization: Sequence[str] = ()
    country: Sequence[str] = ()
    locality: Sequence[str] = ()
    province: Sequence[str] = ()
    street_address: Sequence[str] = ()
    postal_code: Sequence[str] = ()
    serial_number: str = ""

    def name(self) -> x509.Name:
        """The subject as an X.509 name, in the order Go's ``pkix.Name`` writes it."""
        attributes: list[x509.NameAttribute[str]] = []
        groups = (
            (NameOID.COUNTRY_NAME, self.country),
            (NameOID.STATE_OR_PROVINCE_NAME, self.province),
            (NameOID.LOCALITY_NAME, self.locality),
            (NameOID.STREET_ADDRESS, self.street_address),
            (NameOID.POSTAL_CODE, self.postal_code),
            (NameOID.ORGANIZATION_NAME, self.organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, self.ou),
        )
        for oid, values in groups:
            attributes.extend(x509.NameAttribute(oid, value) for value in values)
        if self.common_name:
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, self.common_name))
        if self.serial_number:
            attributes.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, self.serial_number))
        return x509.Name(attributes)


def common_name_of(name: x509.Name) -> str:
    """The first CN of a name, or ``""``."""
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else ""


@dataclass(frozen=True)
class SubjectAltNames:
    """The SANs a certificate carries."""

    dns: Sequence[str] = ()
    emails: Sequence[str] = ()
    ips: Sequence[IPAddress] = ()
    uris: Sequence[str] = ()

    def extension(self) -> x509.SubjectAlternativeName | None:
        """The SAN extension, or None when there is nothing to put in it."""
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in self.dns]
        names += [x509.RFC822Name(email) for email in self.emails]
        names += [x509.IPAddress(ip) for ip in self.ips]
        names += [x509.UniformResourceIdentifier(uri) for uri in self.uris]
        return x509.SubjectAlternativeName(names) if names else None


def sans_of(request: x509.Certificate | x509.CertificateSigningRequest) -> SubjectAltNames:
    """The SANs a CSR (or certificate) asks for."""
    try:
        value = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return SubjectAltNames()
    return SubjectAltNames(
        dns=value.get_values_for_type(x509.DNSName),
        emails=value.get_values_for_type(x509.RFC822Name),
        ips=[ip for ip in value.get_values_for_type(x509.IPAddress)
             if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)],
        uris=value.get_values_for_type(x509.UniformResourceIdentifier),
    )


# certificates -------------------------------------------------------------------------


@dataclass(frozen=True)
class Urls:
    """The authority information access URLs written into issued certificates."""

    issuing_certificates: Sequence[str] = ()
    crl_distribution_points: Sequence[str] = ()
    ocsp_servers: Sequence[str] = ()

    def empty(self) -> bool:
        """Whether no URL of any kind is configured."""
        return not (self.issuing_certificates or self.crl_distribution_points
                    or self.ocsp_servers)


@dataclass(frozen=True)
class Template:
    """What a new certificate says; the signer adds issuer name, AKI and signature."""

    subject: x509.Name
    public_key: PublicKey
    not_before: datetime
    not_after: datetime
    is_ca: bool = False
    #: The CA's pathLenConstraint; None for no constraint (Go's -1).
    max_path_length: int | None = None
    key_usage: Sequence[str] = ()
    ext_key_usage: Sequence[x509.ObjectIdentifier] = ()
    sans: SubjectAltNames = field(default_factory=SubjectAltNames)
    urls: Urls = field(default_factory=Urls)
    #: Extensions copied verbatim (from a CSR or a re-signed certificate).
    extra: Sequence[x509.Extension[x509.ExtensionType]] = ()
    serial: int = 0
    basic_constraints_for_leaf: bool = False


def key_usage_extension(names: Sequence[str]) -> x509.KeyUsage | None:
    """Vault's ``parseKeyUsages``: case-insensitive names, unknown ones ignored."""
    wanted = {name.strip().lower() for name in names}
    flags = {usage: usage.lower() in wanted for usage in KEY_USAGES}
    if not any(flags.values()):
        return None
    return x509.KeyUsage(
        digital_signature=flags["DigitalSignature"], content_commitment=flags["ContentCommitment"],
        key_encipherment=flags["KeyEncipherment"], data_encipherment=flags["DataEncipherment"],
        key_agreement=flags["KeyAgreement"], key_cert_sign=flags["CertSign"],
        crl_sign=flags["CRLSign"], encipher_only=flags["EncipherOnly"],
        decipher_only=flags["DecipherOnly"],
    )


def sign(template: Template, *, issuer: x509.Certificate | None,
         signing_key: PrivateKey, signature_bits_: int = 0) -> x509.Certificate:
    """Sign ``template`` with ``signing_key``: self-signed when ``issuer`` is None."""
    ski = x509.SubjectKeyIdentifier.from_public_key(template.public_key)
    if issuer is None:
        issuer_name = template.subject
        aki = x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
    else:
        issuer_name = issuer.subject
        aki = _authority_key_identifier(issuer)
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(issuer_name)
        .public_key(template.public_key)
        .serial_number(template.serial or x509.random_serial_number())
        .not_valid_before(template.not_before)
        .not_valid_after(template.not_after)
    )
    extensions: dict[x509.ObjectIdentifier, tuple[x509.ExtensionType, bool]] = {}
    for extension in template.extra:
        extensions[extension.oid] = (extension.value, extension.critical)
    if template.is_ca or template.basic_constraints_for_leaf:
        path_length = template.max_path_length if template.is_ca else None
        extensions[x509.BasicConstraints.oid] = (
            x509.BasicConstraints(ca=template.is_ca, path_length=path_length), True)
    usage = key_usage_extension(template.key_usage)
    if usage is not None:
        extensions[x509.KeyUsage.oid] = (usage, True)
    if template.ext_key_usage:
        extensions[x509.ExtendedKeyUsage.oid] = (
            x509.ExtendedKeyUsage(list(dict.fromkeys(template.ext_key_usage))), False)
    extensions[x509.SubjectKeyIdentifier.oid] = (ski, False)
    extensions[x509.AuthorityKeyIdentifier.oid] = (aki, False)
    sans = template.sans.extension()
    if sans is not None:
        extensions[x509.SubjectAlternativeName.oid] = (sans, False)
    _add_urls(extensions, template.urls)
    for value, critical in extensions.values():
        builder = builder.add_extension(value, critical=critical)
    return builder.sign(signing_key, hash_for(signing_key, signature_bits_))


def _authority_key_identifier(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key_of(issuer))
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def _add_urls(extensions: dict[x509.ObjectIdentifier, tuple[x509.ExtensionType, bool]],
              urls: Urls) -> None:
    access = [x509.AccessDescription(AuthorityInformationAccessOID.OCSP,
                                     x509.UniformResourceIdentifier(url))
              for url in urls.ocsp_servers]
    access += [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                      x509.UniformResourceIdentifier(url))
               for url in urls.issuing_certificates]
    if access:
        extensions[x509.AuthorityInformationAccess.oid] = (
            x509.AuthorityInformationAccess(access), False)
    if urls.crl_distribution_points:
        points = [x509.DistributionPoint(full_name=[x509.UniformResourceIdentifier(url)],
                                         relative_name=None, reasons=None, crl_issuer=None)
                  for url in urls.crl_distribution_points]
        extensions[x509.CRLDistributionPoints.oid] = (x509.CRLDistributionPoints(points), False)


def build_csr(key: PrivateKey, subject: x509.Name, sans: SubjectAltNames, *,
              add_basic_constraints: bool, signature_bits_: int = 0
              ) -> x509.CertificateSigningRequest:
    """An intermediate's CSR: its subject, SANs and (optionally) CA basic constraints."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    extension = sans.extension()
    if extension is not None:
        builder = builder.add_extension(extension, critical=False)
    if add_basic_constraints:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    return builder.sign(key, hash_for(key, signature_bits_))


def parse_csr(text: str) -> x509.CertificateSigningRequest:
    """A PEM CSR with Vault's error texts for empty, undecodable and unparsable input."""
    if not text:
        raise UserError('"csr" is empty')
    blocks = pem_blocks(text)
    if not blocks:
        raise UserError("csr contains no data")
    try:
        csr = x509.load_der_x509_csr(blocks[0][1])
    except ValueError as exc:
        raise UserError(f"certificate request could not be parsed: {exc}") from None
    public_key_of(csr)
    return csr


def verified_by(certificate: x509.Certificate, parent: x509.Certificate) -> bool:
    """Whether ``parent`` issued ``certificate``: names match and the signature verifies."""
    try:
        certificate.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def self_signed(certificate: x509.Certificate) -> bool:
    """Whether a certificate is its own issuer (and its signature says so)."""
    return verified_by(certificate, certificate)


def build_crl(issuer: x509.Certificate, signing_key: PrivateKey,
              revoked: Sequence[tuple[int, datetime]], *, number: int,
              this_update: datetime, next_update: datetime
              ) -> x509.CertificateRevocationList:
    """A CRL from ``issuer`` listing ``(serial, revocation time)`` pairs."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(_authority_key_identifier(issuer), critical=False)
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return builder.sign(signing_key, hash_for(signing_key, 0))


# encodings -----------------------------------------------------------------------------


def pem_blocks(text: str) -> list[tuple[str, bytes]]:
    """The ``(type, DER)`` of each PEM block in ``text``, as Go's ``pem.Decode`` loop sees them.

    Text between blocks is skipped (OpenSSL's chain output), a block whose base64 does
    not decode ends the list.
    """
    blocks: list[tuple[str, bytes]] = []
    rest = text
    while True:
        start = rest.find("-----BEGIN ")
        if start < 0:
            return blocks
        header_end = rest.find("-----", start + len("-----BEGIN "))
        if header_end < 0:
            return blocks
        kind = rest[start + len("-----BEGIN "):header_end]
        footer = f"-----END {kind}-----"
        end = rest.find(footer, header_end)
        if end < 0:
            return blocks
        body = rest[header_end + len("-----"):end]
        try:
            der = base64.b64decode("".join(body.split()), validate=True)
        except ValueError:
            return blocks
        blocks.append((kind, der))
        rest = rest[end + len(footer):]


def certificate_pem(certificate: x509.Certificate) -> str:
    """A certificate as Vault returns it in API fields: PEM without the trailing newline."""
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii").rstrip("\n")


def der_b64(data: bytes) -> str:
    """Base64 of DER bytes, for ``format=der``."""
    return base64.b64encode(data).decode("ascii")


def load_certificate(pem: str) -> x509.Certificate:
    """A certificate from stored PEM (trusted input: the mount wrote it)."""
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


def serial_text(serial: int) -> str:
    """A serial number as Vault prints it: lower-case hex bytes joined by colons."""
    raw = format(serial, "x")
    raw = raw if len(raw) % 2 == 0 else f"0{raw}"
    return ":".join(raw[index : index + 2] for index in range(0, len(raw), 2))


def normalize_serial(serial: str) -> str:
    """Vault's storage form of a serial: lower case, hyphens for colons."""
    return serial.lower().replace(":", "-")


def go_time(moment: datetime) -> str:
    """A time as Go's ``time.Time.String`` shows it in Vault's TTL errors (UTC, seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_nano(moment: datetime) -> str:
    """Go's ``time.RFC3339Nano`` for a UTC time: fractional seconds without trailing zeros."""
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + "Z"
