"""validate_pair's rules at their edges: validity bounds, which certificate is the leaf,
CA key usage along the chain, and how SANs and wildcards are matched."""

from __future__ import annotations

import dataclasses
import ipaddress
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyward.pki.keys import PrivateKey, generate_private_key, private_key_pem
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import CertificateValidationError, summarize, validate_pair
from tests.pki.support import NOW

START, END = NOW - timedelta(days=1), NOW + timedelta(days=1)


def name(common_name: str | None) -> x509.Name:
    if common_name is None:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyward")])
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def certificate(subject: str | None, public_key: object, issuer: str | None,
                signing_key: PrivateKey, *, ca: bool = False,
                key_cert_sign: bool | None = None, eku: list[x509.ObjectIdentifier] | None = None,
                dns: tuple[str, ...] = (), ips: tuple[str, ...] = ()) -> x509.Certificate:
    builder = (x509.CertificateBuilder().subject_name(name(subject)).issuer_name(name(issuer))
               .public_key(public_key)  # type: ignore[arg-type]
               .serial_number(x509.random_serial_number())
               .not_valid_before(START).not_valid_after(END))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    if key_cert_sign is not None:
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=True, content_commitment=False,
                          key_encipherment=False, data_encipherment=False, key_agreement=False,
                          key_cert_sign=key_cert_sign, crl_sign=key_cert_sign,
                          encipher_only=False, decipher_only=False), critical=True)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(eku), critical=False)
    if dns or ips:
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def pem(*certificates: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


@dataclasses.dataclass
class Pki:
    root_key: PrivateKey
    root: x509.Certificate

    @classmethod
    def new(cls, subject: str = "root") -> Pki:
        key = generate_private_key()
        return cls(key, certificate(subject, key.public_key(), subject, key, ca=True,
                                    key_cert_sign=True))

    def leaf(self, **kwargs: object) -> tuple[x509.Certificate, PrivateKey]:
        key = generate_private_key()
        subject = kwargs.pop("subject", "leaf")
        return certificate(subject, key.public_key(), "root",  # type: ignore[arg-type]
                           self.root_key, **kwargs), key  # type: ignore[arg-type]


def problems(leaf_pem: bytes, key: PrivateKey, **kwargs: object) -> list[str]:
    try:
        validate_pair(leaf_pem, private_key_pem(key), **kwargs)  # type: ignore[arg-type]
    except CertificateValidationError as error:
        return error.problems
    return []


@pytest.mark.parametrize(("now", "expected"), [
    (START - timedelta(seconds=1), "certificate is not valid yet"),
    (START, None),
    (END, None),
    (END + timedelta(seconds=1), "certificate expired at"),
])
def test_validity_bounds_are_inclusive(now: datetime, expected: str | None) -> None:
    """A certificate is valid from not_before to not_after, both instants included."""
    leaf, key = Pki.new().leaf()
    found = problems(pem(leaf), key, ca_pem=None, now=now)
    if expected is None:
        assert found == []
    else:
        assert found[0].startswith(expected)


def test_remaining_lifetime_equal_to_the_minimum_is_enough() -> None:
    """``min_remaining`` is a floor that may be met exactly; by default any lifetime left
    (even one hour) is enough."""
    leaf, key = Pki.new().leaf()
    assert problems(pem(leaf), key, ca_pem=None, now=NOW, min_remaining=END - NOW) == []
    assert problems(pem(leaf), key, ca_pem=None, now=END - timedelta(hours=1)) == []
    assert len(problems(pem(leaf), key, ca_pem=None, now=NOW,
                        min_remaining=END - NOW + timedelta(seconds=1))) == 1


def test_any_extended_key_usage_permits_both_roles() -> None:
    """``anyExtendedKeyUsage`` permits client and server use, as Go's TLS has it."""
    leaf, key = Pki.new().leaf(eku=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE],
                               dns=("a.test",))
    spec = CertificateSpec(name="s", common_name="leaf", usage="both", dns_names=("a.test",))
    summary = validate_pair(pem(leaf), private_key_pem(key), ca_pem=None, now=NOW, spec=spec)
    assert summary.usages == ("client", "server")
    only_client, _ = Pki.new().leaf(eku=[ExtendedKeyUsageOID.CLIENT_AUTH])
    assert summarize(pem(only_client)).usages == ("client",)


def test_a_certificate_key_of_an_unsupported_type_is_a_problem() -> None:
    """A leaf whose public key keyward cannot compare (Ed25519) is reported, not raised."""
    pki = Pki.new()
    odd = certificate("leaf", ed25519.Ed25519PrivateKey.generate().public_key(), "root",
                      pki.root_key)
    found = problems(pem(odd), generate_private_key(), ca_pem=None, now=NOW)
    assert found == ["certificate key: unsupported public key type Ed25519PublicKey"]


def test_the_first_certificate_is_the_one_checked() -> None:
    """The leaf is the first certificate: a foreign leaf followed by a genuine intermediate
    of the trusted root does not chain, and the summary describes the first certificate."""
    pki, foreign = Pki.new(), Pki.new("root")
    intermediate_key = generate_private_key()
    intermediate = certificate("intermediate", intermediate_key.public_key(), "root",
                               pki.root_key, ca=True, key_cert_sign=True)
    leaf, key = foreign.leaf()
    found = problems(pem(leaf, intermediate), key, ca_pem=pem(pki.root), now=NOW)
    assert len(found) == 1
    assert "does not chain to the given CA" in found[0]
    assert summarize(pem(leaf, intermediate)).subject == "CN=leaf"


@pytest.mark.parametrize(("key_cert_sign", "chains"), [(True, True), (None, True),
                                                       (False, False)])
def test_an_intermediate_needs_key_cert_sign_only_if_it_has_key_usage(
        key_cert_sign: bool | None, chains: bool) -> None:
    """An intermediate CA without a KeyUsage extension may sign (RFC 5280, Go); one whose
    KeyUsage lacks keyCertSign may not."""
    pki = Pki.new()
    intermediate_key = generate_private_key()
    intermediate = certificate("intermediate", intermediate_key.public_key(), "root",
                               pki.root_key, ca=True, key_cert_sign=key_cert_sign)
    leaf_key = generate_private_key()
    leaf = certificate("leaf", leaf_key.public_key(), "intermediate", intermediate_key)
    found = problems(pem(leaf, intermediate), leaf_key, ca_pem=pem(pki.root), now=NOW)
    assert (found == []) is chains
    if not chains:
        assert "keyCertSign" in found[0]


def test_spec_problems_name_every_missing_piece() -> None:
    """A missing common name reads 'missing'; an invalid IP in the spec is reported and the
    IPs after it still checked; an exact DNS name must be equal to a SAN."""
    leaf, key = Pki.new().leaf(subject=None, dns=("a.test",), ips=("10.0.0.1",))
    spec = CertificateSpec(name="s", common_name="svc", usage="client",
                           dns_names=("b.test",), ip_addresses=("not-an-ip", "10.0.0.2"))
    assert problems(pem(leaf), key, ca_pem=None, now=NOW, spec=spec) == [
        "subject common name is missing, spec 's' wants 'svc'",
        "SAN lacks DNS name 'b.test'",
        "spec 's' lists an invalid IP address 'not-an-ip'",
        "SAN lacks IP address 10.0.0.2",
    ]


def test_a_server_certificate_with_only_an_ip_san_has_sans() -> None:
    """An IP address SAN is enough for a server certificate: no 'no SANs' problem."""
    leaf, key = Pki.new().leaf(ips=("10.0.0.7",))
    spec = CertificateSpec(name="s", common_name="leaf", usage="server",
                           ip_addresses=("10.0.0.7",))
    assert problems(pem(leaf), key, ca_pem=None, now=NOW, spec=spec) == []


@pytest.mark.parametrize("wanted", [".example.com", "*x.example.com", "example.com"])
def test_a_wildcard_covers_only_one_whole_non_empty_label(wanted: str) -> None:
    """``*.example.com`` covers neither an empty first label, nor a label that itself starts
    with ``*``, nor the bare domain."""
    leaf, key = Pki.new().leaf(dns=("*.example.com",))
    spec = CertificateSpec(name="s", common_name="leaf", usage="client", dns_names=(wanted,))
    assert problems(pem(leaf), key, ca_pem=None, now=NOW, spec=spec) == [
        f"SAN lacks DNS name {wanted!r}"]


def test_a_summary_is_immutable() -> None:
    """The summary that goes into logs and results is a frozen value."""
    leaf, _ = Pki.new().leaf()
    summary = summarize(pem(leaf))
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.subject = "CN=other"  # type: ignore[misc]


@pytest.mark.parametrize(("san", "wanted"), [
    ("Temporal.Internal", "temporal.internal"), ("temporal.internal", "TEMPORAL.internal"),
    ("temporal.internal.", "temporal.internal"), ("temporal.internal", "temporal.internal."),
])
def test_dns_names_match_ignoring_case_and_a_trailing_dot(san: str, wanted: str) -> None:
    """DNS names compare case-insensitively, and a trailing dot (the root) changes nothing —
    on either side."""
    leaf, key = Pki.new().leaf(dns=(san,))
    spec = CertificateSpec(name="s", common_name="leaf", usage="client", dns_names=(wanted,))
    assert problems(pem(leaf), key, ca_pem=None, now=NOW, spec=spec) == []


def intermediate_of(issuer: str, issuer_key: PrivateKey,
                    subject: str) -> tuple[x509.Certificate, PrivateKey]:
    key = generate_private_key()
    return certificate(subject, key.public_key(), issuer, issuer_key, ca=True,
                       key_cert_sign=True), key


def test_with_a_pin_the_first_certificate_must_reach_it() -> None:
    """Under a pin too, the leaf is the first certificate: a foreign leaf ahead of a genuine
    intermediate of the pinned root is refused."""
    pki, foreign = Pki.new(), Pki.new("root")
    intermediate, _ = intermediate_of("root", pki.root_key, "intermediate")
    leaf, key = foreign.leaf()
    found = problems(pem(leaf, intermediate), key, ca_pem=None, now=NOW,
                     trust_anchor=pem(pki.root))
    assert len(found) == 1
    assert "does not chain to the pinned trust anchor" in found[0]


def test_supplied_cas_may_chain_to_the_pin_through_each_other() -> None:
    """A supplied bundle of two intermediates (root → int1 → int2 → leaf, pin: root) is
    accepted: each supplied CA may use the others to reach the pin."""
    pki = Pki.new()
    int1, int1_key = intermediate_of("root", pki.root_key, "int1")
    int2, int2_key = intermediate_of("int1", int1_key, "int2")
    leaf_key = generate_private_key()
    leaf = certificate("leaf", leaf_key.public_key(), "int2", int2_key)
    assert problems(pem(leaf, int2), leaf_key, ca_pem=pem(int2, int1, pki.root), now=NOW,
                    trust_anchor=pem(pki.root)) == []


def test_each_foreign_problem_is_reported_once() -> None:
    """A self-signed leaf given as its own CA, under a pin it does not reach, is one problem
    (the leaf), not two; a foreign intermediate supplied as the CA is a second one."""
    pki = Pki.new()
    own_key = generate_private_key()
    own = certificate("own", own_key.public_key(), "own", own_key)
    assert len(problems(pem(own), own_key, ca_pem=pem(own), now=NOW,
                        trust_anchor=pem(pki.root))) == 1

    foreign = Pki.new("root")
    foreign_int, foreign_int_key = intermediate_of("root", foreign.root_key, "intermediate")
    leaf_key = generate_private_key()
    leaf = certificate("leaf", leaf_key.public_key(), "intermediate", foreign_int_key)
    found = problems(pem(leaf, foreign_int), leaf_key, ca_pem=pem(foreign_int), now=NOW,
                     trust_anchor=pem(pki.root))
    assert len(found) == 2
    assert "CN=intermediate supplied by the issuer does not chain" in found[1]
