"""Trust boundary: the JWKS URL the operator configured is the only place keys come from.

A redirect from the JWKS endpoint could move key retrieval to plain http (or anywhere an
attacker who controls that endpoint's answer chooses), around the settings check that
refuses a remote ``http://`` ``jwks_url``. Redirects are therefore not followed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from keyward.codecserver.jwt_auth import AuthError, JwtVerifier
from keyward_devstack.processes import free_port
from tests.codecserver.conftest import JwksServer, SigningKey, jwt_settings


@pytest.fixture
async def redirecting(jwks_server: JwksServer) -> AsyncIterator[str]:
    """An endpoint that answers every request with a redirect to the real JWKS."""

    async def moved(_request: web.Request) -> web.Response:
        raise web.HTTPFound(jwks_server.url)

    app = web.Application()
    app.router.add_get("/jwks.json", moved)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/jwks.json"
    await runner.cleanup()


async def test_jwks_redirect_is_not_followed(redirecting: str, jwks_server: JwksServer,
                                             signing_key: SigningKey) -> None:
    """Keys behind a redirect are never loaded: a token they would verify is refused."""
    verifier = JwtVerifier(jwt_settings(redirecting))
    with pytest.raises(AuthError):
        await verifier.verify(f"Bearer {signing_key.token(['default:read'])}")
    assert jwks_server.hits == 0


async def test_jwks_without_redirect_still_verifies(jwks_server: JwksServer,
                                                    signing_key: SigningKey) -> None:
    """The configured URL itself serving the keys keeps working."""
    verifier = JwtVerifier(jwt_settings(jwks_server.url))
    identity = await verifier.verify(f"Bearer {signing_key.token(['default:read'])}")
    assert identity.subject == "alice@example.test"
