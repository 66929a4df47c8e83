"""Rules of the Transit codec that mutation testing found unpinned (bench/mutation.py).

Each test's docstring is the rule; all run against keyward's dev Vault over HTTP.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from keyward.codec.converter import build_codec, build_data_converter
from keyward.codec.format import EncryptedHeader, associated_data, vault_ciphertext_bytes
from keyward.codec.transit_codec import (
    MAX_PLAINTEXT_BYTES,
    PayloadDecryptionError,
    PayloadEncryptionError,
    VaultTransitCodec,
)
from keyward.codec.usage import UsageCounters
from keyward.config import CodecSettings, Settings
from keyward.vault.transit_async import AsyncTransit, EncryptItem
from keyward_devstack.processes import free_port
from tests.conftest import VaultEndpoint
from tests.integration.test_codec import MODES, calls, make_codec, payloads


def settings_for(vault: VaultEndpoint, key: str, **codec: Any) -> Settings:
    return dataclasses.replace(Settings(), vault=vault.settings(),
                               codec=CodecSettings(keys={"default": key}, **codec))


async def test_authentic_content_that_is_not_a_payload_is_refused(
        vault: VaultEndpoint, transit_key: str) -> None:
    """Bytes that verify under the key and the namespace's associated data but are not a
    serialized Payload (someone else holding encrypt rights wrote them) fail with a
    decryption error naming the payload, not a protobuf error or a half-parsed payload."""
    transit = AsyncTransit(vault.settings(), vault.token.reveal)
    codec = make_codec(vault, "direct", key=transit_key)
    try:
        aad = associated_data("default", transit_key, "direct", "none")
        (ciphertext,) = await transit.encrypt(transit_key, [EncryptItem(b"\x0a\xff", aad)])
        version, raw = vault_ciphertext_bytes(ciphertext)
        header = EncryptedHeader(key=transit_key, key_version=version, scheme="direct",
                                 compression="none")
        crafted = Payload(metadata=header.metadata(), data=raw)
        with pytest.raises(PayloadDecryptionError, match=r"payload 0 .*is not a payload"):
            await codec.decode([crafted])
    finally:
        await transit.close()
        await codec.state.transit.close()


def _payload_of_size(size: int) -> Payload:
    """A payload whose serialized form is exactly ``size`` bytes (zeros: compresses well)."""
    payload = Payload(data=bytes(size - 5))  # tag (1) + a four-byte length varint
    assert payload.ByteSize() == size
    return payload


@pytest.mark.parametrize("mode", MODES)
async def test_inflating_stops_exactly_at_the_plaintext_limit(
        vault: VaultEndpoint, transit_key: str, mode: str) -> None:
    """A compressed payload inflating to MAX_PLAINTEXT_BYTES (64 MiB) decodes; one byte more
    is refused as a decompression bomb, before it is parsed."""
    assert MAX_PLAINTEXT_BYTES == 64 * 1024 * 1024
    codec = make_codec(vault, mode, key=transit_key, compression=True)
    try:
        at_limit = _payload_of_size(MAX_PLAINTEXT_BYTES)
        encoded = await codec.encode([at_limit, _payload_of_size(MAX_PLAINTEXT_BYTES + 1)])
        assert all(len(p.data) < 1024 * 1024 for p in encoded)  # really compressed
        assert await codec.decode(encoded[:1]) == [at_limit]
        with pytest.raises(PayloadDecryptionError, match=r"payload 0 .*not a payload"):
            await codec.decode(encoded[1:])
    finally:
        await codec.state.transit.close()


@pytest.mark.parametrize("mode", MODES)
async def test_nothing_to_encode_is_an_empty_list_and_no_vault_call(
        vault: VaultEndpoint, transit_key: str, mode: str,
        closing: list[VaultTransitCodec]) -> None:
    """Encoding or decoding no payloads returns an empty list (the SDK iterates it) and asks
    Vault nothing."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    assert await codec.encode([]) == []
    assert await codec.decode([]) == []
    assert calls(codec) == []


@pytest.mark.parametrize("mode", MODES)
async def test_plain_payloads_between_encrypted_ones_keep_every_payload_in_order(
        vault: VaultEndpoint, transit_key: str, mode: str,
        closing: list[VaultTransitCodec]) -> None:
    """A plain payload before encrypted ones does not end the decode: every payload comes
    back, in its place."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    first, second = await codec.encode(payloads(2))
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"plain"')
    assert await codec.decode([plain, first, plain, second]) == \
        [plain, payloads(2)[0], plain, payloads(2)[1]]


@pytest.mark.parametrize("mode", MODES)
async def test_vault_unreachable_while_decoding_is_a_decryption_error(
        vault: VaultEndpoint, transit_key: str, mode: str,
        closing: list[VaultTransitCodec]) -> None:
    """With Vault down, decoding (cold cache) raises PayloadDecryptionError saying Vault
    cannot be reached, naming key and version."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    encoded = await codec.encode(payloads(1))
    down = make_codec(dataclasses.replace(vault, address=f"http://127.0.0.1:{free_port()}"),
                      mode, key=transit_key)
    closing.append(down)
    with pytest.raises(PayloadDecryptionError,
                       match=rf"cannot reach Vault to decrypt with key '{transit_key}' "
                             "version 1") as caught:
        await down.decode(encoded)
    assert caught.value.retryable  # Vault may come back: worth retrying, unlike a bad key


async def test_counters_passed_in_are_the_ones_counted(vault: VaultEndpoint,
                                                       transit_key: str) -> None:
    """The usage counters given to the converter are the ones the codec counts into (the
    ledger reporter drains those), even while they are still empty."""
    counters = UsageCounters()
    bundle = build_data_converter(settings_for(vault, transit_key, mode="direct"),
                                  vault.token.reveal, namespace="default", usage=counters)
    try:
        assert bundle.usage is counters
        await bundle.codec.encode(payloads(3))
        assert counters.totals() == {(transit_key, 1): 3}
    finally:
        await bundle.close()


class ShortTransit(AsyncTransit):
    """The real client talking to the real dev Vault, whose answers lose their last batch
    result on the way: a Vault (or proxy) answering fewer results than items sent."""

    async def _post_once(self, path: str, body: dict[str, Any], operation: str) -> Any:
        data = await super()._post_once(path, body, operation)
        if "batch_results" in data:
            data["batch_results"] = data["batch_results"][:-1]
        return data


@pytest.mark.parametrize("mode", MODES)
async def test_a_short_vault_answer_fails_closed_and_drops_no_payload(
        vault: VaultEndpoint, transit_key: str, mode: str,
        closing: list[VaultTransitCodec]) -> None:
    """If Vault answers fewer batch results than items, encoding raises (no payload goes
    out unencrypted or missing) and decoding raises (no payload silently dropped)."""
    good = make_codec(vault, mode, key=transit_key)
    closing.append(good)
    encoded = await good.encode(payloads(3))
    short = build_codec(settings_for(vault, transit_key, mode=mode), vault.token.reveal,
                        namespace="default")
    closing.append(short)
    await short.state.transit.close()
    short.state.transit = ShortTransit(vault.settings(), vault.token.reveal)
    if mode == "direct":
        with pytest.raises(PayloadEncryptionError, match="answered 2 batch results for 3"):
            await short.encode(payloads(3))
    with pytest.raises(PayloadDecryptionError, match="answered"):
        await short.decode(encoded)


@pytest.mark.parametrize("mode", MODES)
async def test_a_closed_codec_fails_closed_and_opens_no_connection(
        vault: VaultEndpoint, transit_key: str, mode: str) -> None:
    """After its Vault client is closed (shutdown), encoding raises, nothing comes back
    unencrypted, and no new connection pool is opened (which nothing would close): a task
    finishing late during shutdown used to leak one."""
    codec = make_codec(vault, mode, key=transit_key)
    encoded = await codec.encode(payloads(1))
    transit = codec.state.transit
    await transit.close()
    codec.state.encode_keys.forget()  # no cached data key: envelope must ask Vault too
    with pytest.raises(PayloadEncryptionError, match="closed"):
        await codec.encode(payloads(1))
    fresh_cache = make_codec(vault, mode, key=transit_key)
    await fresh_cache.state.transit.close()
    with pytest.raises(PayloadDecryptionError, match="closed"):
        await fresh_cache.decode(encoded)
    assert transit._session is None
    assert fresh_cache.state.transit._session is None
