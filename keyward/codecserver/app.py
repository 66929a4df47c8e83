"""The codec server's aiohttp application: ``build_app(settings, codec, verifier)``.

Protocol (Temporal's remote codec): ``POST …/encode`` and ``POST …/decode``,
chosen by the last path segment, query string ignored; proto3-JSON
``Payloads`` in and out. The namespace comes from an optional
``/{namespace}/`` segment (after ``path_prefix``), else ``X-Namespace``, else
the configured default — and it is the namespace the caller must be authorized
for *and* the one the codec binds decryption to, so a caller allowed in A can
never decrypt B's payloads by naming A.

Status codes: 400 bad JSON/shape/base64 or codec failure (as the protocol
says), 401 no/invalid token, 403 role too low, 404 unknown path, 405 wrong
method, 413 body too large, 415 a body that is not ``application/json``, 500
anything unexpected (``{"error": "internal error"}``: no exception text, which
may quote a payload). Every codec request gets one audit line, the 500 too.

Every request is untrusted. With auth off (``auth = "none"``, development only)
the caller cannot be identified, so the server refuses what only a web page
would send: a ``Host`` that is not a loopback name (DNS rebinding: a page
reaches 127.0.0.1 under its own name) and an ``Origin`` that is not in
``allowed_origins`` (403). ``application/json`` is required in every mode: a
page can POST ``text/plain`` cross-site without a CORS preflight, never JSON,
and every real client (Web UI, the temporal CLI through the Go SDK's remote
codec) sends ``application/json``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from temporalio.api.common.v1 import Payloads

from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.cloud_roles import CloudRoles
from keyward.codecserver.jwt_auth import AuthError, Identity, JwtVerifier
from keyward.codecserver.payloads_json import PayloadsJsonError, dump_payloads, parse_payloads
from keyward.codecserver.permissions import Operation
from keyward.config import CodecServerSettings, is_loopback_host
from keyward.errors import KeywardError
from keyward.log import get_logger

ALLOWED_HEADERS: Final = "Content-Type, X-Namespace, Authorization, Authorization-Extras"
ALLOWED_METHODS: Final = "POST, OPTIONS"
PREFLIGHT_MAX_AGE: Final = "600"
OPERATIONS: Final = ("encode", "decode")
JSON_MEDIA_TYPE: Final = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class CodecServerMetrics:
    """Request counts and latency by operation and outcome, on a registry of the app's own."""

    registry: CollectorRegistry
    requests: Counter
    latency: Histogram

    @classmethod
    def create(cls) -> CodecServerMetrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter("keyward_codec_requests", "Codec server requests",
                             ["operation", "outcome"], registry=registry),
            latency=Histogram("keyward_codec_request_seconds", "Codec server request latency",
                              ["operation", "outcome"], registry=registry,
                              buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                       0.5, 1.0, 2.5)),
        )


@dataclass
class Audit:
    """What the request's one audit line says about the caller, filled in as it is learned."""

    subject: str = "-"
    #: The Temporal Cloud user's email, when roles were looked up there.
    email: str | None = None
    #: Which role source granted or refused: "claim", "temporal-cloud", "none" (auth off).
    role_source: str | None = None


class RequestFailed(Exception):
    """An expected failure with its HTTP status, a public message and an audit outcome."""

    def __init__(self, status: int, message: str, outcome: str) -> None:
        self.status = status
        self.message = message
        self.outcome = outcome
        super().__init__(message)


class CodecServer:
    """Request handling state: settings, codec, verifier, metrics."""

    def __init__(self, settings: CodecServerSettings, codec: VaultTransitCodec,
                 verifier: JwtVerifier | None, metrics: CodecServerMetrics,
                 cloud_roles: CloudRoles | None = None) -> None:
        self.settings = settings
        self.codec = codec
        self.verifier = verifier
        self.cloud_roles = cloud_roles
        self.metrics = metrics
        self.allowed_origins = frozenset(settings.allowed_origins)
        self.prefix = [part for part in settings.path_prefix.split("/") if part]
        self.log = get_logger("keyward.codecserver.audit")

    # ---- routing ----------------------------------------------------------------------

    def route(self, request: web.Request) -> tuple[Operation, str | None] | None:
        """(operation, namespace from the path) for a codec path, else None."""
        parts = [part for part in request.path.split("/") if part]
        if parts[: len(self.prefix)] != self.prefix:
            return None
        parts = parts[len(self.prefix):]
        if not parts or parts[-1] not in OPERATIONS or len(parts) > 2:
            return None
        operation: Operation = "encode" if parts[-1] == "encode" else "decode"
        return operation, parts[0] if len(parts) == 2 else None

    def namespace_for(self, request: web.Request, from_path: str | None) -> str:
        return (from_path or request.headers.get("X-Namespace", "").strip()
                or self.settings.default_namespace)

    # ---- CORS -------------------------------------------------------------------------

    def cors_headers(self, request: web.Request) -> dict[str, str]:
        origin = request.headers.get("Origin")
        headers = {"Vary": "Origin"}
        if origin is not None and origin in self.allowed_origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    def preflight(self, request: web.Request) -> web.Response:
        headers = self.cors_headers(request)
        if "Access-Control-Allow-Origin" in headers:
            headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
            headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
            headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return web.Response(status=204, headers=headers)

    # ---- the codec request ------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path in ("/health", "/healthz") and request.method == "GET":
            return web.json_response({"status": "ok"})
        if request.path == "/metrics" and request.method == "GET":
            return web.Response(body=generate_latest(self.metrics.registry),
                                headers={"Content-Type": CONTENT_TYPE_LATEST})
        routed = self.route(request)
        if routed is None:
            return self._error(request, 404, "not found")
        if request.method == "OPTIONS":
            if self.verifier is None and not _loopback_host(request):
                return self._error(request, 403, _FOREIGN_HOST)
            return self.preflight(request)
        if request.method != "POST":
            response = self._error(request, 405, "method not allowed")
            response.headers["Allow"] = ALLOWED_METHODS
            return response
        operation, path_namespace = routed
        namespace = self.namespace_for(request, path_namespace)
        started = time.perf_counter()
        audit = Audit()
        count = 0
        try:
            self._check_request(request)
            await self._authorize(request, operation, namespace, audit)
            payloads = await self._read_payloads(request)
            count = len(payloads.payloads)
            result = await self._run_codec(operation, namespace, payloads)
            response = web.Response(body=dump_payloads(result.payloads),
                                    content_type="application/json",
                                    headers=self.cors_headers(request))
            outcome = "ok"
        except RequestFailed as failure:
            response = self._error(request, failure.status, failure.message)
            outcome = failure.outcome
        except Exception:  # HTTP boundary: every failure is a JSON 500 with its audit line
            # The traceback goes to the operator's log; the caller learns nothing of it
            # (exception text can quote payload data).
            self.log.exception("codec request failed unexpectedly", operation=operation,
                               namespace=namespace)
            response = self._error(request, 500, "internal error")
            outcome = "internal_error"
        elapsed = time.perf_counter() - started
        self.metrics.requests.labels(operation, outcome).inc()
        self.metrics.latency.labels(operation, outcome).observe(elapsed)
        self.log.info("codec request", subject=audit.subject, namespace=namespace,
                      operation=operation, payloads=count, outcome=outcome,
                      **({"email": audit.email} if audit.email is not None else {}),
                      **({"role_source": audit.role_source} if audit.role_source else {}),
                      status=response.status, duration_ms=round(elapsed * 1000, 2),
                      remote=request.remote)
        return response

    def _check_request(self, request: web.Request) -> None:
        """What must hold before a request is authorized at all (see the module docstring)."""
        if self.verifier is None:
            if not _loopback_host(request):
                raise RequestFailed(403, _FOREIGN_HOST, "forbidden_host")
            origin = request.headers.get("Origin")
            if origin is not None and origin not in self.allowed_origins:
                raise RequestFailed(403, "Origin is not in codec_server.allowed_origins",
                                    "forbidden_origin")
        # aiohttp gives the media type without parameters, lower-cased; none at all reads
        # as application/octet-stream.
        if request.content_type != JSON_MEDIA_TYPE:
            raise RequestFailed(415, f"Content-Type must be {JSON_MEDIA_TYPE}",
                                "unsupported_media_type")

    async def _authorize(self, request: web.Request, operation: Operation,
                         namespace: str, audit: Audit) -> None:
        """Refuse (401/403/503) unless a role source grants ``operation`` on ``namespace``.

        The token's own ``permissions`` claim is asked first (it costs nothing); Temporal
        Cloud only when the claim does not grant. A Cloud lookup that fails refuses with 503:
        never a decode on a guess.
        """
        if self.verifier is None:
            audit.subject, audit.role_source = "anonymous (auth disabled)", "none"
            return
        try:
            identity = await self.verifier.verify(request.headers.get("Authorization"))
        except AuthError as exc:
            raise RequestFailed(401, self._explain(exc), "unauthenticated") from None
        audit.subject, audit.email = identity.subject, identity.email
        if self.settings.claim_roles:
            audit.role_source = "claim"
            if identity.permissions.allows(operation, namespace):
                return
        if self.cloud_roles is not None:
            audit.role_source = "temporal-cloud"
            if await self._cloud_allows(identity, operation, namespace):
                return
        needed = "read" if operation == "decode" else "write"
        raise RequestFailed(403, f"{operation} needs the {needed} role (or higher) on "
                            f"namespace {namespace!r}", "forbidden")

    async def _cloud_allows(self, identity: Identity, operation: Operation,
                            namespace: str) -> bool:
        assert self.cloud_roles is not None
        if identity.email is None:
            raise RequestFailed(403, f"the token has no {self.settings.cloud_email_claim!r} "
                                "claim naming a Temporal Cloud user", "forbidden")
        try:
            role = await self.cloud_roles.role_for(identity.email)
        except KeywardError as exc:  # the Cloud Ops API did not answer, or refused keyward
            self.log.warning("cannot look up a Temporal Cloud role; refusing", error=str(exc),
                             email=identity.email)
            raise RequestFailed(503, "cannot look up your Temporal Cloud role right now; "
                                "try again shortly", "role_lookup_failed") from None
        if not role.known:
            raise RequestFailed(403, "this Temporal Cloud account has no user with the "
                                "token's email", "forbidden")
        return role.permissions.allows(operation, namespace)

    def _explain(self, error: AuthError) -> str:
        """A refused token, with what to send instead when roles come from Temporal Cloud
        (an API key given to ``--codec-auth`` is not a user's access token)."""
        if self.cloud_roles is None or not error.foreign:
            return error.reason
        return (f"{error.reason}: the codec server accepts Temporal Cloud user access tokens "
                "(the Web UI's, with 'Pass the user access token' on); API keys are not "
                "accepted")

    async def _read_payloads(self, request: web.Request) -> Payloads:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestFailed(413, f"request body exceeds {self.settings.max_body_bytes} bytes",
                                "too_large") from None
        try:
            return parse_payloads(body)
        except PayloadsJsonError as exc:
            raise RequestFailed(400, f"body is not proto3 JSON Payloads: {_short(exc)}",
                                "bad_request") from None

    async def _run_codec(self, operation: Operation, namespace: str,
                         payloads: Payloads) -> Payloads:
        codec = self.codec.for_namespace(namespace)
        try:
            if operation == "encode":
                out = await codec.encode(payloads.payloads)
            else:
                out = await codec.decode(payloads.payloads)
        except KeywardError as exc:
            raise RequestFailed(400, str(exc), "codec_error") from None
        return Payloads(payloads=out)

    def _error(self, request: web.Request, status: int, message: str) -> web.Response:
        headers = self.cors_headers(request)
        if status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="keyward-codec"'
        return web.json_response({"error": message}, status=status, headers=headers)


CODEC_SERVER: Final = web.AppKey("codec_server", CodecServer)


_FOREIGN_HOST: Final = ("Host is not a loopback name (127.0.0.1, localhost, [::1]); with auth "
                        "disabled the codec server answers only local callers")


def _loopback_host(request: web.Request) -> bool:
    """The Host header names loopback: what a local client sends, never a rebound name."""
    host = request.headers.get("Host", "")
    try:
        return is_loopback_host(host, with_port=True)
    except ValueError:
        return False


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__


def build_app(settings: CodecServerSettings, codec: VaultTransitCodec,
              verifier: JwtVerifier | None, *,
              metrics: CodecServerMetrics | None = None,
              cloud_roles: CloudRoles | None = None) -> web.Application:
    """The codec server application. ``verifier=None`` means auth is off (dev only);
    ``cloud_roles`` is required when ``role_sources`` names Temporal Cloud."""
    if verifier is None and settings.auth != "none":
        raise ValueError("a JWT verifier is required unless codec_server.auth = 'none'")
    if settings.auth == "jwt" and settings.cloud_roles and cloud_roles is None:
        raise ValueError("role_sources names temporal-cloud: pass cloud_roles")
    server = CodecServer(settings, codec, verifier, metrics or CodecServerMetrics.create(),
                         cloud_roles)
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[CODEC_SERVER] = server
    app.router.add_route("*", "/{tail:.*}", server.handle)
    return app
