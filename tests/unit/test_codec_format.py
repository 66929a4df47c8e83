"""The encrypted payload format: pure functions, checked over arbitrary inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from keyward.codec.format import (
    ENCODING,
    NONCE_BYTES,
    TAG_BYTES,
    EncryptedHeader,
    PayloadFormatError,
    associated_data,
    compress,
    decompress,
    is_encrypted,
    parse_header,
    vault_ciphertext,
    vault_ciphertext_bytes,
)

names = st.text(min_size=1, max_size=40)
#: Key names as Vault allows them (the decoder refuses any other: they become URL segments).
vault_names = st.from_regex(r"\A[0-9A-Za-z_](?:[0-9A-Za-z_\-.@]{0,38}[0-9A-Za-z_])?\Z")


@given(a=st.tuples(names, names), b=st.tuples(names, names),
       schemes=st.sampled_from(["direct", "envelope"]),
       comps=st.sampled_from(["zlib", "none"]))
def test_associated_data_is_injective(a: tuple[str, str], b: tuple[str, str], schemes: str,
                                      comps: str) -> None:
    """Different (namespace, key) pairs never produce the same associated data."""
    aad_a = associated_data(a[0], a[1], schemes, comps)  # type: ignore[arg-type]
    aad_b = associated_data(b[0], b[1], schemes, comps)  # type: ignore[arg-type]
    assert (aad_a == aad_b) == (a == b)


def test_associated_data_separates_field_boundaries() -> None:
    """'ab'+'c' and 'a'+'bc' differ: fields are length-prefixed, not concatenated."""
    assert associated_data("ab", "c", "direct", "none") != associated_data("a", "bc", "direct",
                                                                           "none")


@given(data=st.binary(max_size=5000), enabled=st.booleans())
def test_compress_round_trips_and_never_grows(data: bytes, enabled: bool) -> None:
    """Compression is undone exactly, and is skipped when it would not shrink the data."""
    packed, flag = compress(data, enabled)
    assert len(packed) <= len(data)
    assert decompress(packed, flag, limit=len(data) + 1) == data
    if not enabled:
        assert flag == "none"


def test_decompress_refuses_bombs() -> None:
    """A small compressed payload that inflates past the limit is refused."""
    packed, flag = compress(b"\0" * 1_000_000, True)
    assert flag == "zlib"
    with pytest.raises(PayloadFormatError, match="inflates past"):
        decompress(packed, flag, limit=10_000)


@given(key=vault_names, version=st.integers(min_value=1, max_value=10**6),
       scheme=st.sampled_from(["direct", "envelope"]), comp=st.sampled_from(["zlib", "none"]))
def test_header_round_trips_through_metadata(key: str, version: int, scheme: str,
                                             comp: str) -> None:
    """What the encoder writes, the decoder reads back identically."""
    # The wrapped key's own vN: must be the metadata's version (checked on every decode).
    wrapped = f"vault:v{version}:AAAA" if scheme == "envelope" else None
    header = EncryptedHeader(key=key, key_version=version, scheme=scheme,  # type: ignore[arg-type]
                             compression=comp, wrapped_key=wrapped)  # type: ignore[arg-type]
    payload = Payload(metadata=header.metadata(), data=b"x")
    assert payload.metadata["encoding"] == ENCODING
    assert parse_header(payload) == header


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"keyward-format": b"2"}, "unknown keyward payload format"),
        ({"keyward-key-version": b"0"}, "invalid key id/version"),
        ({"keyward-key-version": b"v1"}, "invalid key id/version"),
        ({"keyward-scheme": b"rot13"}, "unknown scheme"),
        ({"keyward-compression": b"lz4"}, "unknown scheme/compression"),
        ({"keyward-wrapped-key": b"vault:v1:AAAA"}, "direct payload with a wrapped data key"),
        ({"keyward-key": b"\xff"}, "not UTF-8"),
    ],
)
def test_malformed_headers_are_rejected(change: dict[str, bytes], message: str) -> None:
    """Every malformed metadata value gives a PayloadFormatError saying what is wrong."""
    meta = EncryptedHeader(key="k", key_version=1, scheme="direct", compression="none").metadata()
    meta.update(change)
    with pytest.raises(PayloadFormatError, match=message):
        parse_header(Payload(metadata=meta, data=b""))


def test_missing_metadata_is_named() -> None:
    """A missing metadata entry is named in the error."""
    meta = EncryptedHeader(key="k", key_version=1, scheme="direct", compression="none").metadata()
    del meta["keyward-scheme"]
    with pytest.raises(PayloadFormatError, match="keyward-scheme"):
        parse_header(Payload(metadata=meta, data=b""))


@given(version=st.integers(min_value=1, max_value=10**9), raw=st.binary(max_size=200))
def test_vault_ciphertext_round_trip(version: int, raw: bytes) -> None:
    """vault:vN:<base64> is rebuilt exactly from (version, raw bytes)."""
    assert vault_ciphertext_bytes(vault_ciphertext(version, raw)) == (version, raw)


@pytest.mark.parametrize("text", ["vault:1:AAAA", "vault:vx:AAAA", "vlt:v1:AAAA", "vault:v1:***",
                                  "vault:v1", "vault:x1:AAAA", "vault:v01:AAAA"])
def test_bad_vault_ciphertexts_are_rejected(text: str) -> None:
    """Strings that are not Transit ciphertexts are refused, not half-parsed."""
    with pytest.raises(PayloadFormatError):
        vault_ciphertext_bytes(text)


@pytest.mark.parametrize("name", ["keyward-key", "keyward-key-version", "keyward-scheme",
                                  "keyward-compression"])
def test_empty_metadata_values_are_rejected(name: str) -> None:
    """A present but empty value is malformed, reported as such (not a crash)."""
    meta = EncryptedHeader(key="k", key_version=1, scheme="direct", compression="none").metadata()
    meta[name] = b""
    with pytest.raises(PayloadFormatError):
        parse_header(Payload(metadata=meta, data=b""))


DIRECT = EncryptedHeader(key="k", key_version=3, scheme="direct", compression="none")


def test_envelope_version_must_be_the_wrapped_keys_own() -> None:
    """In envelope mode the metadata's version must equal the ``vault:vN:`` of the wrapped
    key, so an altered ``keyward-key-version`` is refused (the version is not in the AAD)."""
    meta = EncryptedHeader(key="k", key_version=3, scheme="envelope", compression="none",
                           wrapped_key="vault:v3:AAAA").metadata()
    assert parse_header(Payload(metadata=meta, data=b"")).key_version == 3
    meta["keyward-key-version"] = b"2"
    with pytest.raises(PayloadFormatError, match="says version 2 but the data key was wrapped "
                                                 "with version 3"):
        parse_header(Payload(metadata=meta, data=b""))


def test_envelope_without_a_wrapped_key_is_rejected() -> None:
    """An envelope payload must carry its wrapped data key."""
    meta = DIRECT.metadata()
    meta["keyward-scheme"] = b"envelope"
    with pytest.raises(PayloadFormatError, match="envelope payload without a wrapped data key"):
        parse_header(Payload(metadata=meta, data=b""))


def test_a_missing_format_is_shown_as_missing() -> None:
    """A payload marked encrypted but without ``keyward-format`` says the value is missing."""
    meta = DIRECT.metadata()
    del meta["keyward-format"]
    with pytest.raises(PayloadFormatError, match="format <missing>"):
        parse_header(Payload(metadata=meta, data=b""))


@pytest.mark.parametrize(("value", "shown"), [
    (b"9" * 64, ascii(b"9" * 64)),
    (b"9" * 65, ascii(b"9" * 64) + "…"),
    (b"9" * 500, ascii(b"9" * 64) + "…"),
])
def test_hostile_values_are_shown_bounded(value: bytes, shown: str) -> None:
    """An error shows at most the first 64 bytes of a metadata value, ``…`` when cut."""
    meta = DIRECT.metadata()
    meta["keyward-format"] = value
    with pytest.raises(PayloadFormatError) as raised:
        parse_header(Payload(metadata=meta, data=b""))
    assert str(raised.value) == f"unknown keyward payload format {shown}"


def test_is_encrypted_reads_the_encoding() -> None:
    """Only ``encoding: binary/encrypted`` marks a payload as keyward's."""
    assert is_encrypted(Payload(metadata=DIRECT.metadata(), data=b""))
    assert not is_encrypted(Payload(metadata={"encoding": b"json/plain"}, data=b"{}"))
    assert not is_encrypted(Payload())


def test_describe_names_key_version_and_scheme() -> None:
    """The header's description (used in errors and logs) names key, version and scheme."""
    assert DIRECT.describe() == "key 'k' version 3 (direct)"


def test_wire_sizes_are_aes_gcm() -> None:
    """Envelope data is nonce(12) ‖ ciphertext ‖ tag(16): AES-256-GCM's sizes, fixed by the
    format (payloads already in history depend on them)."""
    assert (NONCE_BYTES, TAG_BYTES) == (12, 16)


def test_associated_data_encoding_is_stable() -> None:
    """The associated data is each field prefixed by its 4-byte big-endian length; payloads
    written today must still decrypt, so the bytes never change."""
    assert associated_data("ns", "k", "direct", "none") == (
        b"\0\0\0\x12keyward/payload/v1" b"\0\0\0\x02ns" b"\0\0\0\x01k"
        b"\0\0\0\x06direct" b"\0\0\0\x04none")


def test_compression_needs_enabled_and_more_than_64_bytes() -> None:
    """Only data longer than 64 bytes is compressed, and only when compression is enabled."""
    assert compress(b"a" * 64, True) == (b"a" * 64, "none")
    packed, flag = compress(b"a" * 65, True)
    assert flag == "zlib"
    assert len(packed) < 65
    assert compress(b"a" * 10_000, False) == (b"a" * 10_000, "none")


def test_compressed_data_inflates_back() -> None:
    """decompress returns exactly the original bytes, also when they fill the limit exactly."""
    data = b"keyward " * 1000
    packed, flag = compress(data, True)
    assert flag == "zlib"
    assert decompress(packed, flag, limit=len(data)) == data
    assert decompress(b"plain", "none", limit=1) == b"plain"


def test_decompress_refuses_one_byte_past_the_limit() -> None:
    """Inflating to one byte more than ``limit`` is refused (output left unconsumed)."""
    data = b"keyward " * 1000
    packed, _ = compress(data, True)
    with pytest.raises(PayloadFormatError, match="inflates past"):
        decompress(packed, "zlib", limit=len(data) - 1)


def test_decompress_refuses_a_truncated_stream() -> None:
    """A zlib stream cut short (no end of stream) is refused, not returned half-inflated."""
    data = b"keyward " * 1000
    packed, _ = compress(data, True)
    with pytest.raises(PayloadFormatError, match="truncated"):
        decompress(packed[:-6], "zlib", limit=len(data) * 2)
