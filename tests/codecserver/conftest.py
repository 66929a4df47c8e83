"""Real pieces for codec server tests: a Vault-backed codec, signing keys, a JWKS server.

Nothing of keyward's is replaced: the codec talks to the session Vault, tokens are
signed with keys generated here, and the JWKS document is served over HTTP by a
small aiohttp server on a free port.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from keyward.codec.converter import build_codec
from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.codecserver.jwt_auth import JwtVerifier
from keyward.config import CodecServerSettings, CodecSettings, Settings
from keyward_devstack.processes import free_port
from tests.conftest import VaultEndpoint
from tests.support import json_logs

ISSUER = "https://issuer.keyward.test"
AUDIENCE = "keyward-codec"
UI_ORIGIN = "http://ui.keyward.test:8080"
#: Every namespace the codec server tests use; all encrypt with one session Transit key.
NAMESPACES = ("default", "team-a", "team-b", "orders")

Client = TestClient[web.Request, web.Application]


# ---- the codec ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def codec_key(vault: VaultEndpoint) -> str:
    """One Transit key for the codec server tests (namespace binding is in the AAD, not the key)."""
    name = f"codecserver-{uuid.uuid4().hex[:12]}"
    client = vault.client()
    try:
        client.secrets.transit.create_key(name=name)
    finally:
        client.adapter.close()
    return name


def codec_settings(vault: VaultEndpoint, key: str) -> Settings:
    return dataclasses.replace(Settings(), vault=vault.settings(),
                               codec=CodecSettings(keys=dict.fromkeys(NAMESPACES, key)))


@pytest.fixture(scope="session")
async def server_codec(vault: VaultEndpoint, codec_key: str) -> AsyncIterator[VaultTransitCodec]:
    """The codec a codec server would build from the worker's settings."""
    token = vault.token.reveal()
    codec = build_codec(codec_settings(vault, codec_key), lambda: token, namespace="default")
    yield codec
    await codec.state.transit.close()


def payloads_document(payloads: list[Payload]) -> dict[str, Any]:
    """The proto3 JSON body the protocol carries."""
    return json_format.MessageToDict(Payloads(payloads=payloads))


def parse_payloads(document: Any) -> list[Payload]:
    return list(json_format.ParseDict(document, Payloads()).payloads)


def plain_payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


# ---- serving the app in-process --------------------------------------------------------------

ServeApp = Callable[..., Awaitable[Client]]


@pytest.fixture
async def serve(server_codec: VaultTransitCodec) -> AsyncIterator[ServeApp]:
    """Start ``build_app`` on a real local port and return an HTTP client for it.

    With ``auth = "jwt"`` and no verifier given, the verifier is built from the settings.
    """
    clients: list[Client] = []

    async def start(settings: CodecServerSettings, verifier: JwtVerifier | None = None) -> Client:
        if verifier is None and settings.auth == "jwt":
            verifier = JwtVerifier(settings)
        client: Client = TestClient(TestServer(build_app(settings, server_codec, verifier)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


def open_settings(**overrides: Any) -> CodecServerSettings:
    """Auth off: for protocol behaviour that has nothing to do with who is asking."""
    values: dict[str, Any] = {"auth": "none", "allowed_origins": (UI_ORIGIN,)}
    values.update(overrides)
    return CodecServerSettings(**values)


def jwt_settings(jwks_url: str | None, **overrides: Any) -> CodecServerSettings:
    values: dict[str, Any] = {"auth": "jwt", "jwks_url": jwks_url, "jwt_issuer": ISSUER,
                              "jwt_audience": (AUDIENCE,), "allowed_origins": (UI_ORIGIN,)}
    values.update(overrides)
    return CodecServerSettings(**values)


# ---- signing keys and tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    alg: str

    @classmethod
    def rsa(cls) -> SigningKey:
        return cls(f"rsa-{uuid.uuid4().hex[:8]}",
                   rsa.generate_private_key(public_exponent=65537, key_size=2048), "RS256")

    @classmethod
    def ec(cls) -> SigningKey:
        return cls(f"ec-{uuid.uuid4().hex[:8]}", ec.generate_private_key(ec.SECP256R1()), "ES256")

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.get_algorithm_by_name(self.alg)
        document: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        document.update(kid=self.kid, alg=self.alg, use="sig")
        return document

    def token(self, permissions: list[Any] | None = None, *, headers: dict[str, Any] | None = None,
              omit: tuple[str, ...] = (), **claims: Any) -> str:
        """A token as an identity provider would issue it; ``claims`` override the defaults."""
        now = int(time.time())
        body: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice@example.test",
                                "iat": now, "nbf": now, "exp": now + 300}
        if permissions is not None:
            body["permissions"] = permissions
        body.update(claims)
        for name in omit:
            body.pop(name, None)
        return jwt.encode(body, self.private, algorithm=self.alg,
                          headers={"kid": self.kid, **(headers or {})})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade_token(header: dict[str, Any], claims: dict[str, Any], *,
                   hmac_secret: bytes | None = None) -> str:
    """A token no library would sign for us: ``alg: none``, or HMAC with an odd secret."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    signature = b""
    if hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey.rsa()


@pytest.fixture(scope="session")
def second_key() -> SigningKey:
    return SigningKey.ec()


# ---- the JWKS server ---------------------------------------------------------------------------


@dataclass
class JwksServer:
    """An identity provider's JWKS endpoint; tests add keys to rotate."""

    url: str = ""
    keys: list[Any] = field(default_factory=list)
    hits: int = 0

    def publish(self, key: SigningKey) -> None:
        self.keys.append(key.jwk())


@pytest.fixture
async def jwks_server(signing_key: SigningKey) -> AsyncIterator[JwksServer]:
    """A real HTTP JWKS endpoint on a free port, publishing ``signing_key``."""
    state = JwksServer()
    state.publish(signing_key)

    async def document(_request: web.Request) -> web.Response:
        state.hits += 1
        return web.json_response({"keys": state.keys})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", document)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    state.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    yield state
    await runner.cleanup()


# ---- logs ----------------------------------------------------------------------------------------


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """keyward's production logging (JSON lines), written to a string for inspection."""
    with json_logs() as stream:
        yield stream
