"""Private keys: the few kinds keyward issues, and one way to encode and load them.

Every issuer and installer handles keys as unencrypted PKCS#8 PEM: it is what
``tls.key`` holds for Temporal, Go's ``crypto/tls``, Python's ``ssl`` and
cert-manager alike. Protection comes from file mode 0600 and never logging the
bytes, not from a passphrase nobody could type at reload time.
"""

from __future__ import annotations

from typing import TypeAlias

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keyward.errors import KeywardError
from keyward.pki.types import KeyType

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

#: Below this an RSA key is refused anywhere keyward meets one (NIST SP 800-57).
MIN_RSA_BITS = 2048

_RSA_BITS: dict[KeyType, int] = {"rsa-2048": 2048, "rsa-4096": 4096}


class PrivateKeyError(KeywardError):
    """A private key is unreadable, encrypted or of a kind keyward does not use.

    The message never contains key material: it ends up in logs and workflow
    failures.
    """


def generate_private_key(key_type: KeyType = "ec-p256") -> PrivateKey:
    """A fresh key of ``key_type``; P-256 by default, as it is fast and every TLS stack has it."""
    if key_type == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    bits = _RSA_BITS.get(key_type)
    if bits is None:
        # KeyType is a Literal, but settings can still smuggle another string in at runtime.
        raise PrivateKeyError(f"unsupported key type {key_type!r}")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def private_key_pem(key: PrivateKey) -> bytes:
    """``key`` as unencrypted PKCS#8 PEM (the "PRIVATE KEY" block type, no passphrase)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> PrivateKey:
    """Parse a PEM private key (PKCS#8, or the legacy PKCS#1 / SEC1 forms Azure and
    openssl still write), refusing encrypted keys and anything but EC and RSA."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except TypeError:
        # cryptography signals "encrypted, and no password given" with TypeError.
        raise PrivateKeyError("private key is encrypted; keyward needs an unencrypted "
                              "PKCS#8 key") from None
    except (ValueError, UnsupportedAlgorithm):
        # The original message can quote the input; the key must not reach a log.
        raise PrivateKeyError("private key is not a readable PEM key") from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise PrivateKeyError(f"RSA key of {key.key_size} bits is too weak "
                              f"(minimum {MIN_RSA_BITS})")
    if isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        return key
    raise PrivateKeyError(f"unsupported private key type {type(key).__name__}; "
                          "keyward uses EC and RSA keys")


def public_key_der(key: object) -> bytes:
    """The SubjectPublicKeyInfo DER of a key, to compare keys across types."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey |
                                            rsa.RSAPrivateKey) else key
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise PrivateKeyError(f"unsupported public key type {type(public).__name__}")
    return public.public_bytes(serialization.Encoding.DER,
                               serialization.PublicFormat.SubjectPublicKeyInfo)


def key_type_of(key: object) -> KeyType | None:
    """The :data:`KeyType` a key is, or None if it is none of them (say, EC P-384)."""
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec-p256" if isinstance(key.curve, ec.SECP256R1) else None
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        for key_type, bits in _RSA_BITS.items():
            if key.key_size == bits:
                return key_type
    return None
