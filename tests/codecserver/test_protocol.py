"""Temporal's remote codec protocol, as the Web UI and the CLI speak it, over real HTTP."""

from __future__ import annotations

import base64
import json

import pytest
from aiohttp import ClientResponse
from temporalio.api.common.v1 import Payload

from tests.codecserver.conftest import (
    Client,
    ServeApp,
    open_settings,
    parse_payloads,
    payloads_document,
    plain_payload,
)

JSON = {"Content-Type": "application/json"}


async def encode(client: Client, path: str, payloads: list[Payload]) -> list[Payload]:
    response = await client.post(path, json=payloads_document(payloads))
    assert response.status == 200, await response.text()
    return parse_payloads(await response.json())


async def assert_json_error(response: ClientResponse, status: int) -> None:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert isinstance(body["error"], str)
    assert body["error"]


async def test_encode_then_decode_round_trips(serve: ServeApp) -> None:
    """Payloads encoded by the server are ciphertext, and decode to exactly the originals."""
    client = await serve(open_settings())
    original = [plain_payload("card 4111-1111-1111-1111"), plain_payload("second")]

    encoded = await encode(client, "/default/encode", original)
    assert [p.metadata["encoding"] for p in encoded] == [b"binary/encrypted"] * 2
    assert all(b"4111" not in p.SerializeToString() for p in encoded)

    response = await client.post("/default/decode", json=payloads_document(encoded))
    assert response.status == 200
    assert response.content_type == "application/json"
    assert parse_payloads(await response.json()) == original


@pytest.mark.parametrize(("path", "headers", "default_namespace"), [
    ("/team-a/decode", {}, "default"),
    ("/decode", {"X-Namespace": "team-a"}, "default"),
    ("/decode", {}, "team-a"),
    ("/team-a/decode", {"X-Namespace": "team-b"}, "default"),  # the path wins over the header
], ids=["path", "x-namespace", "default-namespace", "path-over-header"])
async def test_namespace_comes_from_path_then_header_then_default(
        serve: ServeApp, path: str, headers: dict[str, str], default_namespace: str) -> None:
    """Payloads encrypted for team-a decode when the request names team-a by any of the ways."""
    client = await serve(open_settings(default_namespace=default_namespace))
    original = [plain_payload("for team-a")]
    encoded = await encode(client, "/team-a/encode", original)

    response = await client.post(path, json=payloads_document(encoded), headers=headers)
    assert response.status == 200, await response.text()
    assert parse_payloads(await response.json()) == original

    wrong = await client.post("/team-b/decode", json=payloads_document(encoded))
    assert wrong.status == 400  # so the namespace above really was team-a


async def test_query_string_is_ignored(serve: ServeApp) -> None:
    """The Web UI's ``/decode?preserveStorageRefs=true`` is served like ``/decode``."""
    client = await serve(open_settings())
    original = [plain_payload("query")]
    encoded = await encode(client, "/encode?preserveStorageRefs=true", original)
    response = await client.post("/decode?preserveStorageRefs=true",
                                 json=payloads_document(encoded))
    assert response.status == 200
    assert parse_payloads(await response.json()) == original


async def test_path_prefix_is_honoured(serve: ServeApp) -> None:
    """With ``path_prefix = "codec/v1"`` the endpoints live under it, and only there."""
    client = await serve(open_settings(path_prefix="/codec/v1/"))
    original = [plain_payload("prefixed")]
    encoded = await encode(client, "/codec/v1/team-a/encode", original)
    response = await client.post("/codec/v1/team-a/decode", json=payloads_document(encoded))
    assert response.status == 200
    assert parse_payloads(await response.json()) == original
    assert (await client.post("/team-a/decode", json=payloads_document(encoded))).status == 404
    assert (await client.post("/codec/team-a/decode", json=payloads_document(encoded))).status \
        == 404


@pytest.mark.parametrize("path", ["/", "/download", "/default/download", "/a/b/decode",
                                  "/default/decode/extra", "/decoder", "/codec"])
async def test_unknown_path_is_404(serve: ServeApp, path: str) -> None:
    """A path whose last segment is not encode/decode (or is too deep) is 404 with a JSON error."""
    client = await serve(open_settings())
    await assert_json_error(await client.post(path, json={"payloads": []}), 404)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_with_allow(serve: ServeApp, method: str) -> None:
    """Anything but POST (or the OPTIONS preflight) on a codec path is 405, naming the allowed."""
    client = await serve(open_settings())
    response = await client.request(method, "/default/decode")
    await assert_json_error(response, 405)
    assert response.headers["Allow"] == "POST, OPTIONS"


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe\x00", b"[" * 5000,
                                  b'{"payloads": [' + b"1e999" + b"]}"],
                         ids=["broken", "empty", "not-utf8", "deep", "number"])
async def test_malformed_json_is_400(serve: ServeApp, body: bytes) -> None:
    """A body that is not JSON at all is a 400 with a JSON error, never a 500."""
    client = await serve(open_settings())
    await assert_json_error(await client.post("/default/decode", data=body, headers=JSON), 400)


@pytest.mark.parametrize("document", [
    [1, 2], None, "payloads", {"payloads": "x"}, {"payloads": [1]},
    {"unknown": []}, {"payloads": [{"metadata": ["encoding"]}]},
    {"payloads": [{"metadata": {"encoding": 5}}]},
], ids=["list", "null", "string", "payloads-string", "payload-number", "unknown-field",
        "metadata-list", "metadata-number"])
async def test_wrong_shape_is_400(serve: ServeApp, document: object) -> None:
    """JSON that is not a ``Payloads`` message is a 400 with a JSON error."""
    client = await serve(open_settings())
    response = await client.post("/default/decode", data=json.dumps(document), headers=JSON)
    await assert_json_error(response, 400)


@pytest.mark.parametrize("document", [
    {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg=="}, "data": "!!!not base64!!!"}]},
    {"payloads": [{"metadata": {"encoding": "%%%"}, "data": "eyJhIjoxfQ=="}]},
    {"payloads": [{"data": "eyJh IjoxfQ=="}]},
], ids=["data", "metadata", "space"])
async def test_bad_base64_is_400(serve: ServeApp, document: object) -> None:
    """Bytes that are not base64 are refused (400), not silently decoded as something else."""
    client = await serve(open_settings())
    for operation in ("encode", "decode"):
        response = await client.post(f"/default/{operation}", data=json.dumps(document),
                                     headers=JSON)
        await assert_json_error(response, 400)


async def test_url_safe_and_unpadded_base64_are_accepted(serve: ServeApp) -> None:
    """proto3 JSON allows URL-safe and unpadded base64; such bytes decode like standard ones."""
    client = await serve(open_settings())
    data = b'{"x":"\xfb\xff"}'
    document = {"payloads": [{"metadata": {"encoding": "anNvbi9wbGFpbg"},
                              "data": base64.urlsafe_b64encode(data).decode().rstrip("=")}]}
    response = await client.post("/default/decode", json=document)
    assert response.status == 200, await response.text()
    assert parse_payloads(await response.json()) == [
        Payload(metadata={"encoding": b"json/plain"}, data=data)]


async def test_tampered_payload_is_400_not_500(serve: ServeApp) -> None:
    """A ciphertext with one flipped bit is a codec failure: 400 with a JSON error, no plaintext."""
    client = await serve(open_settings())
    (encoded,) = await encode(client, "/default/encode", [plain_payload("secret 4111")])
    tampered = Payload()
    tampered.CopyFrom(encoded)
    tampered.data = encoded.data[:-1] + bytes([encoded.data[-1] ^ 1])

    response = await client.post("/default/decode", json=payloads_document([tampered]))
    await assert_json_error(response, 400)
    assert "4111" not in await response.text()


async def test_unencrypted_payload_passes_through_decode(serve: ServeApp) -> None:
    """A payload keyward never encrypted decodes unchanged (old history stays readable)."""
    client = await serve(open_settings())
    plain = [plain_payload("written before encryption was on"),
             Payload(metadata={"encoding": b"binary/null"})]
    response = await client.post("/default/decode", json=payloads_document(plain))
    assert response.status == 200
    assert parse_payloads(await response.json()) == plain


async def test_body_over_limit_is_413(serve: ServeApp) -> None:
    """A body larger than ``max_body_bytes`` is refused with 413 and a JSON error."""
    client = await serve(open_settings(max_body_bytes=1024))
    big = [plain_payload("x" * 2000)]
    await assert_json_error(await client.post("/default/encode", json=payloads_document(big)), 413)
    small = await client.post("/default/decode", json=payloads_document([plain_payload("x")]))
    assert small.status == 200


async def test_health_is_200(serve: ServeApp) -> None:
    """``GET /health`` answers 200 without auth, for load balancers and probes."""
    client = await serve(open_settings())
    response = await client.get("/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_metrics_count_requests_by_operation_and_outcome(serve: ServeApp) -> None:
    """``/metrics`` exposes request counters labelled by operation and outcome."""
    client = await serve(open_settings())
    encoded = await encode(client, "/default/encode", [plain_payload("m")])
    for _ in range(2):
        assert (await client.post("/default/decode",
                                  json=payloads_document(encoded))).status == 200
    assert (await client.post("/default/decode", data=b"{", headers=JSON)).status == 400

    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'keyward_codec_requests_total{operation="encode",outcome="ok"} 1.0' in text
    assert 'keyward_codec_requests_total{operation="decode",outcome="ok"} 2.0' in text
    assert 'keyward_codec_requests_total{operation="decode",outcome="bad_request"} 1.0' in text
    assert 'keyward_codec_request_seconds_count{operation="decode",outcome="ok"} 2.0' in text
