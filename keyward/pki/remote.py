"""Certificates signed by a key keyward does not hold (a CA key kept in Azure Key Vault).

``cryptography`` signs a certificate only with a private key object it has. For a key
that never leaves a vault, :func:`sign_certificate` has the builder sign with a stand-in
key of the same kind, keeps the to-be-signed part (TBSCertificate), has the vault sign its
SHA-256 digest and puts the certificate together again (RFC 5280 4.1: TBSCertificate,
signatureAlgorithm, signatureValue). The stand-in decides only the AlgorithmIdentifier
written into the TBS, and that depends on the algorithm family alone
(``ecdsa-with-SHA256`` for any EC key, ``sha256WithRSAEncryption`` for any RSA key), so
the certificate is exactly the one the vault's key would have produced. The signature the
vault returns is checked against the CA's public key before the certificate is used.
"""

from __future__ import annotations

import functools
from typing import Protocol, TypeAlias, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from keyward.errors import KeywardError
from keyward.pki.keys import PrivateKey, PublicKey


@runtime_checkable
class RemoteSigningKey(Protocol):
    """A signing key held elsewhere: its public half here, the signing done there."""

    def public_key(self) -> PublicKey: ...

    def sign_sha256(self, digest: bytes) -> bytes:
        """The signature over a SHA-256 ``digest`` in the form X.509 carries it: a DER
        ECDSA-Sig-Value for an EC key, the PKCS#1 v1.5 signature for an RSA key."""
        ...


SigningKey: TypeAlias = PrivateKey | RemoteSigningKey


class RemoteSigningError(KeywardError):
    """The remote key did not produce a valid signature (the message says why)."""


def sign_certificate(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    """``builder``'s certificate signed with ``key`` (SHA-256), held here or remotely."""
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return builder.sign(key, hashes.SHA256())
    public = key.public_key()
    draft = builder.sign(_stand_in(isinstance(public, rsa.RSAPublicKey)), hashes.SHA256())
    tbs = draft.tbs_certificate_bytes
    digest = hashes.Hash(hashes.SHA256())
    digest.update(tbs)
    signature = key.sign_sha256(digest.finalize())
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, tbs, padding.PKCS1v15(), hashes.SHA256())
        else:
            public.verify(signature, tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise RemoteSigningError("the remote key's signature does not verify with its public "
                                 "key") from None
    algorithm = _signature_algorithm(draft.public_bytes(serialization.Encoding.DER), tbs)
    # BIT STRING: a leading 0 says no unused bits in the last byte.
    return x509.load_der_x509_certificate(
        _tlv(0x30, tbs + algorithm + _tlv(0x03, b"\x00" + signature)))


@functools.cache
def _stand_in(rsa_key: bool) -> PrivateKey:
    """A throwaway key whose signature is discarded (made once: RSA keys are slow to make)."""
    if rsa_key:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _tlv(tag: int, body: bytes) -> bytes:
    """One DER element (definite length)."""
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _element_end(der: bytes, offset: int, *, inner: bool = False) -> int:
    """Where the element at ``offset`` ends (or, with ``inner``, where its body begins)."""
    first = der[offset + 1]
    if first < 0x80:
        header, size = 2, first
    else:
        count = first & 0x7F
        header, size = 2 + count, int.from_bytes(der[offset + 2:offset + 2 + count], "big")
    return offset + header if inner else offset + header + size


def _signature_algorithm(certificate_der: bytes, tbs: bytes) -> bytes:
    """The signatureAlgorithm element of a certificate: the one after its TBSCertificate."""
    body = _element_end(certificate_der, 0, inner=True)
    start = body + len(tbs)
    if certificate_der[body:start] != tbs:
        raise RemoteSigningError("the draft certificate does not start with its TBS")
    return certificate_der[start:_element_end(certificate_der, start)]
