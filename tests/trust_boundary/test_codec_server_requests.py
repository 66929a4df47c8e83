"""Every codec-server request is untrusted: what the HTTP layer refuses, and how it fails.

The codec behind the app is a stand-in here (it echoes, or raises what it is told to):
the rules proved are the HTTP boundary's, not the codec's. The server itself is real
aiohttp on a real local port.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from temporalio.api.common.v1 import Payload

from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.codecserver.jwt_auth import JwtVerifier
from keyward.config import CodecServerSettings
from tests.codecserver.conftest import (
    AUDIENCE,
    ISSUER,
    UI_ORIGIN,
    SigningKey,
    bearer,
    payloads_document,
    plain_payload,
)
from tests.support import json_logs

Client = TestClient[web.Request, web.Application]
BODY = payloads_document([plain_payload("hello")])
JSON = {"Content-Type": "application/json"}
#: What the stand-in codec raises when asked to fail; it must never reach the caller.
SECRET_DETAIL = "decrypted-card-number-4111111111111111"


class StandInCodec:
    """Echoes payloads, or raises ``failure`` (an unexpected, non-keyward exception)."""

    def __init__(self, failure: BaseException | None = None) -> None:
        self.failure = failure
        self.calls = 0

    def for_namespace(self, _namespace: str) -> StandInCodec:
        return self

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.decode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.calls += 1
        if self.failure is not None:
            raise self.failure
        return list(payloads)


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    started: list[Client] = []
    yield started
    for client in started:
        await client.close()


async def serve(clients: list[Client], settings: CodecServerSettings, codec: StandInCodec,
                verifier: JwtVerifier | None = None) -> Client:
    app = build_app(settings, cast(VaultTransitCodec, codec), verifier)
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    clients.append(client)
    return client


def no_auth(**overrides: Any) -> CodecServerSettings:
    values: dict[str, Any] = {"auth": "none", "allowed_origins": (UI_ORIGIN,)}
    values.update(overrides)
    return CodecServerSettings(**values)


@pytest.fixture
def audit() -> Iterator[io.StringIO]:
    """keyward's production logging (JSON lines), captured."""
    with json_logs() as stream:
        yield stream


def audit_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    return [line for line in lines if line.get("event") == "codec request"]


# ---- unexpected failures ---------------------------------------------------------------------


@pytest.mark.parametrize("failure", [RuntimeError(SECRET_DETAIL), KeyError(SECRET_DETAIL),
                                     TypeError(SECRET_DETAIL)])
async def test_unexpected_exception_is_a_json_500_with_audit_line(
        clients: list[Client], audit: io.StringIO, failure: Exception) -> None:
    """Any unexpected exception while handling a codec request is a JSON 500
    ``{"error": "internal error"}`` without exception text or traceback, and still writes
    its audit line (outcome ``internal_error``) and its metrics."""
    client = await serve(clients, no_auth(), StandInCodec(failure))
    response = await client.post("/default/decode", json=BODY)
    assert response.status == 500
    assert response.content_type == "application/json"
    text = await response.text()
    assert json.loads(text) == {"error": "internal error"}
    assert SECRET_DETAIL not in text
    assert "Traceback" not in text
    [line] = audit_lines(audit)
    assert line["outcome"] == "internal_error"
    assert line["status"] == 500
    assert line["operation"] == "decode"
    metrics = await (await client.get("/metrics")).text()
    assert 'keyward_codec_requests_total{operation="decode",outcome="internal_error"} 1.0' \
        in metrics


async def test_unexpected_exception_keeps_cors_headers_for_the_ui(clients: list[Client]) -> None:
    """The 500 carries the CORS headers, so the Web UI can read that decoding failed."""
    client = await serve(clients, no_auth(), StandInCodec(RuntimeError("boom")))
    response = await client.post("/default/decode", json=BODY, headers={"Origin": UI_ORIGIN})
    assert response.status == 500
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN


# ---- the no-auth (dev) server: cross-site POSTs and DNS rebinding ------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8",
                                          "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
async def test_no_auth_server_refuses_a_body_that_is_not_json(
        clients: list[Client], audit: io.StringIO, content_type: str | None) -> None:
    """Without auth, a POST whose Content-Type is not application/json is 415 and never
    reaches the codec: a web page can send a cross-site ``text/plain`` POST without a
    preflight, but not an ``application/json`` one."""
    codec = StandInCodec()
    client = await serve(clients, no_auth(), codec)
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post("/default/decode", data=json.dumps(BODY).encode(),
                                 headers=headers, skip_auto_headers=["Content-Type"])
    assert response.status == 415
    assert "application/json" in (await response.json())["error"]
    assert codec.calls == 0
    assert audit_lines(audit)[0]["outcome"] == "unsupported_media_type"


async def test_json_with_a_charset_is_accepted(clients: list[Client]) -> None:
    """``application/json; charset=utf-8`` is JSON: parameters do not matter."""
    client = await serve(clients, no_auth(), StandInCodec())
    response = await client.post("/default/decode", data=json.dumps(BODY).encode(),
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8234", "127.0.0.1.evil.example",
                                  "localhost.evil.example:80", "10.0.0.5:8234", "[::2]:8234",
                                  "", "0.0.0.0:8234"])
async def test_no_auth_server_refuses_a_host_that_is_not_loopback(
        clients: list[Client], audit: io.StringIO, host: str) -> None:
    """Without auth, a request whose Host is not a loopback name is 403 and never reaches the
    codec: a DNS-rebinding page reaches 127.0.0.1 under its own host name."""
    codec = StandInCodec()
    client = await serve(clients, no_auth(), codec)
    response = await client.post("/default/decode", json=BODY, headers={"Host": host})
    assert response.status == 403
    assert "Host" in (await response.json())["error"]
    assert codec.calls == 0
    assert audit_lines(audit)[0]["outcome"] == "forbidden_host"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8234", "localhost", "LOCALHOST:8234",
                                  "[::1]", "[::1]:8234"])
async def test_no_auth_server_accepts_loopback_hosts(clients: list[Client], host: str) -> None:
    """127.0.0.1, localhost and [::1], with or without a port, are loopback."""
    client = await serve(clients, no_auth(), StandInCodec())
    response = await client.post("/default/decode", json=BODY, headers={"Host": host})
    assert response.status == 200


async def test_no_auth_server_refuses_a_preflight_under_a_foreign_host(
        clients: list[Client]) -> None:
    """The Host rule covers the preflight too: a rebinding page gets nothing at all."""
    client = await serve(clients, no_auth(), StandInCodec())
    response = await client.options("/default/decode", headers={
        "Host": "evil.example", "Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST"})
    assert response.status == 403


@pytest.mark.parametrize("origin", ["http://evil.test", "null", "http://127.0.0.1:9999",
                                    UI_ORIGIN + ".evil.test"])
async def test_no_auth_server_refuses_an_origin_that_is_not_allowed(
        clients: list[Client], audit: io.StringIO, origin: str) -> None:
    """Without auth, a request that sends an Origin not in allowed_origins is 403 and never
    reaches the codec (a browser may still deliver a response-less request cross-site)."""
    codec = StandInCodec()
    client = await serve(clients, no_auth(), codec)
    response = await client.post("/default/decode", json=BODY, headers={"Origin": origin})
    assert response.status == 403
    assert "Origin" in (await response.json())["error"]
    assert codec.calls == 0
    assert audit_lines(audit)[0]["outcome"] == "forbidden_origin"


async def test_no_auth_server_serves_the_allowed_origin_and_no_origin(
        clients: list[Client]) -> None:
    """The Web UI's origin, and a client that sends no Origin at all (the CLI), are served."""
    client = await serve(clients, no_auth(), StandInCodec())
    assert (await client.post("/default/decode", json=BODY,
                              headers={"Origin": UI_ORIGIN})).status == 200
    assert (await client.post("/default/decode", json=BODY)).status == 200


# ---- with JWT auth ----------------------------------------------------------------------------


async def test_jwt_server_also_requires_json(clients: list[Client], tmp_path: Path) -> None:
    """With auth = "jwt" the body must be application/json too: the Web UI and the
    temporal CLI (Go SDK remote codec) always send it, so nothing real is refused."""
    key = SigningKey.ec()
    public_key = tmp_path / "jwt.pem"
    public_key.write_bytes(key.public_pem())
    settings = CodecServerSettings(auth="jwt", jwt_issuer=ISSUER, jwt_audience=(AUDIENCE,),
                                   jwt_public_key=public_key)
    client = await serve(clients, settings, StandInCodec(), JwtVerifier(settings))
    token = bearer(key.token(["default:read"]))
    refused = await client.post("/default/decode", data=json.dumps(BODY),
                                headers={**token, "Content-Type": "text/plain"})
    assert refused.status == 415
    served = await client.post("/default/decode", json=BODY, headers=token)
    assert served.status == 200
