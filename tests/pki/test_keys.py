"""Private keys: the three kinds keyward makes, one encoding, and clear refusals."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from keyward.errors import KeywardError
from keyward.pki.keys import (
    PrivateKeyError,
    generate_private_key,
    key_type_of,
    load_private_key,
    private_key_pem,
)


def test_default_key_is_p256_and_round_trips_as_pkcs8() -> None:
    """The default key is EC P-256, encoded as unencrypted PKCS#8 and loaded back."""
    key = generate_private_key()
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    pem = private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert private_key_pem(load_private_key(pem)) == pem
    assert key_type_of(key) == "ec-p256"


def test_rsa_2048_is_generated() -> None:
    """rsa-2048 gives a 2048-bit RSA key (4096 is covered by the property tests)."""
    key = generate_private_key("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert key_type_of(key.public_key()) == "rsa-2048"


def test_legacy_sec1_pem_loads() -> None:
    """"BEGIN EC PRIVATE KEY" (openssl ecparam, some vaults) is accepted."""
    key = ec.generate_private_key(ec.SECP384R1())
    legacy = key.private_bytes(serialization.Encoding.PEM,
                               serialization.PrivateFormat.TraditionalOpenSSL,
                               serialization.NoEncryption())
    assert isinstance(load_private_key(legacy), ec.EllipticCurvePrivateKey)
    assert key_type_of(key) is None


def test_encrypted_key_is_refused_clearly() -> None:
    """An encrypted key is a KeywardError that says so."""
    pem = generate_private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"))
    with pytest.raises(PrivateKeyError, match="encrypted") as caught:
        load_private_key(pem)
    assert isinstance(caught.value, KeywardError)


def test_unsupported_key_type_is_refused() -> None:
    """Ed25519 is not a key type keyward issues or installs."""
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(PrivateKeyError, match="unsupported private key type"):
        load_private_key(pem)


def test_weak_rsa_key_is_refused() -> None:
    """RSA below 2048 bits is refused when loaded."""
    weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the key this test refuses
    pem = weak.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(PrivateKeyError, match="1024 bits is too weak"):
        load_private_key(pem)


def test_unreadable_key_error_does_not_echo_the_input() -> None:
    """A corrupt key's error message carries none of the (possibly secret) input."""
    body = private_key_pem(generate_private_key()).splitlines()
    corrupt = b"\n".join([body[0], body[1][:-4] + b"!!!!", *body[2:]])
    with pytest.raises(PrivateKeyError) as caught:
        load_private_key(corrupt)
    assert str(caught.value) == "private key is not a readable PEM key"
    assert caught.value.__cause__ is None


def test_unknown_key_type_string_is_refused() -> None:
    """A key type smuggled past the Literal (from raw settings) is refused."""
    with pytest.raises(PrivateKeyError, match="unsupported key type"):
        generate_private_key("ec-p521")  # type: ignore[arg-type]
