"""Payload metadata is untrusted: it can never choose a Vault path, a key or a version.

Attack 1 of the trust-boundary issue: the key name in an encrypted payload's metadata
went into the Transit URL unchanged, and ``..`` was resolved, so a payload naming
``../keys/payments/rotate`` made keyward POST there with its own token. Every test here
watches the wire (a recording proxy in front of the real dev Vault) and checks Vault's
own state afterwards.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator

import hvac
import pytest
from temporalio.api.common.v1 import Payload

from keyward.codec.converter import build_codec
from keyward.codec.format import ENCODING, KEY_ID_KEY, KEY_VERSION_KEY
from keyward.codec.transit_codec import PayloadDecryptionError, VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.config import CodecServerSettings, CodecSettings, Settings
from tests.conftest import VaultEndpoint
from tests.trust_boundary.vault_recorder import VaultRecorder, recording_vault

MODES = ["direct", "envelope"]


@pytest.fixture
async def recorder(vault: VaultEndpoint) -> AsyncIterator[VaultRecorder]:
    async with recording_vault(vault.address) as recorded:
        yield recorded


def codec_through(recorder: VaultRecorder, vault: VaultEndpoint, mode: str,
                  keys: dict[str, str], namespace: str = "default",
                  **codec: object) -> VaultTransitCodec:
    settings = dataclasses.replace(
        Settings(), vault=vault.settings(address=recorder.address),
        codec=CodecSettings(mode=mode, keys=keys, **codec))  # type: ignore[arg-type]
    token = vault.token.reveal()
    return build_codec(settings, lambda: token, namespace=namespace)


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def crafted(metadata: dict[str, bytes]) -> Payload:
    return Payload(metadata={"encoding": ENCODING, "keyward-format": b"1",
                             "keyward-key-version": b"1", "keyward-scheme": b"direct",
                             "keyward-compression": b"none", **metadata},
                   data=b"\0" * 40)


@pytest.fixture
def victim(vault_client: hvac.Client) -> str:
    """A key the attacker wants rotated: nobody's payloads are at stake in the test."""
    name = f"victim-{uuid.uuid4().hex[:10]}"
    vault_client.secrets.transit.create_key(name=name)
    return name


def latest_version(vault_client: hvac.Client, key: str) -> int:
    return int(vault_client.secrets.transit.read_key(name=key)["data"]["latest_version"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("template", [
    "../keys/{victim}/rotate",
    "../../transit/keys/{victim}/rotate",
    "..%2Fkeys%2F{victim}%2Frotate",
    "%2e%2e/keys/{victim}/rotate",
    "{victim}/../../keys/{victim}/rotate",
    "{victim}?x=/../keys/{victim}/rotate",
])
async def test_traversal_key_name_reaches_no_vault_path(
        vault: VaultEndpoint, vault_client: hvac.Client, recorder: VaultRecorder,
        transit_key: str, victim: str, mode: str, template: str) -> None:
    """A key name that is not a Vault name is refused before any request: the victim key
    does not rotate and nothing at all is sent to Vault."""
    codec = codec_through(recorder, vault, mode, {"default": transit_key})
    try:
        name = template.format(victim=victim).encode()
        with pytest.raises(PayloadDecryptionError, match="not a Vault key name"):
            await codec.decode([crafted({KEY_ID_KEY: name})])
    finally:
        await codec.state.transit.close()
    assert recorder.requests == []
    assert latest_version(vault_client, victim) == 1


async def test_revoke_self_traversal_keeps_the_token(
        vault: VaultEndpoint, vault_client: hvac.Client, recorder: VaultRecorder,
        transit_key: str) -> None:
    """``../../auth/token/revoke-self`` in the metadata cannot revoke keyward's token."""
    codec = codec_through(recorder, vault, "direct", {"default": transit_key})
    try:
        with pytest.raises(PayloadDecryptionError):
            await codec.decode([crafted({KEY_ID_KEY: b"../../auth/token/revoke-self"})])
    finally:
        await codec.state.transit.close()
    assert recorder.requests == []
    assert vault_client.auth.token.lookup_self()["data"]["id"]


@pytest.mark.parametrize("mode", MODES)
async def test_key_the_namespace_does_not_use_is_refused_before_vault(
        vault: VaultEndpoint, vault_client: hvac.Client, recorder: VaultRecorder,
        transit_key: str, victim: str, mode: str) -> None:
    """A valid key name that the namespace's mapping does not give it is refused with no
    Vault request: a payload cannot make keyward decrypt with another namespace's key."""
    codec = codec_through(recorder, vault, mode, {"default": transit_key})
    try:
        victims = codec_through(recorder, vault, mode, {"default": victim})
        try:
            (foreign,) = await victims.encode([plain("theirs")])
        finally:
            await victims.state.transit.close()
        recorder.clear()
        with pytest.raises(PayloadDecryptionError, match="does not use"):
            await codec.decode([foreign])
    finally:
        await codec.state.transit.close()
    assert recorder.requests == []


@pytest.mark.parametrize("mode", MODES)
async def test_previous_keys_still_decode_after_a_mapping_change(
        vault: VaultEndpoint, recorder: VaultRecorder, transit_key: str, victim: str,
        mode: str) -> None:
    """After ``codec.keys`` moves a namespace to a new key, payloads under the old one
    decode when it is listed in ``codec.previous_keys``, and only then."""
    old = codec_through(recorder, vault, mode, {"default": victim})
    try:
        (stored,) = await old.encode([plain("written before the change")])
    finally:
        await old.state.transit.close()
    moved = codec_through(recorder, vault, mode, {"default": transit_key},
                          previous_keys={"default": (victim,)})
    strict = codec_through(recorder, vault, mode, {"default": transit_key})
    try:
        assert await moved.decode([stored]) == [plain("written before the change")]
        with pytest.raises(PayloadDecryptionError, match="does not use"):
            await strict.decode([stored])
        (fresh,) = await moved.encode([plain("new")])
        assert fresh.metadata[KEY_ID_KEY] == transit_key.encode()
    finally:
        await moved.state.transit.close()
        await strict.state.transit.close()


async def test_envelope_version_edit_fails_even_with_a_warm_cache(
        vault: VaultEndpoint, vault_client: hvac.Client, recorder: VaultRecorder,
        transit_key: str) -> None:
    """Altering ``keyward-key-version`` makes an envelope payload fail to decode, also
    when its data key is already cached (the version is checked on every decode)."""
    vault_client.secrets.transit.rotate_key(name=transit_key)
    codec = codec_through(recorder, vault, "envelope", {"default": transit_key})
    try:
        (payload,) = await codec.encode([plain("secret")])
        assert payload.metadata[KEY_VERSION_KEY] == b"2"
        assert await codec.decode([payload]) == [plain("secret")]  # cache now warm
        for edit in (b"1", b"02", b"3", b"2 "):
            altered = Payload()
            altered.CopyFrom(payload)
            altered.metadata[KEY_VERSION_KEY] = edit
            with pytest.raises(PayloadDecryptionError):
                await codec.decode([altered])
    finally:
        await codec.state.transit.close()


async def test_codec_server_namespace_cannot_name_a_vault_path(
        vault: VaultEndpoint, vault_client: hvac.Client, recorder: VaultRecorder,
        victim: str) -> None:
    """The namespace a codec-server caller names (X-Namespace) selects the key of an
    unmapped namespace; a traversal there is a 400 with no Vault request."""
    from aiohttp.test_utils import TestClient, TestServer  # noqa: PLC0415

    codec = codec_through(recorder, vault, "direct", {})
    client = TestClient(TestServer(build_app(CodecServerSettings(auth="none"), codec, None)))
    await client.start_server()
    try:
        body = {"payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                              "data": base64.b64encode(b'"x"').decode()}]}
        for namespace in (f"../keys/{victim}/rotate", f"..%2Fkeys%2F{victim}%2Frotate"):
            response = await client.post("/encode", json=body,
                                         headers={"X-Namespace": namespace})
            assert response.status == 400, await response.text()
            assert "not a Vault name" in (await response.json())["error"]
    finally:
        await client.close()
        await codec.state.transit.close()
    assert recorder.requests == []
    assert latest_version(vault_client, victim) == 1
