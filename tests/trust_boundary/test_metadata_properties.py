"""Property tests: no metadata map, however crafted, steers Vault, crashes or decodes altered.

10,000 generated metadata maps through the codec and 10,000 through the codec server
(real HTTP, auth off), each watched on the wire by a recording proxy in front of the
real dev Vault:

* zero requests outside ``…/encrypt|decrypt|datakey/<allowed key>``;
* zero 5xx from the codec server (every malformed body or metadata is a 4xx);
* zero decodes of altered metadata: a payload whose keyward metadata was edited either
  fails, or (when ``encoding`` itself was edited away) passes through still encrypted —
  it never yields the plaintext.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import hvac
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from keyward.codec.converter import build_codec
from keyward.codec.format import (
    COMPRESSION_KEY,
    ENCODING_KEY,
    FORMAT_KEY,
    KEY_ID_KEY,
    KEY_VERSION_KEY,
    SCHEME_KEY,
    WRAPPED_KEY_KEY,
)
from keyward.codec.transit_codec import PayloadDecryptionError, VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.config import CodecServerSettings, CodecSettings, Settings
from tests.conftest import VaultEndpoint
from tests.trust_boundary.vault_recorder import LoopThread, VaultRecorder, recording_vault

EXAMPLES = 10_000
KEYWARD_FIELDS = (ENCODING_KEY, FORMAT_KEY, KEY_ID_KEY, KEY_VERSION_KEY, SCHEME_KEY,
                  COMPRESSION_KEY, WRAPPED_KEY_KEY)
PLAINTEXT = Payload(metadata={"encoding": b"json/plain"}, data=b'"the secret"')

hostile_text = st.sampled_from([
    "../keys/{victim}/rotate", "../../auth/token/revoke-self", "..%2Fkeys%2F{victim}",
    "%2e%2e%2f%2e%2e%2fsys%2fseal", "{key}/../{victim}", "{key}/", "/{key}", "{key}?x=1",
    "{key}#frag", "{key}%00", "{key}\x00", "{key} ", " {key}", "{key}\n", "{victim}",
    "{key}.", ".{key}", "-{key}", "{key}@", "\uff4b\uff45\uff59", "\u043a\u0435\u0443",
    "{key}\u202e", "", ".", "..",
    "vault:v1:AAAA", "vault:v0:AAAA", "vault:v-1:AAAA", "vault:v01:{b64}", "vault:v²:AAAA",
    "1", "01", "+1", "1 ", " 1", "0", "-1", "²", "٣", "1_0", "0x1", "1e3", "99999999999",
    "2", "3", "direct", "envelope", "zlib", "none", "binary/encrypted", "json/plain", "2\n",
])


@dataclass
class Setup:
    loop: LoopThread
    recorder: VaultRecorder
    codec: VaultTransitCodec
    key: str
    victim: str
    #: The original encrypted payloads, by scheme (envelope decoded once: cache warm).
    originals: dict[str, Payload]
    server: TestServer
    http: aiohttp.ClientSession

    def text(self, template: str) -> str:
        b64 = base64.b64encode(b"\0" * 28).decode()
        return template.format(key=self.key, victim=self.victim, b64=b64)


@pytest.fixture(scope="module")
def setup(vault: VaultEndpoint) -> Iterator[Setup]:
    client = hvac.Client(url=vault.address, token=vault.token.reveal(), timeout=10)
    key, victim = (f"{role}-{uuid.uuid4().hex[:8]}" for role in ("props", "victim"))
    for name in (key, victim):
        client.secrets.transit.create_key(name=name)
    client.secrets.transit.rotate_key(name=key)  # versions 1 and 2 both exist
    loop = LoopThread()
    recorder_cm = recording_vault(vault.address)
    recorder = loop.run(recorder_cm.__aenter__())
    token = vault.token.reveal()

    def codec_for(mode: str) -> VaultTransitCodec:
        config = dataclasses.replace(
            Settings(), vault=vault.settings(address=recorder.address),
            codec=CodecSettings(mode=mode, keys={"default": key}))  # type: ignore[arg-type]
        return build_codec(config, lambda: token, namespace="default")

    direct, envelope = codec_for("direct"), codec_for("envelope")

    async def prepare() -> tuple[dict[str, Payload], TestServer, aiohttp.ClientSession]:
        originals = {"direct": (await direct.encode([PLAINTEXT]))[0],
                     "envelope": (await envelope.encode([PLAINTEXT]))[0]}
        assert await envelope.decode([originals["envelope"]]) == [PLAINTEXT]
        server = TestServer(build_app(CodecServerSettings(auth="none"), envelope, None),
                            host="127.0.0.1")
        await server.start_server()
        return originals, server, aiohttp.ClientSession()

    originals, server, http = loop.run(prepare())
    recorder.clear()
    yield Setup(loop, recorder, envelope, key, victim, originals, server, http)

    async def teardown() -> None:
        await http.close()
        await server.close()
        await direct.state.transit.close()
        await envelope.state.transit.close()
        await recorder_cm.__aexit__(None, None, None)

    loop.run(teardown())
    loop.close()
    try:
        for name in (key, victim):
            assert client.secrets.transit.read_key(name=name)["data"]["latest_version"] == \
                (2 if name == key else 1)
    finally:
        client.adapter.close()


# ---- strategies ------------------------------------------------------------------------

edit = st.one_of(
    st.just(None),  # delete the entry
    hostile_text.map(lambda t: ("text", t)),
    st.binary(max_size=40).map(lambda b: ("bytes", b)),
    st.text(max_size=30).map(lambda t: ("text-raw", t)),
    st.integers(min_value=-3, max_value=12).map(lambda n: ("text-raw", str(n))),
)


@st.composite
def edited_metadata(draw: st.DrawFn) -> tuple[str, dict[str, bytes | None], dict[str, Any]]:
    """(scheme, edits to apply, extra entries): at least one keyward field edited."""
    scheme = draw(st.sampled_from(["direct", "envelope"]))
    fields = draw(st.lists(st.sampled_from(KEYWARD_FIELDS), min_size=1, max_size=4,
                           unique=True))
    edits = {name: draw(edit) for name in fields}
    extra = draw(st.dictionaries(st.text(max_size=12), st.binary(max_size=12), max_size=2))
    return scheme, edits, extra


def apply(setup: Setup, scheme: str, edits: dict[str, Any], extra: dict[str, bytes]
          ) -> tuple[Payload, bool]:
    """The edited payload, and whether any keyward value actually changed."""
    original = setup.originals[scheme]
    payload = Payload()
    payload.CopyFrom(original)
    for name, value in extra.items():
        if name not in KEYWARD_FIELDS:
            payload.metadata[name] = value
    for name, change in edits.items():
        if change is None:
            if name in payload.metadata:
                del payload.metadata[name]
            continue
        kind, value = change
        raw = setup.text(value).encode() if kind == "text" else (
            value.encode() if kind == "text-raw" else value)
        payload.metadata[name] = raw
    altered = any(payload.metadata.get(name) != original.metadata.get(name)
                  for name in KEYWARD_FIELDS)
    return payload, altered


def assert_wire_clean(setup: Setup) -> None:
    outside = setup.recorder.paths_outside("transit", {setup.key})
    setup.recorder.clear()
    assert outside == [], outside


# ---- through the codec -------------------------------------------------------------------

@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=edited_metadata())
def test_codec_never_decodes_altered_metadata_nor_steers_vault(
        setup: Setup, case: tuple[str, dict[str, Any], dict[str, bytes]]) -> None:
    """Edited keyward metadata fails to decode (or passes through still encrypted when
    ``encoding`` no longer says encrypted); Vault sees only calls on the allowed key."""
    scheme, edits, extra = case
    payload, altered = apply(setup, scheme, edits, extra)

    async def decode() -> list[Payload] | PayloadDecryptionError:
        try:
            return await setup.codec.decode([payload])
        except PayloadDecryptionError as exc:
            return exc

    outcome = setup.loop.run(decode())
    if not isinstance(outcome, PayloadDecryptionError):
        (result,) = outcome
        if altered:
            assert result == payload, "altered metadata decoded"
            assert result != PLAINTEXT
        else:
            assert result == PLAINTEXT
    assert_wire_clean(setup)


# ---- through the codec server --------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5),
                                                                      children, max_size=3),
    max_leaves=6)


@st.composite
def request_bodies(draw: st.DrawFn) -> Any:
    """JSON documents shaped like Payloads, with odd types and edited metadata."""
    scheme = draw(st.sampled_from(["direct", "envelope"]))
    choice = draw(st.integers(min_value=0, max_value=3))
    if choice == 0:  # metadata values of any JSON type
        metadata = draw(st.dictionaries(st.sampled_from(KEYWARD_FIELDS) | st.text(max_size=8),
                                        json_values, max_size=7))
        return {"payloads": [{"metadata": metadata, "data": draw(json_values)}]}
    if choice == 1:  # whole documents of any shape
        return draw(st.one_of(json_values, st.fixed_dictionaries(
            {"payloads": st.lists(json_values, max_size=3)})))
    # edited versions of a real encrypted payload, base64 as the protocol carries it
    _, edits, extra = draw(edited_metadata())
    return ("edited", scheme, edits, extra)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=request_bodies())
def test_codec_server_answers_4xx_and_steers_nothing(setup: Setup, body: Any) -> None:
    """Any request body gets 200 or a 4xx JSON error, never a 5xx; altered metadata never
    comes back decrypted; Vault sees only calls on the allowed key."""
    altered = True
    if isinstance(body, tuple):
        _, scheme, edits, extra = body
        payload, altered = apply(setup, scheme, edits, extra)
        body = {"payloads": [{
            "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
            "data": base64.b64encode(payload.data).decode()}]}

    async def post() -> tuple[int, Any]:
        async with setup.http.post(setup.server.make_url("/decode"), data=json.dumps(body),
                                   headers={"Content-Type": "application/json"}) as response:
            return response.status, await response.json(content_type=None)

    status, answer = setup.loop.run(post())
    assert status < 500, answer
    assert status == 200 or "error" in answer
    if status == 200 and altered:
        plain_data = base64.b64encode(PLAINTEXT.data).decode()
        assert all(item.get("data") != plain_data for item in answer.get("payloads", []))
    assert_wire_clean(setup)
