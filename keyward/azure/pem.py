"""Keys and certificate chains in the shapes Key Vault stores them.

A certificate's backing secret holds the key and the chain as PEM or as base64 PKCS#12,
in upload order (root first is common); TLS wants the leaf first and the root apart as
the CA. Pure functions on bytes: no Azure SDK call, so each rule can be tested alone.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

#: The content type Key Vault gives a PKCS#12 secret (``CertificateContentType.pkcs12``).
PKCS12_CONTENT_TYPE = "application/x-pkcs12"

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SecretFormatError(ValueError):
    """The exported secret cannot be read as a key and certificates (the message says why)."""


def parse_secret(value: str, content_type: str | None,
                 ) -> tuple[PrivateKey, list[x509.Certificate]]:
    """Key and certificates from a certificate's backing secret (PEM, or base64 PKCS#12).

    A non-exportable key is simply absent from the value (Key Vault returns the
    certificates only), which is the one failure here that the caller can fix.
    """
    key: PrivateKey | None
    if content_type == PKCS12_CONTENT_TYPE:
        try:
            loaded_key, leaf, extra = pkcs12.load_key_and_certificates(
                base64.b64decode(value, validate=True), None)
        except (ValueError, binascii.Error) as exc:
            raise SecretFormatError(
                "the exported secret is not a readable PKCS#12 bundle") from exc
        key = loaded_key if isinstance(loaded_key, PrivateKey) else None
        certificates = ([leaf] if leaf is not None else []) + list(extra)
    else:
        try:
            certificates = x509.load_pem_x509_certificates(value.encode())
        except ValueError as exc:
            raise SecretFormatError("the exported secret holds no PEM certificate") from exc
        key = load_private_key(value.encode())
    if key is None:
        raise SecretFormatError(
            "the exported secret has no private key: the certificate's policy does not "
            "allow exporting it (key_props.exportable=false)")
    return key, certificates


def load_private_key(data: bytes) -> PrivateKey | None:
    """The first PEM private-key block in ``data`` (PKCS#8, SEC1 or PKCS#1), if any."""
    match = re.search(rb"-----BEGIN ((?:RSA |EC )?PRIVATE KEY)-----.+?-----END \1-----",
                      data, re.DOTALL)
    if match is None:
        return None
    try:
        key = serialization.load_pem_private_key(match.group(0), password=None)
    except (ValueError, TypeError):
        return None
    return key if isinstance(key, PrivateKey) else None


def load_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle; ``what`` names it in the error."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise ValueError(f"{what} is not PEM with at least one certificate") from exc


def order_chain(leaf: x509.Certificate, bundled: Sequence[x509.Certificate],
                ) -> tuple[list[x509.Certificate], x509.Certificate | None]:
    """Leaf first, then each issuer in turn; a self-signed root is split off as the CA.

    Key Vault keeps imported and merged chains in upload order (root first is common),
    while TLS wants leaf first.
    """
    others = [cert for cert in bundled if cert != leaf]
    chain = [leaf]
    while others:
        issuer = next((cert for cert in others if cert.subject == chain[-1].issuer), None)
        if issuer is None or is_self_signed(chain[-1]):
            break
        chain.append(issuer)
        others.remove(issuer)
    root = chain.pop() if len(chain) > 1 and is_self_signed(chain[-1]) else None
    return chain, root


def is_self_signed(certificate: x509.Certificate) -> bool:
    return certificate.issuer == certificate.subject


def unique_der(certificates: Sequence[x509.Certificate]) -> list[bytes]:
    """DER of each certificate once, in order (a chain and a CA bundle may overlap)."""
    seen: list[bytes] = []
    for certificate in certificates:
        der = certificate.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.append(der)
    return seen


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def private_key_pem(key: PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: what ``tls.key`` holds."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
