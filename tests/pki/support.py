"""Shared strategies and helpers of the PKI tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from hypothesis import strategies as st

from keyward.pki.ca import CertificateAuthority
from keyward.pki.keys import PrivateKey, generate_private_key, private_key_pem
from keyward.pki.types import CertificateSpec, IssuedCertificate, Usage
from keyward.pki.validate import CertificateValidationError, validate_pair

#: Every test runs at this fixed moment unless it says otherwise.
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
labels = st.builds(
    lambda first, middle, last: first + middle + last if middle or last else first,
    st.sampled_from(_LABEL_CHARS),
    st.text(alphabet=_LABEL_CHARS + "-", max_size=8),
    st.sampled_from(_LABEL_CHARS) | st.just(""),
).filter(lambda label: not label.endswith("-"))
dns_names = st.builds(lambda parts, wildcard: ("*." if wildcard else "") + ".".join(parts),
                      st.lists(labels, min_size=1, max_size=3), st.booleans())
ip_addresses = st.ip_addresses().map(str)
USAGES: tuple[Usage, ...] = ("client", "server", "both")
common_names = st.text(alphabet=_LABEL_CHARS + "ABC -._", min_size=1, max_size=40)


@st.composite
def specs(draw: st.DrawFn) -> CertificateSpec:
    """Any EC spec the CA accepts (server certificates get at least one SAN)."""
    usage = draw(st.sampled_from(USAGES))
    names = tuple(draw(st.lists(dns_names, max_size=3)))
    ips = tuple(draw(st.lists(ip_addresses, max_size=3)))
    if usage != "client" and not names and not ips:
        names = (draw(dns_names),)
    return CertificateSpec(
        name=draw(st.sampled_from(["worker", "frontend", "internode"])),
        common_name=draw(common_names), dns_names=names, ip_addresses=ips, usage=usage,
        lifetime=draw(st.timedeltas(min_value=timedelta(minutes=5),
                                    max_value=timedelta(days=400))))


def problems(issued: IssuedCertificate, **overrides: object) -> list[str]:
    """The problems validate_pair lists for ``issued`` (empty if it passes)."""
    arguments: dict[str, object] = {"ca_pem": issued.ca_pem, "now": NOW}
    arguments.update(overrides)
    certificate = arguments.pop("certificate_pem", issued.certificate_pem)
    key = arguments.pop("private_key_pem", issued.private_key_pem)
    try:
        validate_pair(certificate, key, **arguments)  # type: ignore[arg-type]
    except CertificateValidationError as error:
        return error.problems
    return []


def make_two_level_ca(*, now: datetime = NOW) -> tuple[CertificateAuthority,
                                                      CertificateAuthority]:
    """A root and an intermediate CA it signed (path length 1 / 0); the intermediate
    carries the root as its chain, as an operator's ``ca.crt`` bundle would."""
    root_key, intermediate_key = generate_private_key(), generate_private_key()
    root = _ca_certificate("keyward root", "keyward root", root_key, root_key, 1, now)
    intermediate = _ca_certificate("keyward intermediate", "keyward root", intermediate_key,
                                   root_key, 0, now)
    return (CertificateAuthority(root, root_key),
            CertificateAuthority(intermediate, intermediate_key, [root]))


def _ca_certificate(subject: str, issuer: str, key: PrivateKey, signing_key: PrivateKey,
                    path_length: int, now: datetime, *,
                    lifetime: timedelta = timedelta(days=365)) -> x509.Certificate:
    def name(common_name: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])

    return (
        x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1)).not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


def third_party_ca(*, lifetime: timedelta = timedelta(days=365),
                   now: datetime = NOW) -> tuple[CertificateAuthority, PrivateKey]:
    """A root CA plus its key, for hand-building leaves keyward's CA would never sign."""
    key = generate_private_key()
    certificate = _ca_certificate("third-party root", "third-party root", key, key, 0, now,
                                  lifetime=lifetime)
    return CertificateAuthority(certificate, key), key


def third_party_leaf(ca: CertificateAuthority, ca_key: PrivateKey, *, common_name: str,
                     not_after: datetime, dns_names: tuple[str, ...] = (),
                     now: datetime = NOW) -> IssuedCertificate:
    """A leaf with no EKU and no KeyUsage, valid until ``not_after`` whatever the CA's end."""
    key = generate_private_key()
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME,
                                                           common_name)]))
               .issuer_name(ca.certificate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(not_after))
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]),
            critical=False)
    certificate = builder.sign(ca_key, hashes.SHA256())
    return IssuedCertificate(certificate.public_bytes(serialization.Encoding.PEM),
                             private_key_pem(key), ca.ca_pem)
