"""The one check every certificate passes before it is installed or loaded.

Issuers differ (a local CA, Vault PKI, Azure Key Vault, cert-manager) and each
can hand back something subtly wrong: a key from another request, a chain to the
wrong CA, a missing SAN, a client certificate without ``clientAuth``. Temporal
then fails at handshake time, on every worker at once. :func:`validate_pair`
finds all such problems up front and reports every one of them, so one failed
renewal tells an operator everything that needs fixing.

The rules follow what Go's ``crypto/tls`` (Temporal server and CLI) accepts, not
the stricter Web PKI: no EKU extension, or ``anyExtendedKeyUsage``, permits
every use; a CA without a KeyUsage extension may sign; a self-signed leaf listed
as its own CA (Azure Key Vault's "Self" certificates, pinned) verifies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyward.errors import KeywardError
from keyward.pki.ca import is_ca, utc
from keyward.pki.keys import PrivateKeyError, load_private_key, public_key_der
from keyward.pki.subject import asked_for
from keyward.pki.types import CertificateSpec

TlsRole = Literal["client", "server"]

_ROLE_EKU: dict[TlsRole, x509.ObjectIdentifier] = {
    "client": ExtendedKeyUsageOID.CLIENT_AUTH,
    "server": ExtendedKeyUsageOID.SERVER_AUTH,
}
_EKU_NAME: dict[TlsRole, str] = {"client": "clientAuth", "server": "serverAuth"}


@dataclass(frozen=True)
class CertificateSummary:
    """What an operator (and a log line) needs to know about a certificate; no secrets."""

    serial: str
    subject: str
    issuer: str
    not_before: datetime
    not_after: datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    #: The TLS roles the certificate may play, by Go's rules (no EKU: both).
    usages: tuple[TlsRole, ...]
    fingerprint_sha256: str


class CertificateValidationError(KeywardError):
    """A certificate (and key) must not be installed; ``problems`` says every reason."""

    def __init__(self, problems: list[str], *, summary: CertificateSummary | None = None) -> None:
        self.problems = list(problems)
        #: The rejected certificate, when it could be read at all (for the log line).
        self.summary = summary
        super().__init__("certificate rejected: " + "; ".join(self.problems))


def summarize(certificate_pem: bytes) -> CertificateSummary:
    """A summary of the first certificate in ``certificate_pem`` (the leaf), unvalidated."""
    return _summary(_load_chain(certificate_pem)[0])


def validate_pair(certificate_pem: bytes, private_key_pem: bytes, *, ca_pem: bytes | None,
                  now: datetime, spec: CertificateSpec | None = None,
                  min_remaining: timedelta = timedelta(0),
                  trust_anchor: bytes | None = None) -> CertificateSummary:
    """Check a leaf (plus chain) and its key; the summary when fine, else every problem.

    ``ca_pem`` holds the trust anchor(s) relying parties will use; the leaf must
    chain to one of them through the intermediates that follow it in
    ``certificate_pem``. Without ``ca_pem`` the chain is not checked: the caller
    has nothing to check it against. With ``spec``, the certificate must also be
    what the spec asked for: its common name, usage and SANs.

    ``trust_anchor`` is the operator's pin (PEM, one or more certificates), which the
    issuer cannot choose: ``ca_pem`` usually comes from the same issuer response as
    the leaf, so a compromised or misconfigured issuer passes the ``ca_pem`` check
    with a CA of its own. With a pin, the leaf must chain to it (intermediates from
    ``certificate_pem`` and ``ca_pem``), and every CA in ``ca_pem`` must be a pinned
    certificate or chain to one: ``ca_pem`` is installed as the ``ca.crt`` that the
    service trusts its peers with, so a foreign CA there would let foreign peers in.
    """
    moment = utc(now)
    chain = _load_chain(certificate_pem)
    leaf = chain[0]
    problems = _key_problems(leaf, private_key_pem)
    problems += _time_problems(leaf, moment, min_remaining)
    if ca_pem is not None:
        problems += _chain_problems(chain, ca_pem, moment)
    if trust_anchor is not None:
        problems += _anchor_problems(chain, ca_pem, trust_anchor, moment)
    if spec is not None:
        problems += _spec_problems(leaf, spec)
    summary = _summary(leaf)
    if problems:
        raise CertificateValidationError(problems, summary=summary)
    return summary


@dataclass
class _AltNames:
    dns_names: list[str] = field(default_factory=list)
    ips: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = field(default_factory=list)


def _load_chain(certificate_pem: bytes) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(certificate_pem)
    except ValueError:
        raise CertificateValidationError(["certificate is not readable PEM"]) from None


def _summary(leaf: x509.Certificate) -> CertificateSummary:
    names = _alt_names(leaf)
    return CertificateSummary(
        serial=format(leaf.serial_number, "x"),
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        not_before=leaf.not_valid_before_utc,
        not_after=leaf.not_valid_after_utc,
        dns_names=tuple(names.dns_names),
        ip_addresses=tuple(str(ip) for ip in names.ips),
        usages=tuple(role for role in ("client", "server") if _permits(leaf, role)),
        fingerprint_sha256=leaf.fingerprint(hashes.SHA256()).hex(),
    )


def _alt_names(leaf: x509.Certificate) -> _AltNames:
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return _AltNames()
    ips = [ip for ip in san.get_values_for_type(x509.IPAddress)
           if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)]
    return _AltNames(san.get_values_for_type(x509.DNSName), ips)


def _permits(leaf: x509.Certificate, role: TlsRole) -> bool:
    try:
        usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True  # Go: no EKU extension means any usage
    return _ROLE_EKU[role] in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _key_problems(leaf: x509.Certificate, private_key_pem: bytes) -> list[str]:
    try:
        key = load_private_key(private_key_pem)
    except PrivateKeyError as error:
        return [str(error)]
    try:
        leaf_key = public_key_der(leaf.public_key())
    except PrivateKeyError as error:
        return [f"certificate key: {error}"]
    if leaf_key != public_key_der(key):
        return ["private key does not match the certificate"]
    return []


def _time_problems(leaf: x509.Certificate, now: datetime,
                   min_remaining: timedelta) -> list[str]:
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if now < not_before:
        return [f"certificate is not valid yet (valid from {not_before.isoformat()})"]
    if now > not_after:
        return [f"certificate expired at {not_after.isoformat()}"]
    if not_after - now < min_remaining:
        return [f"certificate has {not_after - now} left, less than the required "
                f"{min_remaining} (expires {not_after.isoformat()})"]
    return []


def _chain_problems(chain: list[x509.Certificate], ca_pem: bytes, now: datetime) -> list[str]:
    try:
        anchors = x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        return ["CA certificate is not readable PEM"]
    leaf = chain[0]
    problems = [f"CA certificate {anchor.subject.rfc4514_string()} is not a CA "
                "(needs BasicConstraints CA:true, and keyCertSign if KeyUsage is present)"
                for anchor in anchors if anchor != leaf and not is_ca(anchor)]
    if problems:
        return problems
    failure = _verification_failure(leaf, chain[1:], anchors, now)
    return [f"certificate does not chain to the given CA: {failure}"] if failure else []


def _anchor_problems(chain: list[x509.Certificate], ca_pem: bytes | None,
                     trust_anchor: bytes, now: datetime) -> list[str]:
    """The pinned anchor check of :func:`validate_pair` (see there for why)."""
    try:
        anchors = x509.load_pem_x509_certificates(trust_anchor)
    except ValueError:
        return ["pinned trust anchor is not readable PEM"]
    try:
        supplied = x509.load_pem_x509_certificates(ca_pem) if ca_pem else []
    except ValueError:
        supplied = []  # already reported by _chain_problems
    intermediates = [cert for cert in (*chain[1:], *supplied) if cert not in anchors]
    problems: list[str] = []
    failure = _verification_failure(chain[0], intermediates, anchors, now)
    if failure:
        problems.append(f"certificate does not chain to the pinned trust anchor: {failure}")
    for ca in supplied:
        if ca in anchors or ca == chain[0]:
            continue
        others = [cert for cert in intermediates if cert != ca]
        if _verification_failure(ca, others, anchors, now):
            problems.append(f"CA certificate {ca.subject.rfc4514_string()} supplied by the "
                            "issuer does not chain to the pinned trust anchor (it would be "
                            "installed as the CA that peers are checked against)")
    return problems


def _verification_failure(leaf: x509.Certificate, intermediates: list[x509.Certificate],
                          anchors: list[x509.Certificate], now: datetime) -> str | None:
    """Why ``leaf`` does not chain to ``anchors``, or None when it does."""
    # An out-of-date leaf is already reported; check the signatures at a moment the
    # leaf was valid so the chain problem, if any, is a different one.
    moment = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    builder = (verification.PolicyBuilder()
               .store(verification.Store(anchors)).time(moment)
               # Extensions of the leaf are checked by _spec_problems with clearer
               # messages; the Web PKI defaults (SAN required on client certificates,
               # critical BasicConstraints and KeyUsage on CAs) would reject pairs
               # Go's TLS accepts.
               .extension_policies(ca_policy=_CA_POLICY,
                                   ee_policy=verification.ExtensionPolicy.permit_all()))
    try:
        builder.build_client_verifier().verify(leaf, intermediates)
    except verification.VerificationError as error:
        return str(error)
    return None


def _ca_key_usage(_policy: verification.Policy, _certificate: x509.Certificate,
                  usage: x509.KeyUsage | None) -> None:
    if usage is not None and not usage.key_cert_sign:
        raise ValueError("KeyUsage of a CA certificate lacks keyCertSign")


# The verifier insists on BasicConstraints itself (and checks CA:true); keyCertSign
# is enforced only when KeyUsage is present, as RFC 5280 4.2.1.3 and Go do.
_CA_POLICY = (verification.ExtensionPolicy.permit_all()
              .require_present(x509.BasicConstraints, verification.Criticality.AGNOSTIC, None)
              .may_be_present(x509.KeyUsage, verification.Criticality.AGNOSTIC, _ca_key_usage))


def _spec_problems(leaf: x509.Certificate, spec: CertificateSpec) -> list[str]:
    problems: list[str] = []
    common_names = [attribute.value for attribute in
                    leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if common_names != [spec.common_name]:
        problems.append(f"subject common name is {common_names or 'missing'}, "
                        f"spec {spec.name!r} wants {spec.common_name!r}")
    problems += _subject_problems(leaf, spec)
    roles: list[TlsRole] = ["client", "server"] if spec.usage == "both" else [spec.usage]
    problems += [f"extended key usage lacks {_EKU_NAME[role]} (spec {spec.name!r} is a "
                 f"{role} certificate)" for role in roles if not _permits(leaf, role)]
    found = _alt_names(leaf)
    problems += [f"SAN lacks DNS name {name!r}" for name in spec.dns_names
                 if not any(_dns_matches(pattern, name) for pattern in found.dns_names)]
    for text in spec.ip_addresses:
        try:
            wanted = ipaddress.ip_address(text)
        except ValueError:
            problems.append(f"spec {spec.name!r} lists an invalid IP address {text!r}")
            continue
        if wanted not in found.ips:
            problems.append(f"SAN lacks IP address {text}")
    if "server" in roles and not found.dns_names and not found.ips:
        problems.append("server certificate has no SANs; TLS clients ignore the common name")
    return problems


def _dns_matches(pattern: str, name: str) -> bool:
    """RFC 6125 matching: case-insensitive, ``*`` only as the whole leftmost label."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern == name:
        return True
    if not pattern.startswith("*."):
        return False
    head, _, rest = name.partition(".")
    return bool(head) and rest == pattern[2:] and not name.startswith("*")


def _subject_problems(leaf: x509.Certificate, spec: CertificateSpec) -> list[str]:
    """Each subject attribute the spec asks for (C, ST, L, O, OU) with exactly its values,
    in any order. What the spec leaves out is not checked: a Vault role or a cert-manager
    issuer may add attributes of its own, and the spec does not forbid them."""
    problems: list[str] = []
    for oid, label, wanted in asked_for(spec):
        found = [str(attribute.value) for attribute in leaf.subject.get_attributes_for_oid(oid)]
        if sorted(found) != sorted(wanted):
            problems.append(f"subject {label} is {found or 'missing'}, spec {spec.name!r} "
                            f"wants {list(wanted)}")
    return problems
