"""What counts as a CA bundle a process may start trusting its peers with."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from keyward.connect.ca_bundle import CaBundleError, check_ca_bundle
from tests.tls_material import CertificateAuthority


@pytest.fixture(scope="module")
def old() -> CertificateAuthority:
    return CertificateAuthority.create("old CA")


@pytest.fixture(scope="module")
def new() -> CertificateAuthority:
    return CertificateAuthority.create("new CA")


def now() -> dt.datetime:
    """Read at each use: the CAs above are made when their first test runs, which in a
    full run can be minutes after this module was imported."""
    return dt.datetime.now(dt.UTC)


def problems(pem: bytes) -> list[str]:
    with pytest.raises(CaBundleError) as caught:
        check_ca_bundle(pem, now=now())
    return caught.value.problems


def test_old_and_new_with_comments_between_them_is_a_bundle(old: CertificateAuthority,
                                                            new: CertificateAuthority) -> None:
    """Distribution bundles put text between blocks; the certificates are what counts."""
    pem = b"# old\n" + old.cert_pem() + b"\n# new\n" + new.cert_pem()
    bundle = check_ca_bundle(pem, now=now())
    assert bundle.subjects == ("CN=old CA", "CN=new CA")
    assert bundle.pem == pem


@pytest.mark.parametrize("cut", [40, 300])
def test_a_bundle_cut_short_is_refused_even_where_its_first_ca_is_whole(
        old: CertificateAuthority, new: CertificateAuthority, cut: int) -> None:
    """The PEM readers drop a last block without END: old + half of new would read as the
    old CA alone. A writer caught halfway must not be mistaken for that."""
    full = old.cert_pem() + new.cert_pem()
    assert any("has no END line" in p for p in problems(full[:len(old.cert_pem()) + cut]))


def test_a_block_that_is_not_a_certificate_is_refused(old: CertificateAuthority) -> None:
    leaf = old.issue_client()
    assert any("PRIVATE KEY block is not a certificate" in p
               for p in problems(old.cert_pem() + leaf.key_pem()))


def test_an_end_line_without_its_begin_is_refused(old: CertificateAuthority) -> None:
    pem = old.cert_pem()
    assert any("without its BEGIN" in p for p in problems(pem[pem.index(b"\n") + 1:]))


@pytest.mark.parametrize("content", [b"", b"\n", b"not a bundle\n"])
def test_nothing_in_the_file_is_refused(content: bytes) -> None:
    assert problems(content) == ["no PEM certificate in the file (empty, or still being "
                                 "written)"]


def test_a_leaf_issued_by_a_ca_is_refused(old: CertificateAuthority) -> None:
    """The wrong file copied into the bundle (a tls.crt) is not a trust anchor."""
    [problem] = problems(old.cert_pem() + old.issue_server().cert_pem())
    assert problem.startswith("CN=127.0.0.1 is not a CA certificate")


def self_signed(*, ca: bool, not_after: dt.datetime) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "pinned")])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_after - dt.timedelta(days=2)).not_valid_after(not_after))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(Encoding.PEM)


def test_a_pinned_self_signed_certificate_is_its_own_anchor() -> None:
    """OpenSSL, rustls and Go all trust a self-signed certificate listed as an anchor."""
    pem = self_signed(ca=False, not_after=now() + dt.timedelta(days=1))
    assert check_ca_bundle(pem, now=now()).subjects == ("CN=pinned",)


def test_a_bundle_with_nothing_valid_now_is_refused() -> None:
    expired = self_signed(ca=True, not_after=now() - dt.timedelta(days=1))
    [problem] = problems(expired)
    assert problem.startswith("no certificate in the bundle is valid at")


def test_an_expired_ca_beside_a_valid_one_is_kept(new: CertificateAuthority) -> None:
    """Removing an expired CA is the rotation's last step, not a precondition of reload."""
    expired = self_signed(ca=True, not_after=now() - dt.timedelta(days=1))
    bundle = check_ca_bundle(expired + new.cert_pem(), now=now())
    assert bundle.subjects == ("CN=pinned", "CN=new CA")
