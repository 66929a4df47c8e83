"""The JWT verifier's rules one by one, without a codec server in front: which header,
which keys of a JWKS document, which algorithm, which key, and when the JWKS is fetched."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keyward.codecserver.jwt_auth import (
    AuthError,
    JwksCache,
    JwtVerifier,
    _bearer_token,
    _parse_jwks,
)
from keyward_devstack.processes import free_port
from tests.codecserver.conftest import ISSUER, JwksServer, SigningKey, jwt_settings

READ = ["default:read"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def private_jwk(key: SigningKey) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(key.alg)
    document: dict[str, Any] = json.loads(algorithm.to_jwk(key.private))
    document.update(kid=key.kid, use="sig")
    return document


def cache_for(server: JwksServer, clock: Clock, *, min_refresh: float = 30.0,
              max_age: float = 600.0) -> JwksCache:
    return JwksCache(server.url, min_refresh_seconds=min_refresh, max_age_seconds=max_age,
                     clock=clock)


@pytest.fixture
async def status_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A JWKS endpoint that answers with the status at the head of the list (200: no keys)."""
    statuses = [500]

    async def document(_request: web.Request) -> web.Response:
        return web.json_response({"keys": []}, status=statuses[0])

    app = web.Application()
    app.router.add_get("/jwks", document)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/jwks", statuses
    await runner.cleanup()


# ---- the Authorization header -------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer   ", "Basic abc", "Token abc",
                                    "abc"])
def test_only_a_bearer_scheme_with_a_token_is_read(header: str | None) -> None:
    """An Authorization header must be ``Bearer <token>``: no header, another scheme, or
    the scheme alone is refused."""
    with pytest.raises(AuthError):
        _bearer_token(header)


def test_the_bearer_token_is_returned_trimmed() -> None:
    """The token after ``Bearer`` (any case) is returned without surrounding blanks."""
    assert _bearer_token("Bearer abc.def.ghi") == "abc.def.ghi"
    assert _bearer_token("  bearer   abc.def.ghi  ") == "abc.def.ghi"
    assert _bearer_token("BEARER x") == "x"


# ---- which JWKS entries verify ---------------------------------------------------------------


def test_jwks_keeps_public_signing_keys_with_their_declared_algorithm() -> None:
    """A public signing key is kept under its kid, with the ``alg`` it declares (or none)."""
    rsa_key, ec_key = SigningKey.rsa(), SigningKey.ec()
    undeclared = ec_key.jwk()
    del undeclared["alg"], undeclared["use"]
    keys = _parse_jwks({"keys": [rsa_key.jwk(), undeclared]})
    assert set(keys) == {rsa_key.kid, ec_key.kid}
    assert keys[rsa_key.kid].algorithm == "RS256"
    assert keys[ec_key.kid].algorithm is None


@pytest.mark.parametrize("bad", ["private", "oct", "enc", "no-kid", "kid-not-str", "not-a-dict",
                                 "broken"])
def test_jwks_drops_keys_that_must_never_verify(bad: str) -> None:
    """Private keys (``d``), symmetric secrets (``oct``), encryption keys, entries without a
    string kid and unreadable key material are skipped — and the entries after them are
    still read."""
    good = SigningKey.ec()
    entry: Any = {
        "private": private_jwk(SigningKey.rsa()),
        "oct": {"kid": "shared", "kty": "oct", "k": "c2VjcmV0c2VjcmV0c2VjcmV0"},
        "enc": {**SigningKey.rsa().jwk(), "use": "enc"},
        "no-kid": {k: v for k, v in SigningKey.rsa().jwk().items() if k != "kid"},
        "kid-not-str": {**SigningKey.rsa().jwk(), "kid": 5},
        "not-a-dict": "text",
        "broken": {"kid": "broken", "kty": "RSA", "n": "x", "e": "AQAB"},
    }[bad]
    keys = _parse_jwks({"keys": [entry, good.jwk()]})
    assert list(keys) == [good.kid]


@pytest.mark.parametrize("document", [[], "keys", {"keys": {}}, {"no": []}])
def test_a_jwks_document_without_a_keys_list_is_refused(document: Any) -> None:
    """A document that is not an object with a ``keys`` list is an error (cached keys stay)."""
    with pytest.raises(ValueError, match="no 'keys' list"):
        _parse_jwks(document)


# ---- algorithms and keys ---------------------------------------------------------------------


def rs512_token(key: SigningKey, **headers: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "keyward-codec", "sub": "alice", "exp": now + 300,
              "permissions": READ}
    return jwt.encode(claims, key.private, algorithm="RS512", headers={"kid": key.kid, **headers})


async def test_an_algorithm_outside_the_allowlist_is_refused(jwks_server: JwksServer,
                                                             signing_key: SigningKey) -> None:
    """A token whose ``alg`` is not configured is refused even when its signature is good
    under a key that declares no algorithm."""
    undeclared = signing_key.jwk()
    del undeclared["alg"]
    jwks_server.keys[:] = [undeclared]
    verifier = JwtVerifier(jwt_settings(jwks_server.url))
    with pytest.raises(AuthError, match="'RS512' is not accepted"):
        await verifier.verify(f"Bearer {rs512_token(signing_key)}")
    allowing = JwtVerifier(jwt_settings(jwks_server.url, jwt_algorithms=("RS256", "RS512")))
    assert (await allowing.verify(f"Bearer {rs512_token(signing_key)}")).subject == "alice"


async def test_a_key_that_declares_an_algorithm_verifies_only_that_one(
        jwks_server: JwksServer, signing_key: SigningKey) -> None:
    """A JWK with ``alg: RS256`` does not verify an RS512 token, even if RS512 is allowed."""
    verifier = JwtVerifier(jwt_settings(jwks_server.url, jwt_algorithms=("RS256", "RS512")))
    with pytest.raises(AuthError, match="does not match its key"):
        await verifier.verify(f"Bearer {rs512_token(signing_key)}")
    identity = await verifier.verify(f"Bearer {signing_key.token(READ)}")
    assert identity.subject == "alice@example.test"
    assert identity.permissions.allows("decode", "default")


async def test_a_token_without_kid_is_refused_when_keys_come_from_jwks(
        jwks_server: JwksServer, signing_key: SigningKey) -> None:
    """With only a JWKS, a token must name its key: no ``kid`` (or an empty one) is a 401."""
    verifier = JwtVerifier(jwt_settings(jwks_server.url))
    for kid in (None, ""):
        token = jwt.encode({"iss": ISSUER, "aud": "keyward-codec", "sub": "a",
                            "exp": int(time.time()) + 60}, signing_key.private,
                           algorithm="RS256", headers={"kid": kid} if kid is not None else None)
        with pytest.raises(AuthError, match="no 'kid' header"):
            await verifier.verify(f"Bearer {token}")


async def test_a_static_key_verifies_tokens_without_kid(tmp_path: Path,
                                                        signing_key: SigningKey) -> None:
    """With a static public key, a token with no kid (or an empty one) is verified by it."""
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(signing_key.public_pem())
    verifier = JwtVerifier(jwt_settings(None, jwt_public_key=pem))
    for headers in ({"kid": ""}, {"kid": "whatever"}):
        token = signing_key.token(READ, headers=headers)
        assert (await verifier.verify(f"Bearer {token}")).subject == "alice@example.test"


async def test_a_static_key_may_be_a_certificate(tmp_path: Path) -> None:
    """``jwt_public_key`` may hold the issuer's certificate; its public key verifies."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "issuer")])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(private.public_key()).serial_number(1)
                   .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
                   .not_valid_after(datetime(2100, 1, 1, tzinfo=UTC))
                   .sign(private, hashes.SHA256()))
    pem = tmp_path / "issuer.crt"
    pem.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key = SigningKey("any", private, "RS256")
    verifier = JwtVerifier(jwt_settings(None, jwt_public_key=pem))
    assert (await verifier.verify(f"Bearer {key.token(READ)}")).subject == "alice@example.test"


@pytest.mark.parametrize("sub", [None, 5, ["alice"]])
async def test_sub_must_be_a_string(jwks_server: JwksServer, signing_key: SigningKey,
                                    sub: Any) -> None:
    """A token whose ``sub`` is not a string is refused (Temporal's claim mapper needs one)."""
    verifier = JwtVerifier(jwt_settings(jwks_server.url))
    token = signing_key.token(READ, **({"omit": ("sub",)} if sub is None else {"sub": sub}))
    with pytest.raises(AuthError):
        await verifier.verify(f"Bearer {token}")


# ---- when the JWKS is fetched ----------------------------------------------------------------


async def test_the_cache_refetches_exactly_when_stale(jwks_server: JwksServer,
                                                      signing_key: SigningKey) -> None:
    """A known kid is served from the cache until ``max_age`` has passed, then refetched."""
    clock = Clock()
    cache = cache_for(jwks_server, clock, max_age=600)
    await cache.key_for(signing_key.kid)
    clock.now += 599.5
    await cache.key_for(signing_key.kid)
    assert cache.fetches == 1
    clock.now += 0.5
    await cache.key_for(signing_key.kid)
    assert cache.fetches == 2


async def test_an_unknown_kid_refetches_once_per_interval(jwks_server: JwksServer,
                                                          signing_key: SigningKey) -> None:
    """An unknown kid refetches only when ``min_refresh`` has passed since the last fetch."""
    clock = Clock()
    cache = cache_for(jwks_server, clock, min_refresh=30)
    await cache.key_for(signing_key.kid)
    clock.now += 29.5
    with pytest.raises(AuthError, match="unknown key"):
        await cache.key_for("nope")
    assert cache.fetches == 1
    clock.now += 0.5
    with pytest.raises(AuthError, match="unknown key"):
        await cache.key_for("nope")
    assert cache.fetches == 2


async def test_a_failed_fetch_keeps_the_keys_and_is_rate_limited(
        status_server: tuple[str, list[int]]) -> None:
    """A JWKS answer other than 200 keeps the cached keys; the next try waits ``min_refresh``."""
    url, statuses = status_server
    clock = Clock()
    cache = JwksCache(url, min_refresh_seconds=30, max_age_seconds=600, clock=clock)
    with pytest.raises(AuthError):
        await cache.key_for("k")
    assert cache.fetches == 0
    statuses[0] = 200
    clock.now += 10
    with pytest.raises(AuthError):
        await cache.key_for("k")
    assert cache.fetches == 0  # the failure counted as a fetch for the rate limit
    clock.now += 20
    with pytest.raises(AuthError):
        await cache.key_for("k")
    assert cache.fetches == 1


def test_auth_errors_are_401_with_their_reason() -> None:
    """An AuthError is an HTTP 401 and carries the public reason it was raised with."""
    error = AuthError("token expired")
    assert (error.status, error.reason, str(error)) == (401, "token expired", "token expired")


async def test_a_verified_identity_cannot_be_altered(jwks_server: JwksServer,
                                                     signing_key: SigningKey) -> None:
    """The identity a token proved, and the key that verified it, are frozen: nothing later
    in the request can widen who the caller is."""
    cache = JwksCache(jwks_server.url, min_refresh_seconds=30, max_age_seconds=600)
    verifier = JwtVerifier(jwt_settings(jwks_server.url), jwks=cache)
    assert verifier.jwks is cache
    identity = await verifier.verify(f"Bearer {signing_key.token(READ)}")
    with pytest.raises(dataclasses.FrozenInstanceError):
        identity.subject = "root"  # type: ignore[misc]
    key = await cache.key_for(signing_key.kid)
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.algorithm = None  # type: ignore[misc]


async def test_a_hanging_jwks_endpoint_is_given_up_on() -> None:
    """A JWKS fetch gives up after ``timeout_seconds`` (5 s unless set): a hanging identity
    provider costs a bounded wait and a 401, and the failure is rate-limited like any other."""
    assert inspect.signature(JwksCache).parameters["timeout_seconds"].default == 5.0

    async def document(_request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({"keys": []})

    app = web.Application()
    app.router.add_get("/jwks", document)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", min_refresh_seconds=30,
                          max_age_seconds=600, timeout_seconds=0.2)
        started = time.monotonic()
        with pytest.raises(AuthError, match="unknown key"):
            await cache.key_for("k")
        assert time.monotonic() - started < 0.9
        assert cache.fetches == 0
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(("sources", "value", "email", "granted"), [
    (("temporal-cloud",), "ns-read@example.com", "ns-read@example.com", False),
    (("temporal-cloud",), "   ", None, False),  # blank: no user named
    (("temporal-cloud",), 42, None, False),
    (("claim",), "ns-read@example.com", None, True),  # not read without the Cloud source
    (("claim", "temporal-cloud"), "ns-read@example.com", "ns-read@example.com", True),
])
async def test_the_role_sources_decide_what_the_identity_carries(
        jwks_server: JwksServer, signing_key: SigningKey, sources: tuple[str, ...],
        value: Any, email: str | None, granted: bool) -> None:
    """The email claim is read only for the Temporal Cloud source, and only a non-blank
    string names a user; the ``permissions`` claim grants only with the claim source."""
    verifier = JwtVerifier(jwt_settings(jwks_server.url, role_sources=sources))
    token = signing_key.token(READ, **{"https://saas-api.tmprl.cloud/user/email": value})
    identity = await verifier.verify(f"Bearer {token}")
    assert identity.email == email
    assert identity.permissions.allows("decode", "default") is granted


async def test_a_token_of_another_issuer_is_marked_foreign_and_a_bad_one_is_not(
        jwks_server: JwksServer, signing_key: SigningKey) -> None:
    """``AuthError.foreign``: the token is not one of the configured identity provider's at
    all (not a JWT, no kid, a key it does not publish, another issuer or audience) — what
    an API key given as a bearer token looks like. An expired or tampered token of the
    provider is not foreign."""
    verifier = JwtVerifier(jwt_settings(jwks_server.url))
    stranger = SigningKey.rsa()
    foreign = {
        "not a JWT": "an-api-key-not-a-jwt",
        "no kid": jwt.encode({"iss": ISSUER, "aud": "keyward-codec", "sub": "a",
                              "exp": int(time.time()) + 60}, signing_key.private,
                             algorithm="RS256"),
        "unknown key": stranger.token(READ),
        "other issuer": signing_key.token(READ, iss="https://elsewhere.test"),
        "other audience": signing_key.token(READ, aud="someone-else"),
    }
    for case, token in foreign.items():
        with pytest.raises(AuthError) as caught:
            await verifier.verify(f"Bearer {token}")
        assert caught.value.foreign, case
    expired = signing_key.token(READ, exp=int(time.time()) - 3600)
    tampered = signing_key.token(READ)[:-4] + "AAAA"
    for token in (expired, tampered):
        with pytest.raises(AuthError) as caught:
            await verifier.verify(f"Bearer {token}")
        assert not caught.value.foreign
