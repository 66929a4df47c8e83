"""Transit key rings: versions, rotation, and encrypting with a given version.

This is the part of Vault's ``sdk/helper/keysutil`` that transit needs: a
key ring holds numbered versions, encrypts with the newest (or a requested
one at or above ``min_encryption_version``), decrypts any version at or above
``min_decryption_version``, and derives a per-context key with HKDF-SHA256
when the ring is ``derived``. Failures raise ``UserError`` or
``InternalError`` with Vault's texts; the endpoint decides the status.
"""

from __future__ import annotations

import base64
from typing import Any

from keyward_devstack.vaultdev.crypto import (
    KEY_SIZES,
    b64decode_go,
    derive_key,
    format_ciphertext,
    generate_key,
    seal,
    split_ciphertext,
    unseal,
)
from keyward_devstack.vaultdev.errors import InternalError, UserError, bad_request
from keyward_devstack.vaultdev.state import KeyVersion, State, TransitKey

ERR_TOO_OLD = "ciphertext or signature version is disallowed by policy (too old)"
ERR_MISSING_CONTEXT = (
    "missing 'context' for key derivation; the key was created using a derived key, "
    "which means additional, per-request information must be included in order to "
    "perform operations with the key"
)
MIN_AUTO_ROTATE_PERIOD = 3600

#: Types real Vault knows but this server does not implement.
_VAULT_ONLY_TYPES = frozenset(
    {
        "ecdsa-p256",
        "ecdsa-p384",
        "ecdsa-p521",
        "ed25519",
        "rsa-2048",
        "rsa-3072",
        "rsa-4096",
        "hmac",
        "managed_key",
        "aes128-cmac",
        "aes256-cmac",
        "ml-dsa",
        "hybrid",
    }
)


def new_key(
    name: str,
    key_type: str,
    *,
    now: float,
    derived: bool = False,
    exportable: bool = False,
    allow_plaintext_backup: bool = False,
    auto_rotate_period: int = 0,
) -> TransitKey:
    """A new key ring holding its first version."""
    key = TransitKey(
        name=name,
        key_type=key_type,
        derived=derived,
        exportable=exportable,
        allow_plaintext_backup=allow_plaintext_backup,
        auto_rotate_period=auto_rotate_period,
    )
    rotate_key(key, now)
    return key


def rotate_key(key: TransitKey, now: float) -> None:
    """Add a new newest version; older versions stay for decryption."""
    key.latest_version += 1
    key.versions[key.latest_version] = KeyVersion(generate_key(key.key_type), now)
    key.min_decryption_version = max(key.min_decryption_version, 1)


def rotate_due_keys(state: State, now: float) -> bool:
    """Rotate every key whose newest version is older than its auto-rotate period."""
    rotated = False
    for mount in state.secrets_mounts.values():
        for key in mount.keys.values():
            newest = key.versions.get(key.latest_version)
            if key.auto_rotate_period <= 0 or newest is None:
                continue
            if now >= newest.created + key.auto_rotate_period:
                rotate_key(key, now)
                rotated = True
    return rotated


def key_view(key: TransitKey) -> dict[str, Any]:
    """A key as Vault's ``formatKeyPolicy`` reports it."""
    view: dict[str, Any] = {
        "name": key.name,
        "type": key.key_type,
        "derived": key.derived,
        "deletion_allowed": key.deletion_allowed,
        "min_available_version": key.min_available_version,
        "min_decryption_version": key.min_decryption_version,
        "min_encryption_version": key.min_encryption_version,
        "latest_version": key.latest_version,
        "exportable": key.exportable,
        "allow_plaintext_backup": key.allow_plaintext_backup,
        "supports_encryption": True,
        "supports_decryption": True,
        "supports_signing": False,
        "supports_derivation": True,
        "auto_rotate_period": key.auto_rotate_period,
        "imported_key": False,
        "keys": {
            str(version): int(entry.created)
            for version, entry in sorted(key.versions.items())
            if version >= key.min_decryption_version
        },
    }
    if key.derived:
        view["kdf"] = "hkdf_sha256"
        view["convergent_encryption"] = False
    return view


def check_key_type(key_type: str) -> None:
    """Refuse key types this server cannot create, with Vault's or a clear message."""
    if key_type in KEY_SIZES:
        return
    if key_type in _VAULT_ONLY_TYPES:
        raise bad_request(
            f"key type {key_type} is not supported by the keyward dev vault "
            f"(supported: {', '.join(sorted(KEY_SIZES))})"
        )
    raise bad_request(f"unknown key type {key_type}")


def _version_key(key: TransitKey, context: bytes, version: int) -> bytes:
    if not key.derived:
        entry = key.versions.get(version)
        if entry is None:
            raise UserError("no such key version")
        return entry.material
    if version <= 0 or version > key.latest_version:
        raise UserError("invalid key version")
    if not context:
        raise UserError(ERR_MISSING_CONTEXT)
    entry = key.versions.get(version)
    if entry is None:
        raise UserError("no such key version")
    return derive_key(entry.material, context, KEY_SIZES[key.key_type])


def _associated_data(encoded: str) -> bytes:
    if not encoded:
        return b""
    try:
        return b64decode_go(encoded)
    except ValueError as exc:
        raise InternalError(
            f"unable to get associated_data/additional_data from factory[0]: {exc}"
        ) from None


def encrypt_value(
    key: TransitKey, version: int, context: bytes, plaintext_b64: str, associated_data: str
) -> tuple[str, int]:
    """Encrypt base64 ``plaintext_b64``; returns the ciphertext and version used."""
    try:
        plaintext = b64decode_go(plaintext_b64)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if version == 0:
        version = key.latest_version
    elif version < 0:
        raise UserError("requested version for encryption is negative")
    elif version > key.latest_version:
        raise UserError("requested version for encryption is higher than the latest key version")
    elif version < key.min_encryption_version:
        raise UserError(
            "requested version for encryption is less than the minimum encryption key version"
        )
    material = _version_key(key, context, version)
    sealed = seal(key.key_type, material, plaintext, _associated_data(associated_data))
    return format_ciphertext(version, sealed), version


def decrypt_value(key: TransitKey, context: bytes, value: str, associated_data: str) -> str:
    """Decrypt a ``vault:v<N>:`` ciphertext; returns the plaintext base64-encoded."""
    version, body = split_ciphertext(value)
    if version > key.latest_version:
        raise UserError("invalid ciphertext: version is too new")
    if key.min_decryption_version > 0 and version < key.min_decryption_version:
        raise UserError(ERR_TOO_OLD)
    try:
        sealed = b64decode_go(body)
    except ValueError:
        raise UserError("invalid ciphertext: could not decode base64") from None
    material = _version_key(key, context, version)
    plaintext = unseal(key.key_type, material, sealed, _associated_data(associated_data))
    return base64.b64encode(plaintext).decode("ascii")
