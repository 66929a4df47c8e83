"""Bearer JWT authentication: every way a token can be wrong is a 401, and none is ever logged."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from keyward.codecserver.jwt_auth import JwksCache, JwtVerifier
from keyward_devstack.processes import free_port
from tests.codecserver.conftest import (
    AUDIENCE,
    ISSUER,
    Client,
    JwksServer,
    ServeApp,
    SigningKey,
    b64url,
    bearer,
    handmade_token,
    jwt_settings,
    payloads_document,
    plain_payload,
)

READ_DEFAULT = ["default:read"]
BODY = payloads_document([plain_payload("hello")])


class Clock:
    """A monotonic clock the test moves forward, for the JWKS refresh rate limit."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bad_tokens(key: SigningKey, other: SigningKey) -> dict[str, Callable[[], str]]:
    """Tokens that must all be refused, by what is wrong with them."""
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 300,
              "permissions": ["temporal-system:admin"]}

    def tampered() -> str:
        head, body, signature = key.token(READ_DEFAULT).split(".")
        middle = len(signature) // 2
        flipped = "A" if signature[middle] != "A" else "B"
        return f"{head}.{body}.{signature[:middle]}{flipped}{signature[middle + 1:]}"

    def forged_claims() -> str:
        head, _, signature = key.token(READ_DEFAULT).split(".")
        _, body, _ = handmade_token({"alg": "none"}, claims).split(".")
        return f"{head}.{body}.{signature}"  # someone else's signature on escalated claims

    return {
        "expired": lambda: key.token(READ_DEFAULT, exp=now - 120, iat=now - 600, nbf=now - 600),
        "not-yet-valid": lambda: key.token(READ_DEFAULT, nbf=now + 120),
        "wrong-issuer": lambda: key.token(READ_DEFAULT, iss="https://evil.test"),
        "wrong-audience": lambda: key.token(READ_DEFAULT, aud="someone-else"),
        "no-audience": lambda: key.token(READ_DEFAULT, omit=("aud",)),
        "no-exp": lambda: key.token(READ_DEFAULT, omit=("exp",)),
        "alg-none": lambda: handmade_token({"alg": "none", "typ": "JWT", "kid": key.kid}, claims),
        "alg-None-case": lambda: handmade_token({"alg": "None", "kid": key.kid}, claims),
        "hs256-with-public-key": lambda: handmade_token(
            {"alg": "HS256", "typ": "JWT", "kid": key.kid}, claims,
            hmac_secret=key.public_pem()),
        "unknown-kid": lambda: SigningKey.rsa().token(READ_DEFAULT),
        "key-not-published": lambda: other.token(READ_DEFAULT),
        "kid-of-another-key": lambda: other.token(READ_DEFAULT, headers={"kid": key.kid}),
        "tampered-signature": tampered,
        "forged-claims": forged_claims,
        "missing-sub": lambda: key.token(READ_DEFAULT, omit=("sub",)),
        "numeric-sub": lambda: key.token(READ_DEFAULT, sub=12345),
        "list-sub": lambda: key.token(READ_DEFAULT, sub=["alice"]),
        "kid-not-a-string": lambda: handmade_token({"alg": "RS256", "kid": {"k": 1}}, claims),
        "header-not-an-object": lambda: f"{b64url(b'[1]')}.{b64url(b'{}')}.",
        "garbage": lambda: "not.a.jwt",
        "empty-segments": lambda: "..",
    }


BAD_TOKEN_NAMES = list(bad_tokens(SigningKey.ec(), SigningKey.ec()))


@pytest.fixture
async def jwt_client(serve: ServeApp, jwks_server: JwksServer) -> Client:
    return await serve(jwt_settings(jwks_server.url))


async def assert_401(client: Client, headers: dict[str, str]) -> dict[str, str]:
    response = await client.post("/default/decode", json=BODY, headers=headers)
    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body: dict[str, str] = await response.json()
    assert body["error"]
    return body


async def test_valid_token_is_accepted(jwt_client: Client, signing_key: SigningKey) -> None:
    """A current token from the configured issuer, for the audience, with read on the namespace."""
    response = await jwt_client.post("/default/decode", json=BODY,
                                     headers=bearer(signing_key.token(READ_DEFAULT)))
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("name", BAD_TOKEN_NAMES)
async def test_bad_token_is_401(jwt_client: Client, signing_key: SigningKey,
                                second_key: SigningKey, name: str) -> None:
    """Each kind of invalid token is refused with 401 and a JSON error that does not echo it."""
    token = bad_tokens(signing_key, second_key)[name]()
    body = await assert_401(jwt_client, bearer(token))
    assert token not in json.dumps(body)


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": "Bearer   "},
    {"Authorization": "Basic YWxpY2U6c2VjcmV0"}, {"Authorization": "Token abc"},
], ids=["none", "empty", "bearer-only", "bearer-blank", "basic", "other-scheme"])
async def test_missing_or_non_bearer_authorization_is_401(jwt_client: Client,
                                                          signing_key: SigningKey,
                                                          headers: dict[str, str]) -> None:
    """No Authorization header, or one that is not ``Bearer <token>``, is a 401."""
    await assert_401(jwt_client, headers)


async def test_bearer_scheme_is_case_insensitive(jwt_client: Client,
                                                 signing_key: SigningKey) -> None:
    """``bearer`` and ``BEARER`` work like ``Bearer`` (RFC 6750 schemes are case-insensitive)."""
    token = signing_key.token(READ_DEFAULT)
    for scheme in ("bearer", "BEARER"):
        response = await jwt_client.post("/default/decode", json=BODY,
                                         headers={"Authorization": f"{scheme} {token}"})
        assert response.status == 200


async def test_tokens_never_reach_the_log(captured_logs: io.StringIO, jwt_client: Client,
                                          signing_key: SigningKey,
                                          second_key: SigningKey) -> None:
    """Neither refused nor accepted tokens, nor their signatures, appear in any log line."""
    tokens = [make() for make in bad_tokens(signing_key, second_key).values()]
    for token in tokens:
        await jwt_client.post("/default/decode", json=BODY, headers=bearer(token))
    good = signing_key.token(READ_DEFAULT)
    assert (await jwt_client.post("/default/decode", json=BODY,
                                  headers=bearer(good))).status == 200

    output = captured_logs.getvalue()
    lines = [json.loads(line) for line in output.splitlines()]
    audit = [line for line in lines if line.get("event") == "codec request"]
    assert [line["outcome"] for line in audit] == ["unauthenticated"] * len(tokens) + ["ok"]
    assert audit[-1]["subject"] == "alice@example.test"
    for token in [*tokens, good]:
        signature = token.rsplit(".", 1)[-1]
        assert token not in output
        if len(signature) > 8:
            assert signature not in output


async def test_no_permissions_claim_is_403(jwt_client: Client, signing_key: SigningKey) -> None:
    """A valid token without a permissions claim is authenticated but not authorized."""
    response = await jwt_client.post("/default/decode", json=BODY,
                                     headers=bearer(signing_key.token()))
    assert response.status == 403
    assert "read" in (await response.json())["error"]


async def test_other_namespace_permission_is_403(jwt_client: Client,
                                                 signing_key: SigningKey) -> None:
    """Admin on another namespace grants nothing here."""
    response = await jwt_client.post("/default/decode", json=BODY,
                                     headers=bearer(signing_key.token(["team-a:admin"])))
    assert response.status == 403


async def test_custom_permissions_claim(serve: ServeApp, jwks_server: JwksServer,
                                        signing_key: SigningKey) -> None:
    """``permissions_claim`` names where the roles are; the default claim is then ignored."""
    client = await serve(jwt_settings(jwks_server.url, permissions_claim="temporal_roles"))
    allowed = signing_key.token(temporal_roles=READ_DEFAULT)
    ignored = signing_key.token(READ_DEFAULT)
    assert (await client.post("/decode", json=BODY, headers=bearer(allowed))).status == 200
    assert (await client.post("/decode", json=BODY, headers=bearer(ignored))).status == 403


async def test_static_public_key_verifies(serve: ServeApp, tmp_path: Path,
                                          signing_key: SigningKey,
                                          second_key: SigningKey) -> None:
    """With ``jwt_public_key`` instead of a JWKS URL, tokens signed by that key are accepted."""
    pem = tmp_path / "issuer.pem"
    pem.write_bytes(signing_key.public_pem())
    client = await serve(jwt_settings(None, jwt_public_key=pem))
    good = await client.post("/decode", json=BODY, headers=bearer(signing_key.token(READ_DEFAULT)))
    assert good.status == 200, await good.text()
    other = await client.post("/decode", json=BODY, headers=bearer(second_key.token(READ_DEFAULT)))
    assert other.status == 401
    hs256 = handmade_token({"alg": "HS256"}, {"iss": ISSUER, "aud": AUDIENCE, "sub": "m",
                                              "exp": int(time.time()) + 60,
                                              "permissions": READ_DEFAULT},
                           hmac_secret=signing_key.public_pem())
    assert (await client.post("/decode", json=BODY, headers=bearer(hs256))).status == 401


async def test_jwks_key_rotation_is_picked_up(serve: ServeApp, jwks_server: JwksServer,
                                              signing_key: SigningKey,
                                              second_key: SigningKey) -> None:
    """A token with a kid the cache has not seen triggers one refetch, so a new key works."""
    clock = Clock()
    settings = jwt_settings(jwks_server.url)
    cache = JwksCache(jwks_server.url, min_refresh_seconds=settings.jwks_min_refresh_seconds,
                      max_age_seconds=settings.jwks_cache_seconds, clock=clock)
    client = await serve(settings, JwtVerifier(settings, jwks=cache))
    old = await client.post("/decode", json=BODY, headers=bearer(signing_key.token(READ_DEFAULT)))
    assert old.status == 200
    assert cache.fetches == 1

    jwks_server.publish(second_key)  # the identity provider rotates
    clock.now += settings.jwks_min_refresh_seconds
    new = await client.post("/decode", json=BODY, headers=bearer(second_key.token(READ_DEFAULT)))
    assert new.status == 200, await new.text()
    assert cache.fetches == 2
    again = await client.post("/decode", json=BODY,
                              headers=bearer(second_key.token(READ_DEFAULT)))
    assert again.status == 200
    assert cache.fetches == 2  # known kids are served from the cache
    assert jwks_server.hits == 2


async def test_unknown_kid_burst_refetches_at_most_once(serve: ServeApp, jwks_server: JwksServer,
                                                        signing_key: SigningKey) -> None:
    """A burst of tokens with random kids costs at most one JWKS fetch per refresh interval."""
    clock = Clock()
    settings = jwt_settings(jwks_server.url)
    cache = JwksCache(jwks_server.url, min_refresh_seconds=settings.jwks_min_refresh_seconds,
                      max_age_seconds=settings.jwks_cache_seconds, clock=clock)
    client = await serve(settings, JwtVerifier(settings, jwks=cache))
    assert (await client.post("/decode", json=BODY,
                              headers=bearer(signing_key.token(READ_DEFAULT)))).status == 200
    assert cache.fetches == 1

    async def spray() -> list[int]:
        tokens = [signing_key.token(READ_DEFAULT, headers={"kid": uuid.uuid4().hex})
                  for _ in range(40)]
        responses = await asyncio.gather(*(client.post("/decode", json=BODY, headers=bearer(t))
                                           for t in tokens))
        return [r.status for r in responses]

    assert set(await spray()) == {401}
    assert cache.fetches == 1  # within the interval: no refetch at all

    clock.now += settings.jwks_min_refresh_seconds
    assert set(await spray()) == {401}
    assert cache.fetches == 2  # a new interval: exactly one refetch for the whole burst
    assert jwks_server.hits == 2


async def test_jwks_unreachable_is_401_not_500(serve: ServeApp, signing_key: SigningKey) -> None:
    """If the JWKS endpoint cannot be reached, tokens are refused (401), the server stays up."""
    client = await serve(jwt_settings(f"http://127.0.0.1:{free_port()}/jwks.json"))
    await assert_401(client, bearer(signing_key.token(READ_DEFAULT)))
    assert (await client.get("/health")).status == 200


async def test_token_expired_within_leeway_is_accepted(serve: ServeApp, jwks_server: JwksServer,
                                                       signing_key: SigningKey) -> None:
    """With a 30 s leeway a token that expired 5 s ago still passes (clock skew), 60 s ago not."""
    client = await serve(jwt_settings(jwks_server.url, jwt_leeway_seconds=30))
    now = int(time.time())
    recent = signing_key.token(READ_DEFAULT, iat=now - 300, nbf=now - 300, exp=now - 5)
    stale = signing_key.token(READ_DEFAULT, iat=now - 300, nbf=now - 300, exp=now - 60)
    assert (await client.post("/decode", json=BODY, headers=bearer(recent))).status == 200
    assert (await client.post("/decode", json=BODY, headers=bearer(stale))).status == 401


async def test_audience_list_and_multiple_audiences(serve: ServeApp, jwks_server: JwksServer,
                                                    signing_key: SigningKey) -> None:
    """A token whose ``aud`` list includes one configured audience is accepted."""
    client = await serve(jwt_settings(jwks_server.url, jwt_audience=("other", AUDIENCE)))
    token = signing_key.token(READ_DEFAULT, aud=["unrelated", AUDIENCE])
    assert (await client.post("/decode", json=BODY, headers=bearer(token))).status == 200


async def test_token_algorithm_for_another_key_type_is_401(serve: ServeApp,
                                                           jwks_server: JwksServer,
                                                           signing_key: SigningKey,
                                                           second_key: SigningKey) -> None:
    """An ES256 token naming an RSA JWK that declares no ``alg`` is a 401, not a crash."""
    undeclared = signing_key.jwk()
    del undeclared["alg"]
    jwks_server.keys[:] = [undeclared]
    client = await serve(jwt_settings(jwks_server.url))
    mismatched = second_key.token(READ_DEFAULT, headers={"kid": signing_key.kid})
    await assert_401(client, bearer(mismatched))
    matching = signing_key.token(READ_DEFAULT)
    assert (await client.post("/decode", json=BODY, headers=bearer(matching))).status == 200


async def test_stale_cache_burst_refetches_once(serve: ServeApp, jwks_server: JwksServer,
                                                signing_key: SigningKey) -> None:
    """When the cached JWKS expires under load, concurrent requests share one refetch."""
    clock = Clock()
    settings = jwt_settings(jwks_server.url)
    cache = JwksCache(jwks_server.url, min_refresh_seconds=settings.jwks_min_refresh_seconds,
                      max_age_seconds=settings.jwks_cache_seconds, clock=clock)
    client = await serve(settings, JwtVerifier(settings, jwks=cache))
    token = signing_key.token(READ_DEFAULT)
    assert (await client.post("/decode", json=BODY, headers=bearer(token))).status == 200
    assert cache.fetches == 1

    clock.now += settings.jwks_cache_seconds
    responses = await asyncio.gather(*(client.post("/decode", json=BODY, headers=bearer(token))
                                       for _ in range(20)))
    assert {r.status for r in responses} == {200}
    assert cache.fetches == 2
    assert jwks_server.hits == 2


async def test_malformed_jwks_entries_are_skipped(serve: ServeApp, jwks_server: JwksServer,
                                                  signing_key: SigningKey) -> None:
    """Broken, private or symmetric entries in the JWKS are ignored; the good key still works."""
    jwks_server.keys[:0] = [
        {"kid": "broken-rsa", "kty": "RSA", "n": "x", "e": "AQAB"},
        {"kid": "bad-curve", "kty": "EC", "crv": "P-999", "x": "AA", "y": "AA"},
        {"kid": "no-kty"},
        {"kid": "shared-secret", "kty": "oct", "k": b64url(signing_key.public_pem())},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        "not an object",
    ]
    client = await serve(jwt_settings(jwks_server.url))
    good = await client.post("/decode", json=BODY, headers=bearer(signing_key.token(READ_DEFAULT)))
    assert good.status == 200, await good.text()
    hs256 = handmade_token({"alg": "HS256", "kid": "shared-secret"},
                           {"iss": ISSUER, "aud": AUDIENCE, "sub": "m",
                            "exp": int(time.time()) + 60, "permissions": READ_DEFAULT},
                           hmac_secret=signing_key.public_pem())
    await assert_401(client, bearer(hs256))
