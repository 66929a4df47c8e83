"""The Vault Transit payload codec against a real (dev or real) Vault over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import hvac
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from keyward.codec.converter import build_codec
from keyward.codec.format import ENCODING
from keyward.codec.transit_codec import (
    PayloadDecryptionError,
    PayloadEncryptionError,
    VaultTransitCodec,
)
from keyward.config import CodecSettings, Settings
from keyward.vault.transit_async import AsyncTransit
from keyward_devstack.processes import free_port
from tests.conftest import VaultEndpoint

MODES = ["direct", "envelope"]


class CountingTransit(AsyncTransit):
    """The real client, counting the HTTP calls it makes (to prove batching)."""

    calls: list[str]

    async def _post_once(self, path: str, body: dict[str, Any], operation: str) -> Any:
        self.calls.append(path.split("/", maxsplit=1)[0])
        return await super()._post_once(path, body, operation)


def make_codec(vault: VaultEndpoint, mode: str, *, namespace: str = "default",
               key: str | None = None, **codec_overrides: Any) -> VaultTransitCodec:
    keys = {namespace: key} if key else {}
    codec_settings = CodecSettings(mode=mode, keys=keys, **codec_overrides)  # type: ignore[arg-type]
    settings = dataclasses.replace(Settings(), vault=vault.settings(), codec=codec_settings)
    token = vault.token.reveal()
    codec = build_codec(settings, lambda: token, namespace=namespace)
    counting = CountingTransit(settings.vault, lambda: token)
    counting.calls = []
    codec.state.transit = counting
    codec.state.encode_keys.generate = counting.generate_data_key
    return codec


def calls(codec: VaultTransitCodec) -> list[str]:
    transit = codec.state.transit
    assert isinstance(transit, CountingTransit)
    return transit.calls


def payloads(n: int, size: int = 100) -> list[Payload]:
    return [Payload(metadata={"encoding": b"json/plain", "n": str(i).encode()},
                    data=(b'{"card":"4111-1111-1111-1111","i":%d}' % i).ljust(size, b" "))
            for i in range(n)]


@pytest.mark.parametrize("mode", MODES)
async def test_round_trip_hides_data_and_metadata(vault: VaultEndpoint, transit_key: str,
                                                  mode: str,
                                                  closing: list[VaultTransitCodec]) -> None:
    """Encoded payloads carry no trace of the original data or metadata, and decode exactly."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    original = payloads(5)
    encoded = await codec.encode(original)
    for payload in encoded:
        assert payload.metadata["encoding"] == ENCODING
        assert b"4111" not in payload.data
        assert b"json/plain" not in payload.SerializeToString()
        assert payload.metadata["keyward-scheme"] == mode.encode()
        assert payload.metadata["keyward-key"] == transit_key.encode()
    assert await codec.decode(encoded) == original


@pytest.mark.parametrize("mode", MODES)
async def test_one_vault_call_per_batch(vault: VaultEndpoint, transit_key: str, mode: str,
                                        closing: list[VaultTransitCodec]) -> None:
    """100 payloads cost one Vault call to encode and one to decode (never one per payload)."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    encoded = await codec.encode(payloads(100))
    assert len(calls(codec)) == 1
    fresh = make_codec(vault, mode, key=transit_key)  # cold decode cache
    closing.append(fresh)
    assert len(await fresh.decode(encoded)) == 100
    assert calls(fresh) == ["decrypt"]


@pytest.mark.parametrize("mode", MODES)
async def test_rotation_keeps_old_payloads_readable(vault: VaultEndpoint,
                                                    vault_client: hvac.Client, transit_key: str,
                                                    mode: str,
                                                    closing: list[VaultTransitCodec]) -> None:
    """Data encrypted under v1 decodes after rotating to v3; new data uses v3."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    old = await codec.encode(payloads(2))
    assert old[0].metadata["keyward-key-version"] == b"1"
    vault_client.secrets.transit.rotate_key(name=transit_key)
    vault_client.secrets.transit.rotate_key(name=transit_key)
    codec.state.encode_keys.forget()
    new = await codec.encode(payloads(2))
    assert new[0].metadata["keyward-key-version"] == b"3"
    fresh = make_codec(vault, mode, key=transit_key)
    closing.append(fresh)
    assert await fresh.decode(old + new) == payloads(2) + payloads(2)


@pytest.mark.parametrize("mode", MODES)
async def test_version_below_floor_is_too_old(vault: VaultEndpoint, vault_client: hvac.Client,
                                              transit_key: str, mode: str,
                                              closing: list[VaultTransitCodec]) -> None:
    """Once min_decryption_version passes v1, a v1 payload fails as 'too old', naming both."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    old = await codec.encode(payloads(1))
    vault_client.secrets.transit.rotate_key(name=transit_key)
    vault_client.secrets.transit.update_key_configuration(name=transit_key,
                                                          min_decryption_version=2)
    fresh = make_codec(vault, mode, key=transit_key)
    closing.append(fresh)
    with pytest.raises(PayloadDecryptionError,
                       match=rf"key '{transit_key}' version 1 is too old"):
        await fresh.decode(old)


def flip(data: bytes, index: int) -> bytes:
    index %= len(data)
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1:]


TAMPER_CASES = [(mode, field) for mode in MODES
                for field in ("data", "keyward-key-version", "keyward-compression",
                              "keyward-wrapped-key", "keyward-scheme")
                if not (mode == "direct" and field == "keyward-wrapped-key")]


@pytest.mark.parametrize(("mode", "field"), TAMPER_CASES)
async def test_tampering_is_detected(vault: VaultEndpoint, vault_client: hvac.Client,
                                     transit_key: str, mode: str, field: str,
                                     closing: list[VaultTransitCodec]) -> None:
    """A bit flipped in the data or any metadata value makes decoding fail, never garbage."""
    vault_client.secrets.transit.rotate_key(name=transit_key)  # so version 1 also exists
    codec = make_codec(vault, mode, key=transit_key, compression=True)
    closing.append(codec)
    (encoded,) = await codec.encode(payloads(1, size=2000))
    assert encoded.metadata["keyward-compression"] == b"zlib"
    if field == "data":
        for position in (0, 13, len(encoded.data) // 2, -1):
            tampered = Payload()
            tampered.CopyFrom(encoded)
            tampered.data = flip(encoded.data, position)
            with pytest.raises(PayloadDecryptionError):
                await codec.decode([tampered])
        return
    tampered = Payload()
    tampered.CopyFrom(encoded)
    value = encoded.metadata[field]
    tampered.metadata[field] = {"keyward-key-version": b"1", "keyward-compression": b"none",
                                "keyward-scheme": b"direct" if mode == "envelope" else b"envelope",
                                }.get(field, flip(value, len(value) - 3))
    fresh = make_codec(vault, mode, key=transit_key)
    closing.append(fresh)
    with pytest.raises(PayloadDecryptionError) as caught:
        await fresh.decode([tampered])
    assert transit_key in str(caught.value) or "payload 0" in str(caught.value)


@pytest.mark.parametrize("mode", MODES)
async def test_cross_namespace_replay_is_rejected(vault: VaultEndpoint, transit_key: str,
                                                  mode: str,
                                                  closing: list[VaultTransitCodec]) -> None:
    """A payload from namespace A does not decrypt in namespace B, even under the same key."""
    settings = CodecSettings(mode=mode, keys={"team-a": transit_key, "team-b": transit_key})  # type: ignore[arg-type]
    full = dataclasses.replace(Settings(), vault=vault.settings(), codec=settings)
    token = vault.token.reveal()
    codec = build_codec(full, lambda: token, namespace="team-a")
    closing.append(codec)
    encoded = await codec.encode(payloads(1))
    other = codec.with_context(WorkflowSerializationContext(namespace="team-b", workflow_id="w"))
    assert other.namespace == "team-b"
    with pytest.raises(PayloadDecryptionError, match=r"team-b|message authentication"):
        await other.decode(encoded)
    assert await codec.decode(encoded) == payloads(1)


async def test_context_copies_share_caches(vault: VaultEndpoint, transit_key: str,
                                           closing: list[VaultTransitCodec]) -> None:
    """Copies made per operation share the data-key cache: no extra Vault calls."""
    codec = make_codec(vault, "envelope", key=transit_key)
    closing.append(codec)
    await codec.encode(payloads(1))
    copy = codec.with_context(WorkflowSerializationContext(namespace="default", workflow_id="x"))
    await copy.encode(payloads(1))
    assert calls(codec) == ["datakey"]


async def test_unencrypted_payloads_pass_through(vault: VaultEndpoint,
                                                 closing: list[VaultTransitCodec]) -> None:
    """Payloads without the encrypted encoding (CLI --input) are returned untouched."""
    codec = make_codec(vault, "envelope")
    closing.append(codec)
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'{"key":"default"}')
    assert await codec.decode([plain]) == [plain]
    assert calls(codec) == []


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_key_names_key_and_version(vault: VaultEndpoint, transit_key: str,
                                                 vault_client: hvac.Client, mode: str,
                                                 closing: list[VaultTransitCodec]) -> None:
    """A payload whose key no longer exists fails with an error naming key and version."""
    codec = make_codec(vault, mode, key=transit_key)
    closing.append(codec)
    encoded = await codec.encode(payloads(1))
    vault_client.secrets.transit.update_key_configuration(name=transit_key, deletion_allowed=True)
    vault_client.secrets.transit.delete_key(name=transit_key)
    fresh = make_codec(vault, mode, key=transit_key)
    closing.append(fresh)
    with pytest.raises(PayloadDecryptionError, match=rf"'{transit_key}' version 1"):
        await fresh.decode(encoded)


@pytest.mark.parametrize("mode", MODES)
async def test_encode_fails_closed_when_vault_is_down(vault: VaultEndpoint, mode: str) -> None:
    """With Vault unreachable, encoding raises; no payload comes back unencrypted."""
    down = dataclasses.replace(vault, address=f"http://127.0.0.1:{free_port()}")
    codec = make_codec(down, mode)
    try:
        with pytest.raises(PayloadEncryptionError, match="cannot connect to Vault"):
            await codec.encode(payloads(3))
        # Retries were bounded: 4 attempts, then the error.
        assert len(calls(codec)) == 4
    finally:
        await codec.state.transit.close()


async def test_encode_fails_closed_on_permission_denied(vault: VaultEndpoint) -> None:
    """A bad token is permanent: one attempt, no retry, and an error."""
    codec = make_codec(dataclasses.replace(vault, token=type(vault.token)("hvs.bad" + "x" * 24)),
                       "direct")
    try:
        with pytest.raises(PayloadEncryptionError, match="permission denied"):
            await codec.encode(payloads(1))
        assert len(calls(codec)) == 1
    finally:
        await codec.state.transit.close()


async def test_usage_counts_what_touches_the_transit_key(vault: VaultEndpoint, transit_key: str,
                                                         closing: list[VaultTransitCodec]) -> None:
    """Direct counts payloads; envelope counts data keys, renewed every max_uses payloads."""
    direct = make_codec(vault, "direct", key=transit_key)
    closing.append(direct)
    await direct.encode(payloads(30))
    assert direct.state.usage.totals() == {(transit_key, 1): 30}

    envelope = make_codec(vault, "envelope", key=transit_key, datakey_max_uses=10)
    closing.append(envelope)
    encoded = await envelope.encode(payloads(35))
    assert envelope.state.usage.totals() == {(transit_key, 1): 4}
    assert len({p.metadata["keyward-wrapped-key"] for p in encoded}) == 4
    assert calls(envelope).count("datakey") == 4


async def test_data_key_retires_by_age(vault: VaultEndpoint, transit_key: str,
                                       closing: list[VaultTransitCodec]) -> None:
    """A data key older than datakey_max_age_seconds is replaced before the next payload."""
    codec = make_codec(vault, "envelope", key=transit_key)
    closing.append(codec)
    now = [1000.0]
    codec.state.encode_keys.clock = lambda: now[0]
    await codec.encode(payloads(1))
    now[0] += codec.state.settings.datakey_max_age_seconds - 1
    await codec.encode(payloads(1))
    now[0] += 2
    await codec.encode(payloads(1))
    assert calls(codec).count("datakey") == 2


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=3000),
       metadata=st.dictionaries(st.text(min_size=1, max_size=20), st.binary(max_size=50),
                                max_size=4),
       mode=st.sampled_from(MODES), compression=st.booleans())
def test_round_trip_property(vault: VaultEndpoint, data: bytes, metadata: dict[str, bytes],
                             mode: str, compression: bool) -> None:
    """Any bytes with any metadata come back exactly, in both modes, compressed or not."""
    async def check() -> None:
        codec = make_codec(vault, mode, compression=compression)
        try:
            original = [Payload(metadata=metadata, data=data)]
            encoded = await codec.encode(original)
            assert await codec.decode(encoded) == original
        finally:
            await codec.state.transit.close()

    asyncio.run(check())


