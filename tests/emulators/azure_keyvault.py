"""An in-memory Azure Key Vault (certificates and their backing secrets) over HTTPS.

The real ``azure-keyvault-certificates`` and ``azure-keyvault-secrets`` clients talk
to it unchanged, so tests exercise the SDK's own request paths, JSON bodies, the
bearer-challenge handshake and its error mapping. Shapes follow the Key Vault REST
API (the examples in Azure/azure-rest-api-specs and Microsoft's "Monitor and manage
certificate creation" page):

* every request needs ``api-version``; one without ``Authorization: Bearer`` gets
  401 with ``WWW-Authenticate: Bearer authorization="https://login.microsoftonline.com/
  <tenant>", resource="https://vault.azure.net"`` (the SDK's challenge discovery);
* ``POST /certificates/{name}/create``: issuer ``Self`` → a pending operation that
  completes (a truly self-signed certificate) after :attr:`KeyVaultEmulator.self_signed_polls`
  polls; issuer ``Unknown`` (or none) → a pending operation holding a CSR (DER, base64)
  until ``POST /certificates/{name}/pending/merge`` brings an ``x5c`` chain whose leaf
  matches the pending key. Create or import while an operation is ``inProgress`` is 409;
* ``GET/DELETE /certificates/{name}/pending``, ``GET /certificates/{name}[/{version}]``,
  ``GET/PATCH /certificates/{name}/policy`` (lifetime actions validated and stored),
  ``POST /certificates/{name}/import`` (PEM or base64 PKCS#12, per ``secret_props``);
* ``GET /secrets/{name}[/{version}]``: the certificate's backing secret, PEM or PKCS#12
  as the policy's content type says. As in Azure, a non-exportable key is simply left
  out of the value; :attr:`KeyVaultEmulator.deny_secret_get` answers 403 instead, as a
  vault does for an identity without the secrets/get permission.
* ``PATCH /certificates/{name}/{version}``: a version's ``attributes.enabled`` and tags; a
  disabled version's secret and key answer 403, as Azure's do;
* ``POST /keys/{name}/{version}/sign``: the certificate's backing key signs a digest
  (``ES256`` → the JWS form r‖s, ``RS256`` → PKCS#1 v1.5), which is how a CA whose key is
  not exportable signs; a policy with ``reuse_key`` makes the new version's key the
  current version's (what Key Vault does on renewal with reuse_key).

The policy subject is parsed as Key Vault parses it (Microsoft's documented form, not RFC
4514): ``CN = x, OU = y, O = z, L = l, S = st, C = DE``, RDNs separated by commas (spaces
allowed round them and the ``=``), a value holding a comma in double quotes, ``S`` or
``ST`` for the state; an unquoted comma inside a value is "not a valid X500 name". The
written order is most specific first, so the DER subject is its reverse (C first), as .NET
encodes such a string.

State lives in memory. The server runs on its own event-loop thread because the
Azure SDK is synchronous and blocks the calling thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import copy
import datetime as dt
import hashlib
import ipaddress
import re
import ssl
import threading
import uuid
import weakref
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID, ObjectIdentifier

from tests.tls_material import ServerTLS

DEFAULT_TENANT: Final = "72f988bf-86f1-41af-91ab-2d7cd011db47"
PEM_CONTENT_TYPE: Final = "application/x-pem-file"
PKCS12_CONTENT_TYPE: Final = "application/x-pkcs12"
_NAME: Final = re.compile(r"[0-9A-Za-z-]{1,127}")
_UPN_OID: Final = ObjectIdentifier("1.3.6.1.4.1.311.20.2.3")
_CURVES: Final[dict[str, ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1(),
    "P-256K": ec.SECP256K1()}
_RSA_SIZES: Final = (2048, 3072, 4096)
_KEY_USAGES: Final = ("digitalSignature", "nonRepudiation", "keyEncipherment",
                      "dataEncipherment", "keyAgreement", "keyCertSign", "cRLSign",
                      "encipherOnly", "decipherOnly")

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class VaultError(Exception):
    """A Key Vault error answer: ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, inner: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner

    def response(self) -> web.Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.inner:
            error["innererror"] = {"code": self.inner}
        return web.json_response({"error": error}, status=self.status)


@dataclass(frozen=True)
class SeenRequest:
    """One request as the vault saw it (for tests: was it authenticated, and how)."""

    method: str
    path: str
    api_version: str | None
    authorization: str | None
    status: int


@dataclass
class CertificateVersion:
    id: str
    chain: list[x509.Certificate]  # leaf first
    key: PrivateKey
    #: The policy as it was when this version was made (exportability and content type).
    policy: dict[str, Any]
    created: int
    tags: dict[str, str] = field(default_factory=dict)
    enabled: bool = True

    @property
    def leaf(self) -> x509.Certificate:
        return self.chain[0]


@dataclass
class PendingOperation:
    request_id: str
    issuer_name: str
    key: PrivateKey
    csr_der: bytes
    status: str = "inProgress"
    status_details: str = ""
    polls_left: int = 0
    cancellation_requested: bool = False
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class CertificateEntry:
    policy: dict[str, Any]
    versions: list[CertificateVersion] = field(default_factory=list)
    pending: PendingOperation | None = None

    @property
    def latest(self) -> CertificateVersion | None:
        return self.versions[-1] if self.versions else None


class KeyVaultEmulator:
    """The vault's state and its aiohttp app. Tests read and tweak the attributes directly."""

    def __init__(self, *, tenant_id: str = DEFAULT_TENANT,
                 accepted_tokens: Collection[str] | None = None,
                 self_signed_polls: int = 1) -> None:
        self.tenant_id = tenant_id
        #: ``None`` accepts any bearer token (the SDK only ever sends what the credential made).
        self.accepted_tokens = set(accepted_tokens) if accepted_tokens is not None else None
        #: How many pending-operation polls a "Self" creation stays "inProgress".
        self.self_signed_polls = self_signed_polls
        #: Answer 403 to secret reads, like a vault where the caller lacks secrets/get.
        self.deny_secret_get = False
        #: Return signatures that do not verify (a vault or proxy that cannot be trusted).
        self.tamper_signatures = False
        #: HTTP statuses to answer the next authenticated requests with (503, 429...).
        self.inject_statuses: list[int] = []
        self.certificates: dict[str, CertificateEntry] = {}
        self.requests: list[SeenRequest] = []
        self.lock = threading.Lock()
        #: Connections seen, so :func:`serve` can cut them at shutdown (see there).
        self.transports: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        cert = "/certificates/{name}"
        app.router.add_post(f"{cert}/create", self._create)
        app.router.add_post(f"{cert}/import", self._import)
        app.router.add_get(f"{cert}/pending", self._get_pending)
        app.router.add_patch(f"{cert}/pending", self._cancel_pending)
        app.router.add_delete(f"{cert}/pending", self._delete_pending)
        app.router.add_post(f"{cert}/pending/merge", self._merge)
        app.router.add_get(f"{cert}/policy", self._get_policy)
        app.router.add_patch(f"{cert}/policy", self._update_policy)
        app.router.add_get(cert, self._get_certificate)
        app.router.add_get(cert + "/{version:[^/]*}", self._get_certificate)
        app.router.add_patch(cert + "/{version:[^/]+}", self._update_version)
        app.router.add_post("/keys/{name}/{version}/sign", self._sign)
        app.router.add_get("/secrets/{name}", self._get_secret)
        app.router.add_get("/secrets/{name}/{version:[^/]*}", self._get_secret)
        return app

    # -- test helpers ---------------------------------------------------------------------

    def policy_of(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.certificates[name].policy)

    def unauthenticated_requests(self) -> list[SeenRequest]:
        return [seen for seen in self.requests if seen.authorization is None]

    # -- plumbing -------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        if request.transport is not None:
            self.transports.add(request.transport)
        response = await self._dispatch(request, handler, authorization)
        with self.lock:
            self.requests.append(SeenRequest(request.method, request.path,
                                             request.query.get("api-version"),
                                             authorization, response.status))
        return response

    async def _dispatch(self, request: web.Request, handler: Any,
                        authorization: str | None) -> web.StreamResponse:
        if not request.query.get("api-version"):
            return VaultError(400, "BadParameter", "The api-version query parameter is "
                              "missing.").response()
        token = authorization[len("Bearer "):] if authorization and authorization.startswith(
            "Bearer ") else None
        if token is None:
            return self._challenge("AKV10000: Request is missing a Bearer or PoP token.")
        if self.accepted_tokens is not None and token not in self.accepted_tokens:
            return self._challenge("AKV10022: Invalid audience.")
        if self.inject_statuses:
            status = self.inject_statuses.pop(0)
            return VaultError(status, "ServiceUnavailable" if status >= 500 else "Throttled",
                              "Injected by the test.").response()
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            return VaultError(400, "BadParameter", "The request body is not JSON.").response()
        try:
            with self.lock:
                result: web.StreamResponse = await handler(request, body)
        except VaultError as exc:
            return exc.response()
        return result

    def _challenge(self, message: str) -> web.Response:
        response = VaultError(401, "Unauthorized", message).response()
        response.headers["WWW-Authenticate"] = (
            f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
            'resource="https://vault.azure.net"')
        return response

    @staticmethod
    def _base(request: web.Request) -> str:
        return f"https://{request.host}"

    def _entry(self, name: str) -> CertificateEntry:
        entry = self.certificates.get(name)
        if entry is None:
            raise VaultError(404, "CertificateNotFound",
                             f"A certificate with (name/id) {name} was not found in this key "
                             "vault. If you recently deleted this certificate you may be able "
                             "to recover it using the correct recovery command.")
        return entry

    @staticmethod
    def _name(request: web.Request) -> str:
        name = request.match_info["name"]
        if not _NAME.fullmatch(name):
            raise VaultError(400, "BadParameter", f"The name {name!r} is not valid.")
        return name

    # -- certificates ---------------------------------------------------------------------

    async def _create(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        self._refuse_while_pending(name)
        policy = _normalize_policy(body.get("policy") or {}, self._base(request), name)
        x509_props = policy["x509_props"]
        if not x509_props.get("subject") and not any(x509_props.get("sans", {}).values()):
            raise VaultError(400, "BadParameter", "Either subject or subject alternative "
                             "names must be specified.")
        entry = self.certificates.get(name)
        current = entry.latest if entry is not None else None
        key = (current.key if current is not None and policy["key_props"].get("reuse_key")
               and _same_kind(current.key, policy["key_props"])
               else _generate_key(policy["key_props"]))
        csr = _build_csr(key, x509_props)
        issuer_name = policy["issuer"]["name"]
        self_signed = issuer_name.lower() == "self"
        operation = PendingOperation(
            request_id=uuid.uuid4().hex, issuer_name=issuer_name, key=key,
            csr_der=csr.public_bytes(serialization.Encoding.DER),
            status_details=("Pending certificate created. Certificate request is in progress. "
                            "This may take some time based on the issuer provider. Please "
                            "check again later." if self_signed else
                            "Pending certificate created. Please Perform Merge to complete "
                            "the request."),
            polls_left=self.self_signed_polls, tags=dict(body.get("tags") or {}))
        if entry is None:
            entry = self.certificates[name] = CertificateEntry(policy)
        entry.policy, entry.pending = policy, operation
        if self_signed and operation.polls_left <= 0:
            self._complete_self_signed(entry, operation)
        entry_pending_url = f"{self._base(request)}/certificates/{name}/pending"
        return web.json_response(self._operation_json(request, name, operation), status=202,
                                 headers={"Location": entry_pending_url
                                          + f"?request_id={operation.request_id}"})

    def _refuse_while_pending(self, name: str) -> None:
        entry = self.certificates.get(name)
        if entry is not None and entry.pending is not None and entry.pending.status == "inProgress":
            raise VaultError(409, "Forbidden", "A new key vault certificate can not be created "
                             "or imported while a pending key vault certificate's status is "
                             "inProgress.")

    def _complete_self_signed(self, entry: CertificateEntry,
                              operation: PendingOperation) -> None:
        certificate = _self_sign(operation.key, entry.policy["x509_props"])
        self._add_version(entry, [certificate], operation.key, operation.tags)
        operation.status, operation.status_details = "completed", ""

    def _add_version(self, entry: CertificateEntry, chain: list[x509.Certificate],
                     key: PrivateKey, tags: dict[str, str]) -> CertificateVersion:
        version = CertificateVersion(uuid.uuid4().hex, chain, key, copy.deepcopy(entry.policy),
                                     _now(), dict(tags))
        entry.versions.append(version)
        return version

    async def _get_pending(self, request: web.Request, _: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self._entry(name)
        operation = self._pending(name, entry)
        if operation.status == "inProgress" and operation.issuer_name.lower() == "self":
            if operation.polls_left <= 0:
                self._complete_self_signed(entry, operation)
            else:
                operation.polls_left -= 1
        return web.json_response(self._operation_json(request, name, operation))

    async def _cancel_pending(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        operation = self._pending(name, self._entry(name))
        if operation.status != "inProgress":
            raise VaultError(400, "BadParameter", "The pending certificate is not in progress.")
        operation.cancellation_requested = bool(body.get("cancellation_requested"))
        return web.json_response(self._operation_json(request, name, operation))

    async def _delete_pending(self, request: web.Request, _: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self._entry(name)
        operation = self._pending(name, entry)
        entry.pending = None
        return web.json_response(self._operation_json(request, name, operation))

    @staticmethod
    def _pending(name: str, entry: CertificateEntry) -> PendingOperation:
        if entry.pending is None:
            raise VaultError(404, "PendingCertificateNotFound",
                             f"Pending certificate not found: {name}")
        return entry.pending

    async def _merge(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self._entry(name)
        operation = self._pending(name, entry)
        if operation.issuer_name.lower() != "unknown":
            raise VaultError(403, "Forbidden", "Merge is forbidden on pending object created "
                             f"with issuer : {operation.issuer_name} while it is in progess.")
        if operation.status != "inProgress":
            raise VaultError(400, "BadParameter", "The pending certificate is not in progress.")
        x5c = body.get("x5c")
        if not isinstance(x5c, list) or not x5c:
            raise VaultError(400, "BadParameter", "x5c must be a non-empty array.")
        try:
            chain = [x509.load_der_x509_certificate(base64.b64decode(item, validate=True))
                     for item in x5c]
        except (ValueError, TypeError, binascii.Error) as exc:
            raise VaultError(400, "BadParameter", "x5c holds an invalid certificate.") from exc
        public_key = operation.key.public_key()
        leaf = next((cert for cert in chain if cert.public_key() == public_key), None)
        if leaf is None:
            raise VaultError(400, "BadParameter", "Public key from x509 certificate and key of "
                             "this instance doesn't match")
        ordered = [leaf, *(cert for cert in chain if cert is not leaf)]
        version = self._add_version(entry, ordered, operation.key, body.get("tags") or {})
        operation.status, operation.status_details = "completed", ""
        return web.json_response(self._bundle(request, name, entry, version, with_policy=True),
                                 status=201)

    async def _import(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        self._refuse_while_pending(name)
        requested = body.get("policy") or {}
        content_type = (requested.get("secret_props") or {}).get("contentType",
                                                                 PKCS12_CONTENT_TYPE)
        key, chain = _read_import(str(body.get("value") or ""), content_type, body.get("pwd"))
        policy = _normalize_policy(_policy_from_certificate(chain[0], key, requested),
                                   self._base(request), name)
        entry = self.certificates.get(name)
        if entry is None:
            entry = self.certificates[name] = CertificateEntry(policy)
        entry.policy, entry.pending = policy, None
        version = self._add_version(entry, chain, key, body.get("tags") or {})
        return web.json_response(self._bundle(request, name, entry, version, with_policy=True))

    async def _get_policy(self, request: web.Request, _: dict[str, Any]) -> web.Response:
        return web.json_response(self._entry(self._name(request)).policy)

    async def _update_policy(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self._entry(name)
        # PATCH sets the sections it names and leaves the others as they were.
        merged = copy.deepcopy(entry.policy)
        merged.update({key: value for key, value in body.items() if key not in ("id",)})
        entry.policy = _normalize_policy(merged, self._base(request), name)
        return web.json_response(entry.policy)

    async def _get_certificate(self, request: web.Request, _: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self._entry(name)
        wanted = request.match_info.get("version", "")
        if not wanted:
            if entry.latest is None:
                raise VaultError(404, "CertificateNotFound",
                                 f"A certificate with (name/id) {name} was not found in this "
                                 "key vault.")
            return web.json_response(self._bundle(request, name, entry, entry.latest,
                                                  with_policy=True))
        version = next((v for v in entry.versions if v.id == wanted), None)
        if version is None:
            raise VaultError(404, "CertificateNotFound", f"A certificate with (name/id) "
                             f"{name}/{wanted} was not found in this key vault.")
        return web.json_response(self._bundle(request, name, entry, version, with_policy=False))

    async def _update_version(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self._entry(name)
        version = self._version(name, entry, request.match_info["version"])
        attributes = body.get("attributes") or {}
        if "enabled" in attributes:
            version.enabled = bool(attributes["enabled"])
        if body.get("tags") is not None:
            version.tags = dict(body["tags"])
        return web.json_response(self._bundle(request, name, entry, version, with_policy=False))

    @staticmethod
    def _version(name: str, entry: CertificateEntry, wanted: str) -> CertificateVersion:
        version = next((v for v in entry.versions if v.id == wanted), None)
        if version is None:
            raise VaultError(404, "CertificateNotFound", f"A certificate with (name/id) "
                             f"{name}/{wanted} was not found in this key vault.")
        return version

    # -- keys -----------------------------------------------------------------------------

    async def _sign(self, request: web.Request, body: dict[str, Any]) -> web.Response:
        name = self._name(request)
        entry = self.certificates.get(name)
        wanted = request.match_info["version"]
        version = next((v for v in entry.versions if v.id == wanted), None) if entry else None
        if version is None:
            raise VaultError(404, "KeyNotFound", f"A key with (name/id) {name}/{wanted} was "
                             "not found in this key vault.")
        if not version.enabled:
            raise VaultError(403, "Forbidden", "Operation sign is not allowed on a disabled "
                             "key.", "KeyDisabled")
        try:
            digest = base64.urlsafe_b64decode(str(body.get("value", "")) + "==")
        except (binascii.Error, ValueError) as exc:
            raise VaultError(400, "BadParameter", "value is not base64url.") from exc
        signature = _sign_digest(version.key, str(body.get("alg", "")), digest)
        if self.tamper_signatures:
            signature = bytes([signature[0] ^ 1]) + signature[1:]
        return web.json_response({
            "kid": f"{self._base(request)}/keys/{name}/{version.id}",
            "value": base64.urlsafe_b64encode(signature).decode().rstrip("=")})

    # -- secrets --------------------------------------------------------------------------

    async def _get_secret(self, request: web.Request, _: dict[str, Any]) -> web.Response:
        name = self._name(request)
        if self.deny_secret_get:
            raise VaultError(403, "Forbidden", "The user, group or application does not have "
                             "secrets get permission on key vault; see "
                             "https://go.microsoft.com/fwlink/?linkid=2125287", "AccessDenied")
        entry = self.certificates.get(name)
        wanted = request.match_info.get("version", "")
        version = None
        if entry is not None:
            version = (next((v for v in entry.versions if v.id == wanted), None) if wanted
                       else entry.latest)
        if version is None:
            raise VaultError(404, "SecretNotFound", f"A secret with (name/id) {name} was not "
                             "found in this key vault.")
        if not version.enabled:
            raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled "
                             "secret.", "SecretDisabled")
        content_type = version.policy["secret_props"]["contentType"]
        exportable = bool(version.policy["key_props"].get("exportable"))
        base = self._base(request)
        return web.json_response({
            "value": _secret_value(version, content_type, exportable=exportable),
            "contentType": content_type,
            "id": f"{base}/secrets/{name}/{version.id}",
            "kid": f"{base}/keys/{name}/{version.id}",
            "managed": True,
            "attributes": _attributes(version),
            "tags": version.tags,
        })

    # -- JSON shapes ----------------------------------------------------------------------

    def _operation_json(self, request: web.Request, name: str,
                        operation: PendingOperation) -> dict[str, Any]:
        base = self._base(request)
        body: dict[str, Any] = {
            "id": f"{base}/certificates/{name}/pending",
            "issuer": {"name": operation.issuer_name},
            "csr": base64.b64encode(operation.csr_der).decode(),
            "cancellation_requested": operation.cancellation_requested,
            "status": operation.status,
            "status_details": operation.status_details,
            "request_id": operation.request_id,
        }
        if operation.status == "completed":
            body["target"] = f"{base}/certificates/{name}"
        return body

    def _bundle(self, request: web.Request, name: str, entry: CertificateEntry,
                version: CertificateVersion, *, with_policy: bool) -> dict[str, Any]:
        base = self._base(request)
        der = version.leaf.public_bytes(serialization.Encoding.DER)
        bundle: dict[str, Any] = {
            "id": f"{base}/certificates/{name}/{version.id}",
            "kid": f"{base}/keys/{name}/{version.id}",
            "sid": f"{base}/secrets/{name}/{version.id}",
            # x5t is by definition the SHA-1 thumbprint (RFC 7517), an identifier, not security.
            "x5t": base64.urlsafe_b64encode(
                hashlib.sha1(der, usedforsecurity=False).digest()).decode().rstrip("="),
            "cer": base64.b64encode(der).decode(),
            "attributes": _attributes(version),
            "tags": version.tags,
        }
        if with_policy:
            bundle["policy"] = entry.policy
        return bundle


# -- policy -----------------------------------------------------------------------------------


def _normalize_policy(requested: dict[str, Any], base: str, name: str) -> dict[str, Any]:
    """Fill Key Vault's defaults into a requested policy and refuse what the service refuses."""
    policy = copy.deepcopy(requested)
    now = _now()
    key_props = {"exportable": True, "kty": "RSA", "reuse_key": False,
                 **(policy.get("key_props") or {})}
    kty = str(key_props["kty"]).upper()
    if kty.startswith("EC"):
        key_props.setdefault("crv", "P-256")
        key_props.pop("key_size", None)
        if key_props["crv"] not in _CURVES:
            raise VaultError(400, "BadParameter", f"Unsupported curve {key_props['crv']}.")
    elif kty.startswith("RSA"):
        key_props["key_size"] = key_props.get("key_size") or 2048
        if key_props["key_size"] not in _RSA_SIZES:
            raise VaultError(400, "BadParameter", f"Unsupported key size {key_props['key_size']}.")
    else:
        raise VaultError(400, "BadParameter", f"Unsupported key type {key_props['kty']}.")
    if kty.endswith("-HSM"):
        key_props["exportable"] = False  # HSM keys never leave the HSM
    content_type = (policy.get("secret_props") or {}).get("contentType") or PKCS12_CONTENT_TYPE
    if content_type not in (PEM_CONTENT_TYPE, PKCS12_CONTENT_TYPE):
        raise VaultError(400, "BadParameter", f"Unsupported content type {content_type}.")
    x509_props = {"ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
                  "key_usage": ["digitalSignature", "keyEncipherment"], "validity_months": 12,
                  **{k: v for k, v in (policy.get("x509_props") or {}).items() if v is not None}}
    months = x509_props["validity_months"]
    if not isinstance(months, int) or not 1 <= months <= 1200:
        raise VaultError(400, "BadParameter", "validity_months must be between 1 and 1200.")
    for usage in x509_props["key_usage"]:
        if usage not in _KEY_USAGES:
            raise VaultError(400, "BadParameter", f"Unknown key usage {usage}.")
    issuer = {"name": "Unknown", **(policy.get("issuer") or {})}
    actions = policy.get("lifetime_actions")
    if not actions:
        action_type = "AutoRenew" if issuer["name"].lower() == "self" else "EmailContacts"
        actions = [{"trigger": {"lifetime_percentage": 80}, "action": {"action_type": action_type}}]
    for action in actions:
        _check_lifetime_action(action, issuer["name"], months)
    attributes = {"enabled": True, "created": now, "updated": now,
                  **(policy.get("attributes") or {})}
    attributes["updated"] = now
    return {"id": f"{base}/certificates/{name}/policy", "key_props": key_props,
            "secret_props": {"contentType": content_type}, "x509_props": x509_props,
            "lifetime_actions": actions, "issuer": issuer, "attributes": attributes}


def _check_lifetime_action(action: dict[str, Any], issuer_name: str, months: int) -> None:
    trigger = action.get("trigger") or {}
    action_type = (action.get("action") or {}).get("action_type")
    percentage, days = trigger.get("lifetime_percentage"), trigger.get("days_before_expiry")
    if action_type not in ("AutoRenew", "EmailContacts"):
        raise VaultError(400, "BadParameter", f"Unknown lifetime action {action_type}.")
    if (percentage is None) == (days is None):
        raise VaultError(400, "BadParameter", "A lifetime action trigger needs exactly one of "
                         "lifetime_percentage and days_before_expiry.")
    if percentage is not None and not 1 <= percentage <= 99:
        raise VaultError(400, "BadParameter", "lifetime_percentage must be between 1 and 99.")
    if days is not None and not 1 <= days <= months * 27:
        raise VaultError(400, "BadParameter", "days_before_expiry must be between 1 and "
                         f"{months * 27}.")
    if action_type == "AutoRenew" and issuer_name.lower() == "unknown":
        raise VaultError(400, "BadParameter", "AutoRenew is not supported for certificates "
                         "issued by an unknown issuer.")


def _policy_from_certificate(leaf: x509.Certificate, key: PrivateKey,
                             requested: dict[str, Any]) -> dict[str, Any]:
    """An imported certificate's policy: its own subject, SANs and key, plus what was asked."""
    policy = copy.deepcopy(requested)
    key_props = dict(policy.get("key_props") or {})
    if isinstance(key, ec.EllipticCurvePrivateKey):
        crv = {v.name: k for k, v in _CURVES.items()}[key.curve.name]
        key_props.update(kty="EC", crv=crv)
    else:
        key_props.update(kty="RSA", key_size=key.key_size)
    policy["key_props"] = key_props
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    x509_props: dict[str, Any] = {"subject": _key_vault_subject(leaf.subject),
                                  "validity_months": max(1, round(lifetime.days / 30))}
    try:
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        x509_props["sans"] = {"dns_names": san.get_values_for_type(x509.DNSName),
                              "ipAddresses": [str(ip) for ip in
                                              san.get_values_for_type(x509.IPAddress)]}
    except x509.ExtensionNotFound:
        pass
    try:
        eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        x509_props["ekus"] = [oid.dotted_string for oid in eku]
    except x509.ExtensionNotFound:
        pass
    policy["x509_props"] = x509_props
    return policy


# -- X.509 ------------------------------------------------------------------------------------


def _generate_key(key_props: dict[str, Any]) -> PrivateKey:
    if str(key_props["kty"]).upper().startswith("EC"):
        return ec.generate_private_key(_CURVES[key_props["crv"]])
    return rsa.generate_private_key(public_exponent=65537, key_size=key_props["key_size"])


_SUBJECT_TYPES: Final[dict[str, ObjectIdentifier]] = {
    "CN": NameOID.COMMON_NAME, "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME, "L": NameOID.LOCALITY_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME, "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME, "E": NameOID.EMAIL_ADDRESS, "DC": NameOID.DOMAIN_COMPONENT,
    "STREET": NameOID.STREET_ADDRESS, "SERIALNUMBER": NameOID.SERIAL_NUMBER}
_RDN: Final = re.compile(r'\s*([A-Za-z]+)\s*=\s*("[^"]*"|[^,;"]*?)\s*(?:[,;]|$)')


def _subject(x509_props: dict[str, Any]) -> x509.Name:
    """The policy's subject, read the way Key Vault reads it (see the module docstring)."""
    text = str(x509_props.get("subject") or "")
    invalid = VaultError(400, "BadParameter", "The subject name provided is not a valid X500 "
                         "name.")
    attributes: list[x509.NameAttribute] = []
    position = 0
    while position < len(text):
        match = _RDN.match(text, position)
        if match is None or match.end() == position or match.group(1).upper() \
                not in _SUBJECT_TYPES:
            raise invalid
        value = match.group(2)
        value = value[1:-1] if value.startswith('"') else value
        try:
            attributes.append(x509.NameAttribute(_SUBJECT_TYPES[match.group(1).upper()], value))
        except ValueError as exc:  # an empty value, a country code not of two letters
            raise invalid from exc
        position = match.end()
    return x509.Name(list(reversed(attributes)))


def _key_vault_subject(name: x509.Name) -> str:
    """An imported certificate's subject as the policy reports it (the same syntax)."""
    labels = {oid: label for label, oid in _SUBJECT_TYPES.items() if label != "ST"}
    parts = []
    for attribute in reversed(list(name)):
        value = str(attribute.value)
        quoted = f'"{value}"' if set(value) & set(',;+=<>#') else value
        parts.append(f"{labels.get(attribute.oid, attribute.oid.dotted_string)}={quoted}")
    return ", ".join(parts)


def _same_kind(key: PrivateKey, key_props: dict[str, Any]) -> bool:
    """Whether an existing key is of the kind a policy asks for (reuse_key needs that)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return str(key_props["kty"]).upper().startswith("EC") and \
            _CURVES[key_props["crv"]].name == key.curve.name
    return str(key_props["kty"]).upper().startswith("RSA") and \
        key_props["key_size"] == key.key_size


def _sign_digest(key: PrivateKey, algorithm: str, digest: bytes) -> bytes:
    """Key Vault's sign: ES256 answers r‖s (JWS, RFC 7518 3.4), RS256 PKCS#1 v1.5."""
    if len(digest) != 32:
        raise VaultError(400, "BadParameter", "The digest length does not match the "
                         "algorithm.")
    prehashed = Prehashed(hashes.SHA256())
    if algorithm == "ES256" and isinstance(key, ec.EllipticCurvePrivateKey) \
            and isinstance(key.curve, ec.SECP256R1):
        r, s = decode_dss_signature(key.sign(digest, ec.ECDSA(prehashed)))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if algorithm == "RS256" and isinstance(key, rsa.RSAPrivateKey):
        return key.sign(digest, padding.PKCS1v15(), prehashed)
    raise VaultError(400, "BadParameter", f"Algorithm {algorithm!r} is not valid for this "
                     "key.")


def _extensions(x509_props: dict[str, Any]) -> list[tuple[x509.ExtensionType, bool]]:
    sans = x509_props.get("sans") or {}
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in sans.get("dns_names") or []]
    names += [x509.RFC822Name(e) for e in sans.get("emails") or []]
    names += [x509.UniformResourceIdentifier(u) for u in sans.get("uris") or []]
    names += [x509.OtherName(_UPN_OID, _der_utf8(u)) for u in sans.get("upns") or []]
    try:
        names += [x509.IPAddress(ipaddress.ip_address(a)) for a in sans.get("ipAddresses") or []]
    except ValueError as exc:
        raise VaultError(400, "BadParameter", "Invalid IP address SAN.") from exc
    extensions: list[tuple[x509.ExtensionType, bool]] = []
    if names:
        extensions.append((x509.SubjectAlternativeName(names), False))
    if x509_props.get("ekus"):
        extensions.append((x509.ExtendedKeyUsage(
            [ObjectIdentifier(oid) for oid in x509_props["ekus"]]), False))
    usages = set(x509_props.get("key_usage") or [])
    if usages:
        extensions.append((x509.KeyUsage(
            digital_signature="digitalSignature" in usages,
            content_commitment="nonRepudiation" in usages,
            key_encipherment="keyEncipherment" in usages,
            data_encipherment="dataEncipherment" in usages,
            key_agreement="keyAgreement" in usages, key_cert_sign="keyCertSign" in usages,
            crl_sign="cRLSign" in usages, encipher_only="encipherOnly" in usages,
            decipher_only="decipherOnly" in usages), True))
    return extensions


def _build_csr(key: PrivateKey, x509_props: dict[str, Any]) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(_subject(x509_props))
    for extension, critical in _extensions(x509_props):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def _self_sign(key: PrivateKey, x509_props: dict[str, Any]) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    name = _subject(x509_props)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now)
               .not_valid_after(_add_months(now, int(x509_props["validity_months"])))
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False))
    for extension, critical in _extensions(x509_props):
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(key, hashes.SHA256())


def _read_import(value: str, content_type: str,
                 password: str | None) -> tuple[PrivateKey, list[x509.Certificate]]:
    """Key and chain (leaf first) from an import body's ``value``."""
    raw = value.encode()
    if not value.lstrip().startswith("-----BEGIN"):
        try:
            raw = base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise VaultError(400, "BadParameter", "The certificate value is not base64.") from exc
    key: Any
    try:
        if content_type == PEM_CONTENT_TYPE:
            certificates = x509.load_pem_x509_certificates(raw)
            block = re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE "
                              rb"KEY-----", raw, re.DOTALL)
            key = (serialization.load_pem_private_key(block.group(0), None)
                   if block is not None else None)
        else:
            key, leaf, extra = pkcs12.load_key_and_certificates(
                raw, password.encode() if password else None)
            certificates = ([leaf] if leaf is not None else []) + list(extra)
    except ValueError as exc:
        raise VaultError(400, "BadParameter", "The specified certificate content could not be "
                         "read.") from exc
    if not isinstance(key, PrivateKey):
        raise VaultError(400, "BadParameter", "Private key is not specified in the specified "
                         "X.509 certificate content.")
    leaf = next((cert for cert in certificates if cert.public_key() == key.public_key()), None)
    if leaf is None:
        raise VaultError(400, "BadParameter", "The private key does not match the certificate.")
    return key, [leaf, *(cert for cert in certificates if cert is not leaf)]


def _secret_value(version: CertificateVersion, content_type: str, *, exportable: bool) -> str:
    if content_type == PEM_CONTENT_TYPE:
        # Azure writes the key first, then the certificates in their stored order.
        key_pem = version.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()) if exportable else b""
        certificates = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in version.chain)
        return (key_pem + certificates).decode()
    bundle = pkcs12.serialize_key_and_certificates(
        None, version.key if exportable else None, version.leaf, version.chain[1:] or None,
        serialization.NoEncryption())
    return base64.b64encode(bundle).decode()


def _attributes(version: CertificateVersion) -> dict[str, Any]:
    return {"enabled": version.enabled,
            "nbf": int(version.leaf.not_valid_before_utc.timestamp()),
            "exp": int(version.leaf.not_valid_after_utc.timestamp()),
            "created": version.created, "updated": version.created,
            "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}


def _add_months(moment: dt.datetime, months: int) -> dt.datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def _der_utf8(text: str) -> bytes:
    data = text.encode()
    if len(data) < 0x80:
        return bytes([0x0C, len(data)]) + data
    length = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x0C, 0x80 | len(length)]) + length + data


def _now() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())


# -- serving ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningVault:
    url: str
    emulator: KeyVaultEmulator
    ca_path: str


@contextmanager
def serve(emulator: KeyVaultEmulator, tls: ServerTLS, *, port: int,
          host: str = "127.0.0.1") -> Iterator[RunningVault]:
    """Serve ``emulator`` over HTTPS on ``host:port`` from a background event-loop thread."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(emulator.app(), access_log=None, shutdown_timeout=1.0)
    started = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(
                web.TCPSite(runner, host, port, ssl_context=context).start())
        except Exception as exc:  # noqa: BLE001 - handed to the starting thread, which raises it
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="azure-keyvault-emulator", daemon=True)
    thread.start()
    started.wait(10)
    if failure:
        thread.join(10)
        loop.run_until_complete(runner.cleanup())
        loop.close()
        raise failure[0]

    async def stop() -> None:
        await runner.cleanup()
        # A closed TLS connection waits for the peer's close_notify on later loop turns;
        # abort what is left so no socket outlives the loop (ResourceWarning is an error here).
        for transport in list(emulator.transports):
            transport.abort()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)

    try:
        yield RunningVault(f"https://{host}:{port}", emulator, str(tls.ca_cert))
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
