"""Codec-server roles from Temporal Cloud: a Cloud Web UI user's token (email, no
``permissions`` claim) decides through the account's users, read by the real
``CloudOperationsClient`` from the Cloud Ops API emulator (tests/emulators/cloud_ops.py).

Fail closed: the Ops API unreachable is a 503 with no Vault request; a user unknown to the
account is a 403; the audit line names the email and the role source.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from temporalio.api.common.v1 import Payload

from keyward.cloud.errors import CloudOpsUnavailable
from keyward.cloud.models import AccountRole, CloudUser, NamespacePermission
from keyward.cloud.ops import CloudOps
from keyward.codec.converter import build_codec
from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.codecserver.cloud_roles import CloudRoles, role_of
from keyward.codecserver.jwt_auth import JwtVerifier
from keyward.config import CodecServerSettings, CodecSettings, Settings, load_settings
from keyward.config.codec import CLOUD_AUDIENCE, CLOUD_EMAIL_CLAIM, CLOUD_ISSUER, CLOUD_JWKS_URL
from keyward.errors import ConfigError
from keyward_devstack.processes import free_port
from tests.cloud_fixtures import client_ca, cloud_ops, emulator, key_file, ops
from tests.codecserver.conftest import (
    UI_ORIGIN,
    Client,
    JwksServer,
    SigningKey,
    bearer,
    parse_payloads,
    payloads_document,
    plain_payload,
)
from tests.conftest import VaultEndpoint
from tests.emulators.cloud_ops import (
    BILLING,
    DEFAULT_API_KEY,
    DEFAULT_API_VERSION,
    ORDERS,
    SAMPLE_USERS,
    CloudOpsEmulator,
    serve_in_thread,
)
from tests.trust_boundary.vault_recorder import recording_vault

ROOT = Path(__file__).resolve().parent.parent.parent
#: The Cloud Ops emulator fixtures, shared with tests/cloud.
CLOUD_FIXTURES = (client_ca, cloud_ops, emulator, key_file, ops)

# email → (decode, encode) allowed on ORDERS, as the issue's rule says: account owner/admin
# everywhere, else the namespace access (read → decode, write/admin → both).
ORDERS_MATRIX: dict[str, tuple[bool, bool]] = {
    "owner@example.com": (True, True),
    "admin@example.com": (True, True),
    "developer@example.com": (False, False),
    "finance@example.com": (False, False),
    "reader@example.com": (False, False),  # account "read" is not namespace access
    "metrics@example.com": (False, False),
    "ns-admin@example.com": (True, True),
    "ns-write@example.com": (True, True),
    "ns-read@example.com": (True, False),
    "no-access@example.com": (False, False),
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cloud_settings(jwks_url: str, **overrides: Any) -> CodecServerSettings:
    """Cloud roles with Cloud's own issuer and audience (the defaults); the JWKS is ours."""
    values: dict[str, Any] = {"auth": "jwt", "jwks_url": jwks_url,
                              "role_sources": ("temporal-cloud",),
                              "allowed_origins": (UI_ORIGIN,)}
    values.update(overrides)
    return CodecServerSettings(**values)


def cloud_token(key: SigningKey, email: str | None, *,
                permissions: list[str] | None = None) -> str:
    """A token shaped as Temporal Cloud's identity provider issues them to Web UI users
    (with a ``permissions`` claim only where a test adds one)."""
    body: dict[str, Any] = {"iss": CLOUD_ISSUER, "aud": CLOUD_AUDIENCE,
                            "sub": "auth0|65f0c0ffee"}
    if email is not None:
        body[CLOUD_EMAIL_CLAIM] = email
    return key.token(permissions, **body)


@pytest.fixture
async def cloud_codec(vault: VaultEndpoint, codec_key: str) -> AsyncIterator[VaultTransitCodec]:
    """A codec whose Cloud namespaces encrypt with the session key."""
    settings = dataclasses.replace(
        Settings(), vault=vault.settings(),
        codec=CodecSettings(keys={ORDERS: codec_key, BILLING: codec_key}))
    token = vault.token.reveal()
    codec = build_codec(settings, lambda: token, namespace=ORDERS)
    yield codec
    await codec.state.transit.close()


async def start(settings: CodecServerSettings, codec: VaultTransitCodec,
                roles: CloudRoles | None) -> Client:
    client: Client = TestClient(TestServer(build_app(settings, codec, JwtVerifier(settings),
                                                     cloud_roles=roles)))
    await client.start_server()
    return client


async def post(client: Client, operation: str, namespace: str, token: str,
               payloads: list[Payload] | None = None) -> aiohttp.ClientResponse:
    return await client.post(f"/{namespace}/{operation}",
                             json=payloads_document(payloads or [plain_payload("cloud")]),
                             headers=bearer(token))


# ---- the role matrix ---------------------------------------------------------------------------


async def test_the_cloud_role_matrix(ops: CloudOps, emulator: CloudOpsEmulator,
                                     jwks_server: JwksServer, signing_key: SigningKey,
                                     cloud_codec: VaultTransitCodec) -> None:
    """Every sample user decodes and encodes on ORDERS exactly as the table says, and on
    BILLING only where their access names it (ns-write has read there)."""
    assert set(ORDERS_MATRIX) == set(SAMPLE_USERS)
    client = await start(cloud_settings(jwks_server.url), cloud_codec,
                         CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
    try:
        for email, (decode, encode) in ORDERS_MATRIX.items():
            token = cloud_token(signing_key, email)
            for operation, allowed in (("decode", decode), ("encode", encode)):
                response = await post(client, operation, ORDERS, token)
                assert response.status == (200 if allowed else 403), (email, operation,
                                                                       await response.text())
        writer = cloud_token(signing_key, "ns-write@example.com")
        assert (await post(client, "decode", BILLING, writer)).status == 200
        assert (await post(client, "encode", BILLING, writer)).status == 403
        reader = cloud_token(signing_key, "ns-read@example.com")
        assert (await post(client, "decode", BILLING, reader)).status == 403
        # One lookup per user, however many requests: the cache held every second answer.
        assert emulator.calls_to("GetUsers") == len(ORDERS_MATRIX)
    finally:
        await client.close()


async def test_a_user_unknown_to_the_account_is_403_and_a_suspended_one_gets_nothing(
        ops: CloudOps, emulator: CloudOpsEmulator, jwks_server: JwksServer,
        signing_key: SigningKey, cloud_codec: VaultTransitCodec) -> None:
    owner = next(user for user in emulator.users.values()
                 if user.spec.email == "owner@example.com")
    owner.state = 9  # RESOURCE_STATE_SUSPENDED
    client = await start(cloud_settings(jwks_server.url), cloud_codec,
                         CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
    try:
        stranger = await post(client, "decode", ORDERS,
                              cloud_token(signing_key, "stranger@example.com"))
        assert stranger.status == 403
        assert "no user with the token's email" in (await stranger.json())["error"]
        suspended = await post(client, "decode", ORDERS,
                               cloud_token(signing_key, "owner@example.com"))
        assert suspended.status == 403
        assert "needs the read role" in (await suspended.json())["error"]  # known, no role
        no_email = await post(client, "decode", ORDERS, cloud_token(signing_key, None))
        assert no_email.status == 403
        assert CLOUD_EMAIL_CLAIM in (await no_email.json())["error"]
    finally:
        await client.close()


async def test_an_ops_api_outage_is_503_and_never_reaches_vault(
        ops: CloudOps, emulator: CloudOpsEmulator, jwks_server: JwksServer,
        signing_key: SigningKey, vault: VaultEndpoint, codec_key: str,
        captured_logs: io.StringIO) -> None:
    """The role cannot be learned: 503 with its audit line, and no request at all reaches
    Vault (watched on the wire). When Cloud answers again the same request decodes."""
    async with recording_vault(vault.address) as recorder:
        settings = dataclasses.replace(
            Settings(), vault=vault.settings(address=recorder.address),
            codec=CodecSettings(keys={ORDERS: codec_key}))
        token = vault.token.reveal()
        codec = build_codec(settings, lambda: token, namespace=ORDERS)
        try:
            encrypted = await codec.for_namespace(ORDERS).encode([plain_payload("secret")])
            recorder.clear()
            client = await start(cloud_settings(jwks_server.url), codec,
                                 CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
            try:
                user = cloud_token(signing_key, "ns-read@example.com")
                emulator.unavailable_calls = 1000
                refused = await post(client, "decode", ORDERS, user, encrypted)
                assert refused.status == 503, await refused.text()
                assert "try again" in (await refused.json())["error"]
                assert recorder.requests == []
                emulator.unavailable_calls = 0
                decoded = await post(client, "decode", ORDERS, user, encrypted)
                assert decoded.status == 200
                assert parse_payloads(await decoded.json())[0].data == b'"secret"'
                assert recorder.requests  # the control: a decode does reach Vault
            finally:
                await client.close()
        finally:
            await codec.state.transit.close()
    audits = [json.loads(line) for line in captured_logs.getvalue().splitlines()
              if '"codec request"' in line]
    assert [(a["outcome"], a["status"]) for a in audits] == [("role_lookup_failed", 503),
                                                             ("ok", 200)]
    assert {a["email"] for a in audits} == {"ns-read@example.com"}
    assert {a["role_source"] for a in audits} == {"temporal-cloud"}
    assert DEFAULT_API_KEY not in captured_logs.getvalue()


@pytest.mark.parametrize("fault", ["denied", "rate-limited", "wrong key"])
async def test_every_ops_api_refusal_fails_closed(
        ops: CloudOps, emulator: CloudOpsEmulator, jwks_server: JwksServer,
        signing_key: SigningKey, cloud_codec: VaultTransitCodec, fault: str) -> None:
    """keyward's key refused, not allowed to list users, or throttled: 503, not a guess."""
    if fault == "denied":
        emulator.denied_methods = {"GetUsers"}
    elif fault == "rate-limited":
        emulator.rate_limited_calls = 1000
    else:
        emulator.api_keys = {"a-key-keyward-does-not-hold"}
    client = await start(cloud_settings(jwks_server.url), cloud_codec,
                         CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
    try:
        response = await post(client, "decode", ORDERS,
                              cloud_token(signing_key, "owner@example.com"))
        assert response.status == 503, await response.text()
    finally:
        await client.close()


async def test_claims_and_cloud_combined(ops: CloudOps, emulator: CloudOpsEmulator,
                                         jwks_server: JwksServer, signing_key: SigningKey,
                                         cloud_codec: VaultTransitCodec,
                                         captured_logs: io.StringIO) -> None:
    """Both sources: the token's own claim is asked first (no lookup when it grants);
    Cloud is asked when it does not, and either may grant."""
    settings = cloud_settings(jwks_server.url, role_sources=("claim", "temporal-cloud"))
    client = await start(settings, cloud_codec,
                         CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
    try:
        claimed = cloud_token(signing_key, "no-access@example.com",
                              permissions=[f"{ORDERS}:read"])
        assert (await post(client, "decode", ORDERS, claimed)).status == 200
        assert emulator.calls_to("GetUsers") == 0
        assert (await post(client, "encode", ORDERS, claimed)).status == 403
        assert emulator.calls_to("GetUsers") == 1
        writer = cloud_token(signing_key, "ns-write@example.com", permissions=[])
        assert (await post(client, "encode", ORDERS, writer)).status == 200
    finally:
        await client.close()
    sources = [json.loads(line)["role_source"] for line in captured_logs.getvalue().splitlines()
               if '"codec request"' in line]
    assert sources == ["claim", "temporal-cloud", "temporal-cloud"]


async def test_only_the_cloud_source_ignores_a_permissions_claim(
        ops: CloudOps, jwks_server: JwksServer, signing_key: SigningKey,
        cloud_codec: VaultTransitCodec) -> None:
    """With Cloud as the only source, a token's own ``permissions`` claim grants nothing."""
    client = await start(cloud_settings(jwks_server.url), cloud_codec,
                         CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
    try:
        token = cloud_token(signing_key, "no-access@example.com",
                            permissions=["temporal-system:admin"])
        assert (await post(client, "decode", ORDERS, token)).status == 403
    finally:
        await client.close()


async def test_an_api_key_as_codec_auth_is_refused_with_what_to_send(
        ops: CloudOps, jwks_server: JwksServer, cloud_codec: VaultTransitCodec) -> None:
    """``temporal --codec-auth`` with a service account's API key (a token Cloud's identity
    provider did not sign): 401, saying a user access token is needed."""
    client = await start(cloud_settings(jwks_server.url), cloud_codec,
                         CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10))
    try:
        other_signer = SigningKey.ec()
        for token in (DEFAULT_API_KEY, cloud_token(other_signer, "owner@example.com")):
            response = await post(client, "decode", ORDERS, token)
            assert response.status == 401
            assert "API keys are not accepted" in (await response.json())["error"]
    finally:
        await client.close()


# ---- the cache -----------------------------------------------------------------------------------


async def test_roles_are_cached_for_their_ttl_and_no_such_user_for_less(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    clock = Clock()
    roles = CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10, clock=clock)
    assert (await roles.role_for(" NS-Read@Example.com")).known
    clock.now += 59
    await roles.role_for("ns-read@example.com")  # the same user, however the token spells it
    assert emulator.calls_to("GetUsers") == 1
    clock.now += 1  # exactly the TTL: expired
    await roles.role_for("ns-read@example.com")
    assert emulator.calls_to("GetUsers") == 2
    clock.now += 1

    assert not (await roles.role_for("later@example.com")).known
    clock.now += 9
    assert not (await roles.role_for("later@example.com")).known
    assert emulator.calls_to("GetUsers") == 3
    emulator.add_user("later@example.com", account_role="admin")  # invited meanwhile
    clock.now += 2
    assert (await roles.role_for("later@example.com")).known
    assert emulator.calls_to("GetUsers") == 4


async def test_a_failed_lookup_is_not_cached(ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    roles = CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10)
    emulator.unavailable_calls = 1
    with pytest.raises(CloudOpsUnavailable):
        await roles.role_for("owner@example.com")
    assert (await roles.role_for("owner@example.com")).known
    assert roles.lookups == 2


async def test_concurrent_lookups_for_one_user_are_coalesced(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """Forty requests of one user at once: one GetUsers; a caller that goes away while
    waiting does not fail the others."""
    emulator.call_delay = 0.3
    roles = CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10)
    waiters = [asyncio.ensure_future(roles.role_for("admin@example.com")) for _ in range(40)]
    await asyncio.sleep(0.05)
    waiters[0].cancel()
    results = await asyncio.gather(*waiters[1:])
    assert all(result.known for result in results)
    assert emulator.calls_to("GetUsers") == 1
    assert roles.lookups == 1


async def test_a_failed_lookup_nobody_waits_for_leaves_no_unretrieved_error(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """The lookup runs as its own task; when its only caller went away and it then fails,
    the error is retrieved (no 'Task exception was never retrieved' at collection)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        emulator.call_delay = 0.2
        emulator.unavailable_calls = 5
        roles = CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=10)
        waiter = asyncio.ensure_future(roles.role_for("owner@example.com"))
        await asyncio.sleep(0.05)
        waiter.cancel()
        await asyncio.sleep(0.4)  # the lookup fails meanwhile
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert roles.lookups == 1
    assert reported == []


def test_namespace_accesses_are_matched_in_lower_case() -> None:
    """Requests are looked up lower-cased (as Temporal's server does); the accesses too."""
    user = CloudUser(id="u", email="u@example.com", account_role=AccountRole.DEVELOPER,
                     namespace_accesses={"Orders.A1B2C": NamespacePermission.READ},
                     state="active", resource_version="1")
    role = role_of(user)
    assert role.permissions.allows("decode", "orders.a1b2c")
    assert role.permissions.allows("decode", "ORDERS.a1b2c")
    assert not role.permissions.allows("encode", "orders.a1b2c")


async def test_the_cache_is_bounded(ops: CloudOps) -> None:
    roles = CloudRoles(ops, ttl_seconds=60, unknown_ttl_seconds=60, max_users=3)
    for index in range(6):
        await roles.role_for(f"stranger-{index}@example.com")
    for index in (3, 4, 5):  # the three most recent are kept
        await roles.role_for(f"stranger-{index}@example.com")
    assert roles.lookups == 6
    await roles.role_for("stranger-0@example.com")  # pushed out long ago
    assert roles.lookups == 7


# ---- settings ---------------------------------------------------------------------------------


def test_cloud_defaults_and_the_settings_names(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """With the Cloud source, JWKS, issuer and audience default to Temporal Cloud's; the
    sources are named in the environment as elsewhere; a wrong one is one clear line."""
    settings = CodecServerSettings(role_sources=("temporal-cloud",))
    assert settings.token_jwks_url == CLOUD_JWKS_URL
    assert settings.token_issuer == CLOUD_ISSUER
    assert settings.token_audience == (CLOUD_AUDIENCE,)
    settings.require_serving_config()
    claims_only = CodecServerSettings()
    assert (claims_only.token_jwks_url, claims_only.token_issuer) == (None, None)
    with pytest.raises(ConfigError):
        claims_only.require_serving_config()
    own = CodecServerSettings(role_sources=("temporal-cloud",), jwt_issuer="https://me/",
                              jwt_audience=("mine",))
    assert (own.token_issuer, own.token_audience) == ("https://me/", ("mine",))

    for name in [n for n in os.environ if n.startswith(("KEYWARD_", "VAULT_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("KEYWARD_CODEC_SERVER__ROLE_SOURCES", "claim, temporal-cloud")
    monkeypatch.setenv("KEYWARD_CODEC_SERVER__CLOUD_ROLE_CACHE_SECONDS", "30")
    empty = tmp_path / "keyward.toml"
    empty.write_text("")
    loaded = load_settings(empty)
    assert loaded.codec_server.role_sources == ("claim", "temporal-cloud")
    assert loaded.codec_server.cloud_role_cache_seconds == 30
    monkeypatch.setenv("KEYWARD_CODEC_SERVER__ROLE_SOURCES", "cloud")
    with pytest.raises(ConfigError) as caught:
        load_settings(empty)
    assert str(caught.value).startswith("invalid setting codec_server.role_sources: each role "
                                        "source must be one of claim, temporal-cloud")


# ---- end to end: python codec_server.py ---------------------------------------------------------


async def test_a_cloud_token_decodes_through_the_codec_server_process(
        vault: VaultEndpoint, codec_key: str, cloud_codec: VaultTransitCodec,
        signing_key: SigningKey, tmp_path: Path, emulator: CloudOpsEmulator) -> None:
    """``python codec_server.py`` with the Cloud source, the Ops API at the emulator: the
    Web UI's request for an ORDERS reader decodes; an account stranger gets 403."""
    encrypted = await cloud_codec.for_namespace(ORDERS).encode([plain_payload("from cloud")])
    key_file = tmp_path / "cloud-api-key"
    key_file.write_text(DEFAULT_API_KEY)
    public_key = tmp_path / "idp.pem"
    public_key.write_bytes(signing_key.public_pem())
    port = free_port()
    with serve_in_thread(emulator) as cloud:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "VAULT_"))}
        env.update({
            "VAULT_ADDR": vault.address, "VAULT_TOKEN": vault.token.reveal(),
            "KEYWARD_CODEC__KEYS": f"{ORDERS}={codec_key}",
            "KEYWARD_CODEC_SERVER__PORT": str(port),
            "KEYWARD_CODEC_SERVER__DEFAULT_NAMESPACE": ORDERS,
            "KEYWARD_CODEC_SERVER__JWT_PUBLIC_KEY": str(public_key),
            "KEYWARD_CODEC_SERVER__ROLE_SOURCES": "temporal-cloud",
            "KEYWARD_CLOUD__API_KEY_FILE": str(key_file),
            "KEYWARD_CLOUD__HOST": cloud.host, "KEYWARD_CLOUD__PORT": str(cloud.port),
            "KEYWARD_CLOUD__TLS": "false", "KEYWARD_CLOUD__API_VERSION": DEFAULT_API_VERSION,
            "KEYWARD_LOGGING__FORMAT": "json"})
        log = tmp_path / "codec-server.log"
        process = await asyncio.to_thread(_spawn, env, log)
        try:
            url = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                await _wait_ready(session, url, process, log)
                body = payloads_document(encrypted)
                reader = bearer(cloud_token(signing_key, "ns-read@example.com"))
                async with session.post(f"{url}/decode", json=body, headers=reader) as answer:
                    assert answer.status == 200, await answer.text()
                    assert parse_payloads(await answer.json())[0].data == b'"from cloud"'
                stranger = bearer(cloud_token(signing_key, "stranger@example.com"))
                async with session.post(f"{url}/decode", json=body,
                                        headers=stranger) as refused:
                    assert refused.status == 403
        finally:
            process.terminate()
            process.wait(10)
    output = log.read_text()
    assert '"role_source": "temporal-cloud"' in output
    assert '"email": "ns-read@example.com"' in output
    assert DEFAULT_API_KEY not in output


def _spawn(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, str(ROOT / "codec_server.py")], env=env,
                                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


async def _wait_ready(session: aiohttp.ClientSession, url: str,
                      process: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(150):
        if process.poll() is not None:
            tail = await asyncio.to_thread(log.read_text)
            raise AssertionError(f"codec_server.py exited: {tail[-2000:]}")
        try:
            async with session.get(f"{url}/health") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    tail = await asyncio.to_thread(log.read_text)
    raise AssertionError(f"codec_server.py did not start: {tail[-2000:]}")
