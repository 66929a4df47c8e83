"""Certificates signed by a key keyward does not hold (keyward.pki.remote)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from keyward.pki.ca import CertificateAuthority, CertificateAuthorityError
from keyward.pki.keys import PrivateKey, PublicKey
from keyward.pki.remote import RemoteSigningError, RemoteSigningKey, sign_certificate
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from tests.pki.support import NOW


class ElsewhereKey:
    """A RemoteSigningKey whose "vault" is a private key in this object (and may lie)."""

    def __init__(self, key: PrivateKey, *, lie: bool = False) -> None:
        self._key = key
        self._lie = lie
        self.digests: list[bytes] = []

    def public_key(self) -> PublicKey:
        return self._key.public_key()

    def sign_sha256(self, digest: bytes) -> bytes:
        self.digests.append(digest)
        prehashed = Prehashed(hashes.SHA256())
        if isinstance(self._key, rsa.RSAPrivateKey):
            signature = self._key.sign(digest, padding.PKCS1v15(), prehashed)
        else:
            signature = self._key.sign(digest, ec.ECDSA(prehashed))
        return ec.generate_private_key(ec.SECP256R1()).sign(
            digest, ec.ECDSA(prehashed)) if self._lie else signature


def builder(public: PublicKey) -> x509.CertificateBuilder:
    # A TBS is always longer than 127 bytes, an RSA-4096 signature too: long DER lengths.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(public)
            .serial_number(12345).not_valid_before(NOW).not_valid_after(NOW + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True))


@pytest.mark.parametrize("key", [ec.generate_private_key(ec.SECP256R1()),
                                 rsa.generate_private_key(public_exponent=65537, key_size=4096)],
                         ids=["ec-p256", "rsa-4096"])
def test_a_remote_signature_makes_the_same_certificate_as_a_local_one(key: PrivateKey) -> None:
    """The TBS (and so every field) is what the key itself would sign; the signature verifies."""
    remote = ElsewhereKey(key)
    assert isinstance(remote, RemoteSigningKey)

    made = sign_certificate(builder(key.public_key()), remote)

    local = builder(key.public_key()).sign(key, hashes.SHA256())
    assert made.tbs_certificate_bytes == local.tbs_certificate_bytes
    assert made.signature_algorithm_oid == local.signature_algorithm_oid
    made.verify_directly_issued_by(made)
    assert len(remote.digests) == 1


def test_a_signature_by_another_key_is_refused() -> None:
    """What the remote side returns is verified with the public key before it is used."""
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(RemoteSigningError, match="does not verify"):
        sign_certificate(builder(key.public_key()), ElsewhereKey(key, lie=True))


def test_a_ca_with_a_remote_key_issues_leaves_and_has_no_key_file(tmp_path: Path) -> None:
    """CertificateAuthority takes the remote key in place of a private key."""
    local = CertificateAuthority.bootstrap("remote CA", now=NOW - timedelta(days=1))
    key = local._key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ca = CertificateAuthority(local.certificate, ElsewhereKey(key))
    spec = CertificateSpec(name="w", common_name="w", organization=("Acme",))

    issued = ca.issue(spec, now=NOW)

    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=ca.ca_pem, now=NOW,
                  spec=spec)
    with pytest.raises(CertificateAuthorityError, match="held remotely"):
        ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    assert not (tmp_path / "ca.key").exists()


def test_a_remote_key_that_lies_fails_the_ca_not_the_caller() -> None:
    """A bad remote signature is a CertificateAuthorityError (the issuer's non-retryable)."""
    local = CertificateAuthority.bootstrap("remote CA", now=NOW - timedelta(days=1))
    key = local._key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    ca = CertificateAuthority(local.certificate, ElsewhereKey(key, lie=True))
    with pytest.raises(CertificateAuthorityError, match="does not verify"):
        ca.issue(CertificateSpec(name="w", common_name="w"), now=NOW)
