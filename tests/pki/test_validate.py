"""validate_pair: each problem it must catch, all of them at once, and Go's leniencies."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from keyward.errors import KeywardError
from keyward.pki.ca import CertificateAuthority
from keyward.pki.keys import generate_private_key, private_key_pem
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import CertificateValidationError, summarize, validate_pair
from tests.pki.support import (
    NOW,
    make_two_level_ca,
    problems,
    third_party_ca,
    third_party_leaf,
)

CLIENT = CertificateSpec(name="worker", common_name="keyward-worker")
SERVER = CertificateSpec(name="frontend", common_name="temporal", usage="server",
                         dns_names=("temporal.internal",), ip_addresses=("10.0.0.7",))


@pytest.fixture(scope="module")
def client(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue(CLIENT, now=NOW)


@pytest.fixture(scope="module")
def server(ca: CertificateAuthority) -> IssuedCertificate:
    return ca.issue(SERVER, now=NOW)


def self_signed(key: ec.EllipticCurvePrivateKey, *, ca: bool | None,
                key_cert_sign: bool = True) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "hand-made")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(NOW - timedelta(days=1))
               .not_valid_after(NOW + timedelta(days=1)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                                        critical=True)
    if not key_cert_sign:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False,
                          key_agreement=False, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False), critical=True)
    return builder.sign(key, hashes.SHA256())


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_a_good_pair_returns_its_summary(ca: CertificateAuthority,
                                         server: IssuedCertificate) -> None:
    """The summary holds serial, names, validity (aware UTC), usages, issuer, fingerprint."""
    summary = validate_pair(server.certificate_pem, server.private_key_pem,
                            ca_pem=server.ca_pem, now=NOW, spec=SERVER)
    leaf = x509.load_pem_x509_certificate(server.certificate_pem)
    assert summary.serial == format(leaf.serial_number, "x")
    assert summary.subject == "CN=temporal"
    assert summary.issuer == "CN=keyward test CA"
    assert summary.dns_names == ("temporal.internal", "temporal")
    assert summary.ip_addresses == ("10.0.0.7",)
    assert summary.usages == ("server",)
    assert summary.not_before.tzinfo is not None
    assert summary.not_after.utcoffset() == \
        timedelta(0)
    assert summary.fingerprint_sha256 == leaf.fingerprint(hashes.SHA256()).hex()
    assert summarize(server.certificate_pem) == summary


def test_the_error_is_a_keyward_error_listing_every_problem(
        client: IssuedCertificate, other_ca: CertificateAuthority) -> None:
    """Several faults at once are all listed, in one KeywardError."""
    wrong_spec = CertificateSpec(name="frontend", common_name="temporal", usage="server",
                                 dns_names=("temporal.internal",), ip_addresses=("10.0.0.7",))
    with pytest.raises(CertificateValidationError) as caught:
        validate_pair(client.certificate_pem, private_key_pem(generate_private_key()),
                      ca_pem=other_ca.ca_pem, now=NOW + timedelta(days=365), spec=wrong_spec)
    assert isinstance(caught.value, KeywardError)
    found = caught.value.problems
    assert found[0] == "private key does not match the certificate"
    assert found[1].startswith("certificate expired at")
    assert "does not chain to the given CA" in found[2]
    assert found[3:] == [
        "subject common name is ['keyward-worker'], spec 'frontend' wants 'temporal'",
        "extended key usage lacks serverAuth (spec 'frontend' is a server certificate)",
        "SAN lacks DNS name 'temporal.internal'",
        "SAN lacks IP address 10.0.0.7",
        "server certificate has no SANs; TLS clients ignore the common name",
    ]
    assert caught.value.summary is not None
    assert caught.value.summary.subject == "CN=keyward-worker"
    assert "; ".join(found) in str(caught.value)


def test_not_yet_valid_is_reported(client: IssuedCertificate) -> None:
    """Before not_before (beyond the minute of backdating) the pair is not valid yet."""
    assert problems(client, now=NOW - timedelta(minutes=2))[0].startswith(
        "certificate is not valid yet")


def test_too_little_remaining_lifetime_is_reported(client: IssuedCertificate) -> None:
    """min_remaining refuses a pair that would be due for renewal right away."""
    found = problems(client, now=NOW, min_remaining=timedelta(days=91))
    assert len(found) == 1
    assert "less than the required 91 days" in found[0]
    assert problems(client, now=NOW, min_remaining=timedelta(days=89)) == []


def test_a_ca_that_is_not_a_ca_is_reported(client: IssuedCertificate,
                                           server: IssuedCertificate) -> None:
    """Passing a leaf as ca.crt is refused even though it is a certificate."""
    found = problems(client, ca_pem=server.certificate_pem)
    assert found == ["CA certificate CN=temporal is not a CA (needs BasicConstraints CA:true, "
                     "and keyCertSign if KeyUsage is present)"]


def test_a_ca_without_key_cert_sign_is_reported(client: IssuedCertificate) -> None:
    """A CA:true certificate whose KeyUsage lacks keyCertSign cannot be a trust anchor."""
    anchor = self_signed(ec.generate_private_key(ec.SECP256R1()), ca=True, key_cert_sign=False)
    assert "is not a CA" in problems(client, ca_pem=pem(anchor))[0]


def test_unreadable_inputs_are_reported_not_raised_raw(client: IssuedCertificate) -> None:
    """Garbage certificate, key or CA give problems, never a traceback or key bytes."""
    with pytest.raises(CertificateValidationError, match="not readable PEM"):
        validate_pair(b"junk", client.private_key_pem, ca_pem=None, now=NOW)
    assert problems(client, private_key_pem=b"junk") == [
        "private key is not a readable PEM key"]
    assert problems(client, ca_pem=b"junk") == ["CA certificate is not readable PEM"]


def test_intermediates_in_the_chain_are_followed() -> None:
    """leaf + intermediate verifies to the root; the leaf alone does not."""
    root, intermediate = make_two_level_ca()
    issued = intermediate.issue(CLIENT, now=NOW)
    assert problems(issued, ca_pem=root.ca_pem, spec=CLIENT) == []
    leaf_only = x509.load_pem_x509_certificates(issued.certificate_pem)[0]
    found = problems(issued, certificate_pem=pem(leaf_only), ca_pem=root.ca_pem)
    assert len(found) == 1
    assert "does not chain" in found[0]


def test_an_expired_ca_is_reported() -> None:
    """A leaf still in its own validity whose CA has expired does not verify."""
    ca, ca_key = third_party_ca(lifetime=timedelta(days=2))
    leaf = third_party_leaf(ca, ca_key, common_name="keyward-worker",
                            not_after=NOW + timedelta(days=30))
    assert problems(leaf, now=NOW + timedelta(days=1)) == []
    found = problems(leaf, now=NOW + timedelta(days=3))
    assert len(found) == 1
    assert "does not chain to the given CA" in found[0]
    assert "not valid at validation time" in found[0]


def test_a_certificate_without_eku_permits_both_roles_as_in_go() -> None:
    """No EKU extension means any usage to Go's TLS, so no usage problem is reported."""
    ca, ca_key = third_party_ca()
    leaf = third_party_leaf(ca, ca_key, common_name="temporal",
                            dns_names=("temporal.internal",), not_after=NOW + timedelta(days=1))
    both = CertificateSpec(name="b", common_name="temporal", usage="both",
                           dns_names=("temporal.internal",))
    summary = validate_pair(leaf.certificate_pem, leaf.private_key_pem, ca_pem=leaf.ca_pem,
                            now=NOW, spec=both)
    assert summary.usages == ("client", "server")


def test_a_pinned_self_signed_leaf_validates() -> None:
    """A self-signed leaf given as its own CA (Azure "Self" certificates) verifies."""
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pem(self_signed(key, ca=None))
    validate_pair(leaf, private_key_pem(key), ca_pem=leaf, now=NOW)


def test_wildcard_sans_cover_one_label_only(ca: CertificateAuthority) -> None:
    """*.svc covers a.svc (any case) but neither svc nor a.b.svc."""
    issued = ca.issue(CertificateSpec(name="w", common_name="w", dns_names=("*.svc",)),
                      now=NOW)
    ok = CertificateSpec(name="w", common_name="w", dns_names=("A.svc",))
    assert problems(issued, spec=ok) == []
    bad = CertificateSpec(name="w", common_name="w", dns_names=("svc", "a.b.svc"))
    assert problems(issued, spec=bad) == ["SAN lacks DNS name 'svc'",
                                          "SAN lacks DNS name 'a.b.svc'"]


def test_without_a_ca_the_chain_is_not_checked(client: IssuedCertificate) -> None:
    """ca_pem=None checks key, time and spec only."""
    assert problems(client, ca_pem=None, spec=CLIENT) == []


def test_naive_now_is_refused(client: IssuedCertificate) -> None:
    """A naive datetime is an error of the caller, not a guess."""
    with pytest.raises(ValueError, match="timezone-aware"):
        validate_pair(client.certificate_pem, client.private_key_pem, ca_pem=client.ca_pem,
                      now=NOW.replace(tzinfo=None))


NAMED = CertificateSpec(name="worker", common_name="keyward-worker",
                        organization=("Acme, Inc.", "Acme Labs"), organizational_unit=("Ops",),
                        country="DE", state="Berlin", locality="Berlin-Mitte")


def test_the_subject_carries_every_attribute_the_spec_asks_for(
        ca: CertificateAuthority) -> None:
    """A leaf with the spec's C, ST, L, both O and OU passes, whatever the order of the Os."""
    issued = ca.issue(NAMED, now=NOW)
    reordered = dataclasses.replace(NAMED, organization=("Acme Labs", "Acme, Inc."))

    assert problems(issued, spec=NAMED) == []
    assert problems(issued, spec=reordered) == []
    assert summarize(issued.certificate_pem).subject == (
        "CN=keyward-worker,OU=Ops,O=Acme Labs,O=Acme\\, Inc.,L=Berlin-Mitte,ST=Berlin,C=DE")


@pytest.mark.parametrize(("changes", "problem"), [
    ({"organization": ("Acme, Inc.", "Acme Labs", "Acme Research")},
     "subject O is ['Acme, Inc.', 'Acme Labs'], spec 'worker' wants "
     "['Acme, Inc.', 'Acme Labs', 'Acme Research']"),
    ({"organizational_unit": ("Security",)},
     "subject OU is ['Ops'], spec 'worker' wants ['Security']"),
    ({"country": "FR"}, "subject C is ['DE'], spec 'worker' wants ['FR']"),
    ({"state": "Bayern"}, "subject ST is ['Berlin'], spec 'worker' wants ['Bayern']"),
    ({"locality": "Berlin"}, "subject L is ['Berlin-Mitte'], spec 'worker' wants ['Berlin']"),
])
def test_a_subject_attribute_that_differs_is_refused(ca: CertificateAuthority,
                                                     changes: dict[str, object],
                                                     problem: str) -> None:
    """Each attribute is compared with what the spec asks for, values and count."""
    issued = ca.issue(NAMED, now=NOW)
    assert problems(issued, spec=dataclasses.replace(NAMED, **changes)) == [problem]


def test_a_subject_that_lacks_an_asked_for_attribute_is_refused(
        client: IssuedCertificate) -> None:
    """A CN-only certificate does not satisfy a spec asking for O, OU, C, ST and L: each
    missing one is its own problem."""
    assert problems(client, spec=NAMED) == [
        "subject C is missing, spec 'worker' wants ['DE']",
        "subject ST is missing, spec 'worker' wants ['Berlin']",
        "subject L is missing, spec 'worker' wants ['Berlin-Mitte']",
        "subject O is missing, spec 'worker' wants ['Acme, Inc.', 'Acme Labs']",
        "subject OU is missing, spec 'worker' wants ['Ops']",
    ]


def test_attributes_the_spec_does_not_ask_for_are_not_checked(
        ca: CertificateAuthority) -> None:
    """An issuer may add O, OU and the rest (a Vault role does): a spec without them passes."""
    issued = ca.issue(NAMED, now=NOW)
    assert problems(issued, spec=CLIENT) == []
