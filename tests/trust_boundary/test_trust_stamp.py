"""The "arrived encrypted" stamp cannot be forged: only the worker's codec sets it.

Inputs that make keyward act (rotation requests, usage reports) must have arrived
encrypted. The codec stamps what it decrypted and strips the stamp from everything it
lets through; the payload converter copies the stamp into the input's ``authenticated``
field, overwriting whatever the JSON said.
"""

from __future__ import annotations

import dataclasses
import json

from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from keyward.codec.converter import build_codec, build_data_converter
from keyward.codec.trust import (
    AUTHENTICATED_KEY,
    TrustStampingPayloadConverter,
    is_authenticated,
    unstamped,
)
from keyward.config import CodecSettings, Settings
from tests.conftest import VaultEndpoint


@dataclasses.dataclass(frozen=True)
class Request:
    key: str
    authenticated: bool = False


def json_payload(document: object, **extra: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain", **extra},
                   data=json.dumps(document).encode())


def settings_for(vault: VaultEndpoint, key: str) -> Settings:
    return dataclasses.replace(Settings(), vault=vault.settings(),
                               codec=CodecSettings(keys={"default": key}))


async def test_forged_stamp_on_plain_payload_is_stripped(vault: VaultEndpoint,
                                                         transit_key: str) -> None:
    """A plain payload carrying the stamp comes out of the worker's codec without it, and
    its ``"authenticated": true`` is overwritten with False."""
    bundle = build_data_converter(settings_for(vault, transit_key), vault.token.reveal,
                                  namespace="default")
    try:
        forged = json_payload({"key": "k", "authenticated": True},
                              **{AUTHENTICATED_KEY: b"1"})
        (decoded,) = await bundle.codec.decode([forged])
        assert not is_authenticated(decoded)
        (value,) = bundle.converter.payload_converter.from_payloads([decoded], [Request])
        assert value == Request(key="k", authenticated=False)
    finally:
        await bundle.close()


async def test_encrypted_input_reads_authenticated(vault: VaultEndpoint,
                                                   transit_key: str) -> None:
    """What the worker's converter encrypted decodes with ``authenticated`` True, even
    though the value that was encoded said False."""
    bundle = build_data_converter(settings_for(vault, transit_key), vault.token.reveal,
                                  namespace="default")
    try:
        (encoded,) = await bundle.converter.encode([Request(key="k")])
        (value,) = await bundle.converter.decode([encoded], [Request])
        assert value == Request(key="k", authenticated=True)
        assert unstamped(value) == Request(key="k")
    finally:
        await bundle.close()


async def test_codec_server_copies_never_stamp(vault: VaultEndpoint, transit_key: str) -> None:
    """The codec server's per-request copies return decrypted payloads without the stamp:
    it shows data to people and hands nothing to workflows."""
    settings = settings_for(vault, transit_key)
    bundle = build_data_converter(settings, vault.token.reveal, namespace="default")
    server_codec = build_codec(settings, vault.token.reveal, namespace="default")
    try:
        original = json_payload({"key": "k"})
        (encoded,) = await bundle.codec.encode([original])
        assert await bundle.codec.for_namespace("default").decode([encoded]) == [original]
        assert await server_codec.decode([encoded]) == [original]
        (stamped,) = await bundle.codec.decode([encoded])
        assert is_authenticated(stamped)
    finally:
        await bundle.close()
        await server_codec.state.transit.close()


def test_default_converter_cannot_mark_anything_authenticated() -> None:
    """Without the codec's stamp, the converter reads every input as unauthenticated."""
    converter = TrustStampingPayloadConverter()
    (value,) = converter.from_payloads([json_payload({"key": "k", "authenticated": True})],
                                       [Request])
    assert value.authenticated is False
    assert DataConverter.default.payload_converter.from_payloads(
        [json_payload({"key": "k", "authenticated": True})], [Request])[0].authenticated
