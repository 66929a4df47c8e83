"""The CA: what a bootstrapped CA looks like, and what it will and will not sign."""

from __future__ import annotations

import ipaddress
import stat
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from keyward.pki.ca import CertificateAuthority, CertificateAuthorityError
from keyward.pki.keys import generate_private_key, private_key_pem
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from tests.pki.support import NOW, make_two_level_ca

T = TypeVar("T", bound=x509.ExtensionType)


def extension(certificate: x509.Certificate, kind: type[T]) -> x509.Extension[T]:
    return certificate.extensions.get_extension_for_class(kind)


def leaf_of(pem: bytes) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem)


def csr_for(key: ec.EllipticCurvePrivateKey, *extensions: x509.ExtensionType) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "evil.example")]))
    for value in extensions:
        builder = builder.add_extension(value, critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_bootstrap_makes_a_constrained_root(ca: CertificateAuthority) -> None:
    """A bootstrapped CA: critical CA:true with path length 0, critical keyCertSign+cRLSign,
    a subject key identifier, self-signed."""
    certificate = ca.certificate
    constraints = extension(certificate, x509.BasicConstraints)
    assert constraints.critical
    assert (constraints.value.ca, constraints.value.path_length) == (True, 0)
    usage = extension(certificate, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign
    assert usage.value.crl_sign
    assert usage.value.digital_signature
    assert not usage.value.key_encipherment
    ski = extension(certificate, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(certificate.public_key())
    certificate.verify_directly_issued_by(certificate)
    assert certificate.not_valid_before_utc == NOW - timedelta(days=1, minutes=1)
    assert certificate.not_valid_after_utc == NOW - timedelta(days=1) + timedelta(days=3650)


def test_bootstrap_honours_path_length_and_key_type() -> None:
    """path_length=None means unconstrained; the CA key is of the requested type."""
    ca = CertificateAuthority.bootstrap("rsa root", key_type="rsa-2048", path_length=None,
                                        now=NOW)
    assert extension(ca.certificate, x509.BasicConstraints).value.path_length is None
    assert ca.certificate.public_key().key_size == 2048  # type: ignore[union-attr]


def test_issued_leaf_has_the_documented_extensions(ca: CertificateAuthority) -> None:
    """A leaf: CA:false (critical), digitalSignature only for EC (critical), EKU per usage,
    AKI equal to the CA's SKI, its own SKI, SANs in spec order, random serial."""
    spec = CertificateSpec(name="frontend", common_name="temporal.internal", usage="both",
                           dns_names=("temporal", "TEMPORAL.internal"),
                           ip_addresses=("10.0.0.1", "::1"))
    leaf = leaf_of(ca.issue(spec, now=NOW).certificate_pem)
    assert extension(leaf, x509.BasicConstraints).critical
    assert not extension(leaf, x509.BasicConstraints).value.ca
    usage = extension(leaf, x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature
    assert not usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    assert list(extension(leaf, x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    ca_ski = extension(ca.certificate, x509.SubjectKeyIdentifier).value
    assert extension(leaf, x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski.digest
    assert extension(leaf, x509.SubjectKeyIdentifier).value == \
        x509.SubjectKeyIdentifier.from_public_key(leaf.public_key())
    san = extension(leaf, x509.SubjectAlternativeName).value
    # The CN joins the SANs of a server certificate; "TEMPORAL.internal" is the same name.
    assert san.get_values_for_type(x509.DNSName) == ["temporal", "TEMPORAL.internal"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1"),
                                                      ipaddress.ip_address("::1")]
    assert leaf.serial_number != leaf_of(ca.issue(spec, now=NOW).certificate_pem).serial_number
    assert leaf.serial_number.bit_length() > 64


def test_server_common_name_becomes_a_san_client_common_name_does_not(
        ca: CertificateAuthority) -> None:
    """Go ignores the CN of server certificates, so it is added as a SAN (an IP if it is one);
    a client certificate carries only the SANs the spec lists."""
    server = leaf_of(ca.issue(CertificateSpec(name="s", common_name="10.1.2.3", usage="server"),
                              now=NOW).certificate_pem)
    assert extension(server, x509.SubjectAlternativeName).value.get_values_for_type(
        x509.IPAddress) == [ipaddress.ip_address("10.1.2.3")]
    client = leaf_of(ca.issue(CertificateSpec(name="c", common_name="keyward-worker"),
                              now=NOW).certificate_pem)
    with pytest.raises(x509.ExtensionNotFound):
        extension(client, x509.SubjectAlternativeName)


@pytest.mark.parametrize(("spec", "message"), [
    (CertificateSpec(name="s", common_name="Temporal frontend", usage="server"),
     "without a DNS name or IP address"),
    (CertificateSpec(name="s", common_name="x", dns_names=("bad name",)), "invalid DNS name"),
    (CertificateSpec(name="s", common_name="x", dns_names=("bücher.example",)),
     "invalid DNS name"),
    (CertificateSpec(name="s", common_name="x", ip_addresses=("300.1.1.1",)),
     "invalid IP address"),
    (CertificateSpec(name="s", common_name="x" * 65), "invalid common name"),
    (CertificateSpec(name="s", common_name="x", lifetime=timedelta(0)), "non-positive lifetime"),
])
def test_unsignable_specs_are_refused(ca: CertificateAuthority, spec: CertificateSpec,
                                      message: str) -> None:
    """Specs that would give a useless or malformed certificate are refused with a reason."""
    with pytest.raises(CertificateAuthorityError, match=message):
        ca.issue(spec, now=NOW)


def test_an_expired_ca_refuses_to_issue() -> None:
    """After its own not_after the CA signs nothing (the leaf could never verify)."""
    ca = CertificateAuthority.bootstrap("short", lifetime=timedelta(days=1), now=NOW)
    with pytest.raises(CertificateAuthorityError, match="not valid at"):
        ca.issue(CertificateSpec(name="c", common_name="c"), now=NOW + timedelta(days=2))


def test_naive_now_is_refused(ca: CertificateAuthority) -> None:
    """A naive datetime is not guessed to be UTC."""
    with pytest.raises(ValueError, match="timezone-aware"):
        ca.issue(CertificateSpec(name="c", common_name="c"), now=NOW.replace(tzinfo=None))


def test_sign_csr_vouches_for_the_spec_not_the_request(ca: CertificateAuthority) -> None:
    """A CSR asking for CA:true and extra SANs gets a CA:false leaf with the spec's names
    only, the spec's subject, and the CSR's key; DER works as well as PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = csr_for(key, x509.BasicConstraints(ca=True, path_length=None),
                  x509.SubjectAlternativeName([x509.DNSName("evil.example")]))
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)
    spec = CertificateSpec(name="w", common_name="worker", dns_names=("worker.svc",))
    for request in (pem, der):
        leaf = leaf_of(ca.sign_csr(request, spec, now=NOW))
        assert leaf.subject.rfc4514_string() == "CN=worker"
        assert not extension(leaf, x509.BasicConstraints).value.ca
        assert extension(leaf, x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName) == ["worker.svc"]
        assert leaf.public_key() == key.public_key()


def test_sign_csr_refuses_a_forged_request(ca: CertificateAuthority) -> None:
    """A CSR whose signature does not verify (requester does not hold the key) is refused."""
    key = ec.generate_private_key(ec.SECP256R1())
    der = bytearray(x509.load_pem_x509_csr(csr_for(key)).public_bytes(
        serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature value
    with pytest.raises(CertificateAuthorityError, match="CSR signature does not verify"):
        ca.sign_csr(bytes(der), CertificateSpec(name="w", common_name="w"), now=NOW)


def test_sign_csr_refuses_a_key_of_another_type(ca: CertificateAuthority) -> None:
    """The spec's key_type is part of what the CA vouches for."""
    request = csr_for(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(CertificateAuthorityError, match="spec 'w' asks for ec-p256"):
        ca.sign_csr(request, CertificateSpec(name="w", common_name="w"), now=NOW)


def test_sign_csr_refuses_garbage(ca: CertificateAuthority) -> None:
    """Bytes that are no CSR give a clear error."""
    with pytest.raises(CertificateAuthorityError, match="not a readable PEM or DER"):
        ca.sign_csr(b"hello", CertificateSpec(name="w", common_name="w"), now=NOW)


def test_save_and_load_round_trip_with_private_key_mode(ca: CertificateAuthority,
                                                        tmp_path: Path) -> None:
    """save writes ca.key 0600 and ca.crt 0644 and leaves no scratch files; load reads
    back a CA that issues certificates the original CA's PEM validates."""
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "ca.crt").stat().st_mode) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key"]
    loaded = CertificateAuthority.load(tmp_path / "ca.crt", tmp_path / "ca.key")
    spec = CertificateSpec(name="c", common_name="c")
    issued = loaded.issue(spec, now=NOW)
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=ca.ca_pem, now=NOW,
                  spec=spec)


def test_from_pem_refuses_a_key_of_another_ca(ca: CertificateAuthority,
                                              other_ca: CertificateAuthority,
                                              tmp_path: Path) -> None:
    """A CA certificate with someone else's key is refused, not used to sign junk."""
    other_ca.save(tmp_path / "other.crt", tmp_path / "other.key")
    with pytest.raises(CertificateAuthorityError, match="does not belong"):
        CertificateAuthority.from_pem(ca.ca_pem, (tmp_path / "other.key").read_bytes())


def test_from_pem_refuses_a_leaf_as_ca(ca: CertificateAuthority) -> None:
    """A leaf certificate and its key do not make a CA."""
    issued = ca.issue(CertificateSpec(name="c", common_name="c"), now=NOW)
    with pytest.raises(CertificateAuthorityError, match="is not a CA certificate"):
        CertificateAuthority.from_pem(issued.certificate_pem, issued.private_key_pem)


def test_intermediate_ca_sends_its_chain_and_names_the_root_as_anchor() -> None:
    """An intermediate CA's leaves come with the intermediate; ca_pem is the root."""
    root, intermediate = make_two_level_ca()
    spec = CertificateSpec(name="c", common_name="c")
    issued = intermediate.issue(spec, now=NOW)
    chain = x509.load_pem_x509_certificates(issued.certificate_pem)
    assert [c.subject.rfc4514_string() for c in chain] == ["CN=c", "CN=keyward intermediate"]
    assert issued.ca_pem == root.ca_pem
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=root.ca_pem, now=NOW,
                  spec=spec)


def test_repr_never_shows_the_key(ca: CertificateAuthority, tmp_path: Path) -> None:
    """repr(ca) names the CA and not a single byte of its key."""
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    key_body = b"".join((tmp_path / "ca.key").read_bytes().splitlines()[1:-1]).decode()
    assert "keyward test CA" in repr(ca)
    assert key_body[:16] not in repr(ca)
    assert "PRIVATE" not in repr(ca)
    assert private_key_pem(generate_private_key()) != (tmp_path / "ca.key").read_bytes()
