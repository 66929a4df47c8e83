"""The encrypted payload format: pure functions, checked over arbitrary inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from keyward.codec.format import (
    ENCODING,
    EncryptedHeader,
    PayloadFormatError,
    associated_data,
    compress,
    decompress,
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


@pytest.mark.parametrize("text", ["vault:1:AAAA", "vault:vx:AAAA", "vlt:v1:AAAA", "vault:v1:***"])
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
