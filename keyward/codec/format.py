"""The encrypted payload's wire format: metadata names, associated data, compression.

Pure functions, no I/O, so the format can be read (and property tested) in one place.

An encrypted payload looks like this::

    metadata:
      encoding            = binary/encrypted
      keyward-format      = 1
      keyward-key         = <transit key name>
      keyward-key-version = <transit key version, decimal>
      keyward-scheme      = direct | envelope
      keyward-compression = zlib | none
      keyward-wrapped-key = vault:vN:...        (envelope only: the data key, wrapped)
    data:
      direct:   nonce ‖ ciphertext ‖ tag  as Vault made it (the vault:vN: prefix is rebuilt
                from keyward-key-version, so history stores raw bytes, not base64)
      envelope: nonce(12) ‖ ciphertext ‖ tag(16), AES-256-GCM under the data key

The plaintext is the *whole original payload* (its metadata and data, serialised),
so the original encoding is hidden too. The AEAD associated data binds the
ciphertext to the namespace, key, scheme and compression flag: a payload copied
into another namespace, or with any of those metadata values altered, fails to
decrypt. The key version is authenticated separately: it selects the Vault key
(direct) or must match the wrapped key's own version (envelope).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import zlib
from dataclasses import dataclass
from typing import Final, Literal

from temporalio.api.common.v1 import Payload

from keyward.vault.names import is_key_name

ENCODING_KEY: Final = "encoding"
ENCODING: Final = b"binary/encrypted"
FORMAT_KEY: Final = "keyward-format"
FORMAT_VERSION: Final = b"1"
KEY_ID_KEY: Final = "keyward-key"
KEY_VERSION_KEY: Final = "keyward-key-version"
SCHEME_KEY: Final = "keyward-scheme"
COMPRESSION_KEY: Final = "keyward-compression"
WRAPPED_KEY_KEY: Final = "keyward-wrapped-key"

NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
AAD_PREFIX: Final = b"keyward/payload/v1"

Scheme = Literal["direct", "envelope"]
Compression = Literal["zlib", "none"]
_SCHEMES: Final = ("direct", "envelope")
_COMPRESSIONS: Final = ("zlib", "none")
#: A key version as keyward writes it: canonical ASCII decimal, no sign, no leading zero,
#: at most ten digits (nobody rotates a key ten billion times).
_VERSION: Final = re.compile(rb"[1-9][0-9]{0,9}")
_VERSION_TEXT: Final = re.compile(r"[1-9][0-9]{0,9}")
# zlib level 1: most of the ratio on JSON for a fraction of level 6's CPU time.
_ZLIB_LEVEL: Final = 1


class PayloadFormatError(ValueError):
    """An encrypted-looking payload whose metadata is missing or malformed."""


@dataclass(frozen=True)
class EncryptedHeader:
    """The metadata of one encrypted payload, parsed and validated."""

    key: str
    key_version: int
    scheme: Scheme
    compression: Compression
    wrapped_key: str | None = None

    def metadata(self) -> dict[str, bytes]:
        return dict(_metadata(self))

    def describe(self) -> str:
        return f"key {self.key!r} version {self.key_version} ({self.scheme})"


@functools.lru_cache(maxsize=1024)
def _metadata(header: EncryptedHeader) -> tuple[tuple[str, bytes], ...]:
    """Metadata entries for a header; cached, as one data key's payloads all share it."""
    meta = {
        ENCODING_KEY: ENCODING,
        FORMAT_KEY: FORMAT_VERSION,
        KEY_ID_KEY: header.key.encode(),
        KEY_VERSION_KEY: str(header.key_version).encode(),
        SCHEME_KEY: header.scheme.encode(),
        COMPRESSION_KEY: header.compression.encode(),
    }
    if header.wrapped_key is not None:
        meta[WRAPPED_KEY_KEY] = header.wrapped_key.encode()
    return tuple(meta.items())


def is_encrypted(payload: Payload) -> bool:
    return payload.metadata.get(ENCODING_KEY) == ENCODING


def parse_header(payload: Payload) -> EncryptedHeader:
    """Read and check the metadata of an encrypted payload."""
    meta = payload.metadata
    # .get, not [], because a protobuf map answers a missing key with b"" instead of raising.
    return _parse_header_values((meta.get(FORMAT_KEY), meta.get(KEY_ID_KEY),
                                 meta.get(KEY_VERSION_KEY), meta.get(SCHEME_KEY),
                                 meta.get(COMPRESSION_KEY), meta.get(WRAPPED_KEY_KEY)))


@functools.lru_cache(maxsize=4096)
def _parse_header_values(values: tuple[bytes | None, ...]) -> EncryptedHeader:
    """The validation behind :func:`parse_header`, cached: payloads under one data key
    share every value, so a history decodes with one validation per data key.

    Everything here is attacker-controlled (anyone who can start a workflow sets payload
    metadata), so each value is held to the one spelling keyward writes: the key name to
    Vault's naming rule (it becomes a URL path segment), the version to canonical decimal,
    and in envelope mode the wrapped key's own ``vault:vN:`` to that same version.
    """
    fmt, key_id, version, scheme_raw, compression_raw, wrapped_raw = values
    if fmt != FORMAT_VERSION:
        raise PayloadFormatError(f"unknown keyward payload format {_shown(fmt)}")
    named = {KEY_ID_KEY: key_id, KEY_VERSION_KEY: version, SCHEME_KEY: scheme_raw,
             COMPRESSION_KEY: compression_raw}
    for name, raw in named.items():
        if raw is None:
            raise PayloadFormatError(f"encrypted payload lacks metadata {name}")
    try:
        key, scheme, compression = (
            (raw or b"").decode() for raw in (key_id, scheme_raw, compression_raw))
        wrapped = wrapped_raw.decode() if wrapped_raw is not None else None
    except UnicodeDecodeError:
        raise PayloadFormatError("encrypted payload metadata is not UTF-8") from None
    if not is_key_name(key):
        raise PayloadFormatError(f"encrypted payload has invalid key id/version: "
                                 f"{_shown(key_id)} is not a Vault key name")
    if version is None or _VERSION.fullmatch(version) is None:
        raise PayloadFormatError(f"encrypted payload has invalid key id/version: version "
                                 f"{_shown(version)}")
    key_version = int(version)
    if scheme not in _SCHEMES or compression not in _COMPRESSIONS:
        raise PayloadFormatError(f"encrypted payload has unknown scheme/compression "
                                 f"{_shown(scheme_raw)}/{_shown(compression_raw)}")
    if (scheme == "envelope") != (wrapped is not None):
        raise PayloadFormatError(f"{scheme} payload with{'out' if wrapped is None else ''} "
                                 "a wrapped data key")
    if wrapped is not None:
        wrapped_version, _ = vault_ciphertext_bytes(wrapped)
        if wrapped_version != key_version:
            # The version is not in the associated data (format 1), so it is bound here:
            # it must be the one Vault itself wrote into the wrapped key.
            raise PayloadFormatError(f"metadata says version {key_version} but the data key "
                                     f"was wrapped with version {wrapped_version}")
    return EncryptedHeader(key=key, key_version=key_version,
                           scheme=scheme,  # type: ignore[arg-type]
                           compression=compression,  # type: ignore[arg-type]
                           wrapped_key=wrapped)


def _shown(raw: bytes | str | None) -> str:
    """A metadata value as an error may show it: bounded and printable (it is hostile)."""
    if raw is None:
        return "<missing>"
    return ascii(raw[:64]) + ("…" if len(raw) > 64 else "")


@functools.lru_cache(maxsize=4096)
def associated_data(namespace: str, key: str, scheme: Scheme, compression: Compression) -> bytes:
    """AEAD associated data: length-prefixed fields, so no two tuples encode alike.

    Cached: a process sees few (namespace, key) pairs and this sits on the per-payload path.
    """
    parts = [AAD_PREFIX, namespace.encode(), key.encode(), scheme.encode(), compression.encode()]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


def compress(data: bytes, enabled: bool) -> tuple[bytes, Compression]:
    """zlib-compress when enabled and it actually shrinks the data."""
    if enabled and len(data) > 64:
        packed = zlib.compress(data, _ZLIB_LEVEL)
        if len(packed) < len(data):
            return packed, "zlib"
    return data, "none"


def decompress(data: bytes, compression: Compression, *, limit: int) -> bytes:
    """Undo :func:`compress`, refusing to inflate past ``limit`` bytes (zip bombs)."""
    if compression == "none":
        return data
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail or not inflater.eof:
        raise PayloadFormatError(f"compressed payload inflates past {limit} bytes or is truncated")
    return out


def vault_ciphertext(version: int, raw: bytes) -> str:
    """Rebuild Vault's ``vault:vN:<base64>`` string from raw bytes."""
    return f"vault:v{version}:{base64.b64encode(raw).decode()}"


def vault_ciphertext_bytes(ciphertext: str) -> tuple[int, bytes]:
    """Split Vault's ``vault:vN:<base64>`` into (version, raw bytes)."""
    parts = ciphertext.split(":", 2)
    if len(parts) != 3 or parts[0] != "vault" or parts[1][:1] != "v" \
            or _VERSION_TEXT.fullmatch(parts[1][1:]) is None:
        raise PayloadFormatError("not a Vault Transit ciphertext")
    try:
        return int(parts[1][1:]), base64.b64decode(parts[2], validate=True)
    except binascii.Error:
        raise PayloadFormatError("Vault Transit ciphertext is not base64") from None
