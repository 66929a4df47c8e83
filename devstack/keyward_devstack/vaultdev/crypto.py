"""Transit's cryptography: key material, derivation, AEAD and the ciphertext format.

A transit ciphertext is ``vault:v<N>:`` followed by base64 of
``nonce (12 bytes) ‖ ciphertext ‖ tag (16 bytes)``, where ``N`` is the key
version that sealed it. That layout, the AEAD choices (AES-GCM with a random
96-bit nonce, ChaCha20-Poly1305) and HKDF-SHA256 derivation for derived keys
follow Vault's ``keysutil`` so ciphertexts look exactly like Vault's. Error
texts are Go's, because clients and people match on them.
"""

from __future__ import annotations

import base64
import binascii
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyward_devstack.vaultdev.errors import UserError

#: Key types this server implements, with their key length in bytes.
KEY_SIZES: dict[str, int] = {
    "aes128-gcm96": 16,
    "aes256-gcm96": 32,
    "chacha20-poly1305": 32,
}
NONCE_SIZE = 12

#: The text Go's AEAD implementations return when a tag does not verify.
_AUTH_FAILED = {
    "aes128-gcm96": "cipher: message authentication failed",
    "aes256-gcm96": "cipher: message authentication failed",
    "chacha20-poly1305": "chacha20poly1305: message authentication failed",
}
_PREFIX = "vault:v"
_GO_INTEGER = re.compile(r"[+-]?\d+")
_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def generate_key(key_type: str) -> bytes:
    """Fresh random key material for one key version."""
    return os.urandom(KEY_SIZES[key_type])


def derive_key(key: bytes, context: bytes, length: int) -> bytes:
    """The per-context key of a derived transit key (HKDF-SHA256, no salt)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=context).derive(key)


def _aead(key_type: str, key: bytes) -> AESGCM | ChaCha20Poly1305:
    if key_type == "chacha20-poly1305":
        return ChaCha20Poly1305(key)
    return AESGCM(key)


def seal(key_type: str, key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    """``nonce ‖ ciphertext ‖ tag`` for ``plaintext`` under a fresh random nonce."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + _aead(key_type, key).encrypt(nonce, plaintext, associated_data or None)


def unseal(key_type: str, key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """The plaintext inside ``sealed``; raises UserError if it does not verify."""
    if len(sealed) < NONCE_SIZE:
        raise UserError("invalid ciphertext length")
    nonce, body = sealed[:NONCE_SIZE], sealed[NONCE_SIZE:]
    try:
        return _aead(key_type, key).decrypt(nonce, body, associated_data or None)
    except InvalidTag:
        raise UserError(_AUTH_FAILED[key_type]) from None


def format_ciphertext(version: int, sealed: bytes) -> str:
    """The ``vault:v<N>:<base64>`` string clients store."""
    return f"{_PREFIX}{version}:{base64.b64encode(sealed).decode('ascii')}"


def split_ciphertext(value: str) -> tuple[int, str]:
    """The key version and base64 body of a transit ciphertext.

    Checks run in Vault's order and fail with Vault's messages, so a caller
    sees the same reason for a malformed value as it would from Vault.
    """
    if not value.startswith(_PREFIX):
        raise UserError("invalid ciphertext: no prefix")
    version_text, separator, body = value[len(_PREFIX) :].partition(":")
    if not separator:
        raise UserError("invalid ciphertext: wrong number of fields")
    if not _GO_INTEGER.fullmatch(version_text):
        raise UserError("invalid ciphertext: version number could not be decoded")
    version = int(version_text)
    # Vault's first release numbered versions from zero; it reads v0 as v1.
    return (version if version != 0 else 1), body


def b64decode_go(value: str) -> bytes:
    """Decode standard base64 as Go's ``base64.StdEncoding`` does.

    Go ignores CR and LF and demands correct padding; its error names the
    offending byte, which this approximates with the first invalid position.
    """
    cleaned = value.replace("\r", "").replace("\n", "")
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"illegal base64 data at input byte {_first_bad_byte(cleaned)}") from None


def _first_bad_byte(text: str) -> int:
    raw = text.encode("utf-8", errors="replace")
    for index, byte in enumerate(raw):
        if byte not in _BASE64_ALPHABET and byte != ord("="):
            return index
    padding_at = raw.find(b"=")
    if padding_at != -1:
        return padding_at
    return len(raw) - len(raw) % 4
