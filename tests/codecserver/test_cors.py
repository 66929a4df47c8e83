"""CORS as the Temporal Web UI needs it: exact origin, credentials, four headers, no wildcard."""

from __future__ import annotations

import pytest

from tests.codecserver.conftest import (
    UI_ORIGIN,
    JwksServer,
    ServeApp,
    jwt_settings,
    open_settings,
    payloads_document,
    plain_payload,
)

PREFLIGHT = {"Origin": UI_ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type,x-namespace,authorization"}


def header_list(value: str) -> set[str]:
    return {part.strip().lower() for part in value.split(",")}


@pytest.mark.parametrize("path", ["/decode", "/default/decode", "/default/encode"])
async def test_preflight_from_allowed_origin(serve: ServeApp, path: str) -> None:
    """A preflight from the UI's origin is 204 echoing that origin with credentials allowed."""
    client = await serve(open_settings())
    response = await client.options(path, headers=PREFLIGHT)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert header_list(response.headers["Access-Control-Allow-Headers"]) >= {
        "content-type", "x-namespace", "authorization", "authorization-extras"}
    assert header_list(response.headers["Access-Control-Allow-Methods"]) == {"post", "options"}
    assert "origin" in header_list(response.headers["Vary"])
    assert "*" not in response.headers["Access-Control-Allow-Headers"]


async def test_preflight_needs_no_token_when_auth_is_on(serve: ServeApp,
                                                        jwks_server: JwksServer) -> None:
    """Browsers send preflights without credentials, so they succeed without a token."""
    client = await serve(jwt_settings(jwks_server.url))
    response = await client.options("/default/decode", headers=PREFLIGHT)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    # ...while the request itself still needs one.
    actual = await client.post("/default/decode", json={"payloads": []},
                               headers={"Origin": UI_ORIGIN})
    assert actual.status == 401
    assert actual.headers["Access-Control-Allow-Origin"] == UI_ORIGIN  # so the UI can read why


@pytest.mark.parametrize("origin", ["http://evil.test", "http://ui.keyward.test:8081",
                                    "https://ui.keyward.test:8080", "null",
                                    "http://ui.keyward.test:8080.evil.test"])
async def test_disallowed_origin_gets_no_cors_headers(serve: ServeApp, origin: str) -> None:
    """An origin not listed exactly gets no Access-Control-* header on preflight or request."""
    client = await serve(open_settings())
    preflight = await client.options("/default/decode", headers={**PREFLIGHT, "Origin": origin})
    actual = await client.post("/default/decode",
                               json=payloads_document([plain_payload("x")]),
                               headers={"Origin": origin})
    # Without auth a foreign Origin is refused outright (tests/trust_boundary); either way
    # the response allows no cross-origin read.
    assert actual.status == 403
    for response in (preflight, actual):
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


async def test_actual_request_from_allowed_origin_echoes_it(serve: ServeApp) -> None:
    """A POST from the UI's origin carries the echoed origin and credentials flag, never ``*``."""
    client = await serve(open_settings())
    response = await client.post("/default/decode",
                                 json=payloads_document([plain_payload("x")]),
                                 headers={"Origin": UI_ORIGIN, "X-Namespace": "default"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "origin" in header_list(response.headers["Vary"])


async def test_never_a_wildcard_origin(serve: ServeApp) -> None:
    """Whatever is asked, the allowed origin is never ``*`` (credentials forbid it)."""
    client = await serve(open_settings())
    for origin in (UI_ORIGIN, "*", "http://other.test"):
        for response in (await client.options("/decode", headers={**PREFLIGHT, "Origin": origin}),
                         await client.post("/decode", json={"payloads": []},
                                           headers={"Origin": origin})):
            assert response.headers.get("Access-Control-Allow-Origin") in (None, UI_ORIGIN)
