"""A fake Kubernetes API server for the parts keyward uses, with a simulated cert-manager.

The real ``kubernetes`` client talks to it over plain HTTP, so tests exercise the
same request paths, bodies, headers and error objects as against a cluster:

* core/v1 Secrets in any namespace: GET, POST, PUT, PATCH (JSON merge and strategic
  merge, which coincide for a Secret's flat maps), DELETE. Every write bumps one
  global ``resourceVersion`` (like etcd's revision); a PUT or PATCH that carries a
  stale ``metadata.resourceVersion`` gets the API server's 409 ``Conflict`` Status.
  ``kubernetes.io/tls`` Secrets must hold ``tls.crt`` and ``tls.key``, as the real
  API validates.
* cert-manager.io/v1 CertificateRequests: POST (``generateName`` supported), GET,
  DELETE. A simulated controller approves and signs each request with a throwaway CA
  after ``controller_delay`` seconds, or denies it, marks it invalid, fails it, or
  leaves it alone, as the test chose with :attr:`FakeKubeApi.outcome`.
* Anything else, or the CertificateRequest API while :attr:`FakeKubeApi.crd_installed`
  is false, is the API server's generic 404 Status.

Every request must carry ``Authorization: Bearer <token>`` (401 Status otherwise);
the headers seen are kept for tests to inspect. The server runs on its own event-loop
thread because the kubernetes client is synchronous and blocks the calling thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import datetime as dt
import json
import re
import secrets
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import kubernetes.client
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

Json = dict[str, Any]
Outcome = Literal["issue", "deny", "invalid", "fail", "never"]

CM_GROUP = "cert-manager.io"
CM_VERSION = "v1"
_SECRET_MAX_BYTES = 1024 * 1024
_DATA_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
_GO_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                    "h": 3600.0}
# cert-manager's KeyUsage enum (pkg/apis/certmanager/v1/types.go).
_KNOWN_USAGES = frozenset({
    "signing", "digital signature", "content commitment", "key encipherment",
    "key agreement", "data encipherment", "cert sign", "crl sign", "encipher only",
    "decipher only", "any", "server auth", "client auth", "code signing",
    "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user",
    "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc",
})
_STATUS_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                   409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid",
                   429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable"}


def parse_go_duration(text: str) -> dt.timedelta:
    """Parse a Go ``time.Duration`` string ("2160h0m0s", "1.5h", "90m") as the API does."""
    if not text or _GO_DURATION_PART.sub("", text) != "":
        raise ValueError(f"time: invalid duration {text!r}")
    seconds = sum(float(num) * _GO_UNIT_SECONDS[unit]
                  for num, unit in _GO_DURATION_PART.findall(text))
    return dt.timedelta(seconds=seconds)


def status_body(code: int, message: str, *, reason: str | None = None,
                details: Json | None = None) -> Json:
    """A metav1.Status failure object, shaped like the ones the API server returns."""
    body: Json = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                  "message": message, "reason": reason or _STATUS_REASONS.get(code, "Unknown"),
                  "code": code}
    if details is not None:
        body["details"] = details
    return body


class ApiError(Exception):
    """Raised inside a handler; the middleware turns it into a Status response."""

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: Json | None = None) -> None:
        super().__init__(message)
        self.body = status_body(code, message, reason=reason, details=details)
        self.code = code


@dataclass
class TestCA:
    """The throwaway CA the simulated cert-manager signs with."""

    __test__ = False  # not a pytest test class, despite the name

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, common_name: str = "keyward fake cert-manager CA") -> TestCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = dt.datetime.now(dt.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                               critical=False)
                .sign(key, hashes.SHA256()))
        return cls(key=key, cert=cert)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, csr: x509.CertificateSigningRequest, *, usages: list[str],
             lifetime: dt.timedelta, whole_subject: bool = True) -> x509.Certificate:
        """Sign like cert-manager's CA issuer: subject and SANs from the CSR, usages from
        the CertificateRequest. ``whole_subject=False`` keeps only the CSR's common name,
        as an ACME issuer does (or a Vault issuer whose role sets no O, OU, …)."""
        now = dt.datetime.now(dt.UTC)
        ku = set(usages)
        subject = csr.subject if whole_subject else x509.Name(
            csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME))
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(self.cert.subject).public_key(csr.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + lifetime)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                  critical=True)
                   .add_extension(x509.KeyUsage(
                       digital_signature="digital signature" in ku or "signing" in ku,
                       content_commitment=False,
                       key_encipherment="key encipherment" in ku,
                       data_encipherment=False, key_agreement=False, key_cert_sign=False,
                       crl_sign=False, encipher_only=False, decipher_only=False),
                       critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                       self.key.public_key()), critical=False))
        ekus = [oid for name, oid in (("client auth", ExtendedKeyUsageOID.CLIENT_AUTH),
                                      ("server auth", ExtendedKeyUsageOID.SERVER_AUTH))
                if name in ku]
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            pass
        else:
            builder = builder.add_extension(san.value, critical=False)
        return builder.sign(self.key, hashes.SHA256())


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _condition(kind: str, status: str, reason: str, message: str) -> Json:
    return {"type": kind, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": _now()}


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (null deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


@dataclass
class _Interference:
    namespace: str
    name: str
    write: Callable[[Json | None], Json]


@dataclass
class FakeKubeApi:
    """State and behaviour of the fake API server; inspect and steer it from tests.

    Attributes are read and written from the test thread while the server thread
    serves requests; every handler holds :attr:`lock`, and tests inspecting mutable
    state should too (or use the copying accessors).
    """

    token: str = "test-token"
    #: Seconds until the simulated cert-manager approves (then as long again to sign).
    controller_delay: float = 0.2
    #: What the simulated cert-manager does with the next CertificateRequests.
    outcome: Outcome = "issue"
    #: The message a deny / invalid / fail outcome writes into the conditions.
    outcome_message: str = "denied by policy: common name not allowed"
    #: False makes every cert-manager.io URL 404, as when the CRDs are not installed.
    crd_installed: bool = True
    #: False signs only the CSR's common name into the subject (see TestCA.sign).
    whole_subject: bool = True
    ca: TestCA = field(default_factory=TestCA.create)

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    secrets: dict[tuple[str, str], Json] = field(default_factory=dict)
    certificate_requests: dict[tuple[str, str], Json] = field(default_factory=dict)
    #: A copy of every CertificateRequest as stored at creation (they are deleted later).
    created_certificate_requests: list[Json] = field(default_factory=list)
    #: Every Authorization header received, in order (a missing one is recorded as "").
    authorization_headers: list[str] = field(default_factory=list)
    #: (method, path, status) of every request, in order.
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    #: How many 409 Conflicts were returned for a stale resourceVersion.
    conflicts: int = 0
    _resource_version: int = 0
    _faults: list[tuple[str | None, int]] = field(default_factory=list)
    _interference: list[_Interference] = field(default_factory=list)

    # ---- steering from tests -------------------------------------------------------

    def fail_next(self, status: int, *, times: int = 1, method: str | None = None) -> None:
        """Answer the next ``times`` requests (of ``method``, if given) with ``status``."""
        with self.lock:
            self._faults.extend([(method, status)] * times)

    def interfere_after_read(self, namespace: str, name: str,
                             write: Callable[[Json | None], Json]) -> None:
        """Right after the next GET of this Secret is answered (found or 404), let
        "another writer" store ``write(copy of current or None)`` with a new
        resourceVersion, so the reader's next write is stale (409 Conflict on update,
        409 AlreadyExists on create)."""
        with self.lock:
            self._interference.append(_Interference(namespace, name, write))

    def secret(self, namespace: str, name: str) -> Json | None:
        """A copy of a stored Secret, or None."""
        with self.lock:
            found = self.secrets.get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    def certificate_request(self, namespace: str, name: str) -> Json | None:
        """A copy of a stored CertificateRequest, or None (for example, once deleted)."""
        with self.lock:
            found = self.certificate_requests.get((namespace, name))
            return copy.deepcopy(found) if found is not None else None

    # ---- the application -------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        secrets_path = "/api/v1/namespaces/{ns}/secrets"
        crs_path = f"/apis/{CM_GROUP}/{CM_VERSION}/namespaces/{{ns}}/certificaterequests"
        app.router.add_get(secrets_path + "/{name}", self._get_secret)
        app.router.add_post(secrets_path, self._create_secret)
        app.router.add_put(secrets_path + "/{name}", self._replace_secret)
        app.router.add_patch(secrets_path + "/{name}", self._patch_secret)
        app.router.add_delete(secrets_path + "/{name}", self._delete_secret)
        app.router.add_post(crs_path, self._create_cr)
        app.router.add_get(crs_path + "/{name}", self._get_cr)
        app.router.add_delete(crs_path + "/{name}", self._delete_cr)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                          ) -> web.StreamResponse:
        response = await self._dispatch(request, handler)
        with self.lock:
            self.requests.append((request.method, request.path, response.status))
        return response

    async def _dispatch(self, request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
                        ) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        with self.lock:
            self.authorization_headers.append(header)
        if header != f"Bearer {self.token}":
            return web.json_response(status_body(401, "Unauthorized"), status=401)
        with self.lock:
            fault = next((f for f in self._faults if f[0] in (None, request.method)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None:
            code = fault[1]
            return web.json_response(status_body(code, f"injected failure {code}"), status=code)
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response(exc.body, status=exc.code)
        except web.HTTPNotFound:
            return self._not_served()
        except web.HTTPMethodNotAllowed:
            return web.json_response(
                status_body(405, "the server does not allow this method on the requested "
                            "resource", reason="MethodNotAllowed"), status=405)

    @staticmethod
    def _not_served() -> web.Response:
        # What kube-apiserver answers for a group/resource it does not serve.
        return web.json_response(
            status_body(404, "the server could not find the requested resource",
                        details={}), status=404)

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    @staticmethod
    async def _json(request: web.Request) -> Json:
        try:
            body = await request.json(loads=json.loads)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return body

    # ---- Secrets -------------------------------------------------------------------

    @staticmethod
    def _not_found(resource: str, name: str, group: str = "") -> ApiError:
        qualified = f"{resource}.{group}" if group else resource
        details: Json = {"name": name, "kind": resource}
        if group:
            details["group"] = group
        return ApiError(404, f'{qualified} "{name}" not found', details=details)

    def _validate_secret(self, ns: str, name: str, body: Json) -> None:
        if body.get("kind", "Secret") != "Secret" or body.get("apiVersion", "v1") != "v1":
            raise ApiError(400, "the body of the request was in an unknown format")
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise ApiError(400, "data: expected a map of base64 strings")
        size = 0
        causes = []
        for key, value in data.items():
            if not _DATA_KEY.match(key):
                causes.append(f"data[{key}]: Invalid value: a valid config key must consist "
                              "of alphanumeric characters, '-', '_' or '.'")
            try:
                size += len(base64.b64decode(value, validate=True))
            except (binascii.Error, TypeError) as exc:
                raise ApiError(400, f"illegal base64 data in data[{key}]") from exc
        if size > _SECRET_MAX_BYTES:
            causes.append(f"data: Too long: must have at most {_SECRET_MAX_BYTES} bytes")
        if body.get("type") == "kubernetes.io/tls":
            causes += [f"data[{k}]: Required value" for k in ("tls.crt", "tls.key")
                       if k not in data]
        if causes:
            raise ApiError(422, f'Secret "{name}" is invalid: [{", ".join(causes)}]',
                           details={"name": name, "kind": "Secret"})

    def _check_namespace(self, ns: str, meta: Json) -> None:
        if meta.get("namespace", ns) != ns:
            raise ApiError(400, "the namespace of the provided object does not match the "
                           "namespace sent on the request")

    def _interfere(self, ns: str, name: str) -> None:
        for item in self._interference:
            if (item.namespace, item.name) == (ns, name):
                self._interference.remove(item)
                current = self.secrets.get((ns, name))
                stored = self._stored_secret(ns, item.write(copy.deepcopy(current)))
                meta = stored["metadata"]
                meta["name"] = name
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", _now())
                meta["resourceVersion"] = self._next_version()
                self.secrets[(ns, name)] = stored
                return

    async def _get_secret(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        with self.lock:
            stored = self.secrets.get((ns, name))
            answer = copy.deepcopy(stored)
            self._interfere(ns, name)
        if answer is None:
            raise self._not_found("secrets", name)
        return web.json_response(answer)

    async def _create_secret(self, request: web.Request) -> web.Response:
        ns = request.match_info["ns"]
        body = await self._json(request)
        meta = body.setdefault("metadata", {})
        self._check_namespace(ns, meta)
        name = meta.get("name") or ""
        if not name:
            raise ApiError(422, "Secret is invalid: metadata.name: Required value: name or "
                           "generateName is required")
        self._validate_secret(ns, name, body)
        with self.lock:
            if (ns, name) in self.secrets:
                raise ApiError(409, f'secrets "{name}" already exists', reason="AlreadyExists",
                               details={"name": name, "kind": "secrets"})
            stored = self._stored_secret(ns, body)
            meta = stored["metadata"]
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(),
                        resourceVersion=self._next_version())
            self.secrets[(ns, name)] = stored
            answer = copy.deepcopy(stored)
        return web.json_response(answer, status=201)

    @staticmethod
    def _stored_secret(ns: str, body: Json) -> Json:
        stored = copy.deepcopy(body)
        stored.update(apiVersion="v1", kind="Secret")
        stored.setdefault("type", "Opaque")
        stored["metadata"]["namespace"] = ns
        # Like the API server: stringData is merged into data and never stored.
        for key, value in (stored.pop("stringData", None) or {}).items():
            stored.setdefault("data", {})[key] = base64.b64encode(value.encode()).decode()
        return stored

    def _update_secret(self, ns: str, name: str, new: Json, *, precondition: str | None,
                       ) -> Json:
        """Store ``new`` over the existing Secret; the caller holds the lock."""
        current = self.secrets.get((ns, name))
        if current is None:
            raise self._not_found("secrets", name)
        if precondition and precondition != current["metadata"]["resourceVersion"]:
            self.conflicts += 1
            raise ApiError(
                409, f'Operation cannot be fulfilled on secrets "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                reason="Conflict", details={"name": name, "kind": "secrets"})
        if new.get("type", current.get("type")) != current.get("type"):
            raise ApiError(422, f'Secret "{name}" is invalid: type: Invalid value: '
                           f'"{new.get("type")}": field is immutable',
                           details={"name": name, "kind": "Secret"})
        self._validate_secret(ns, name, new)
        stored = self._stored_secret(ns, new)
        stored["type"] = current.get("type", "Opaque")
        stored["metadata"].update(
            name=name, uid=current["metadata"]["uid"],
            creationTimestamp=current["metadata"]["creationTimestamp"],
            resourceVersion=self._next_version())
        self.secrets[(ns, name)] = stored
        return copy.deepcopy(stored)

    async def _replace_secret(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        body = await self._json(request)
        meta = body.setdefault("metadata", {})
        self._check_namespace(ns, meta)
        if meta.get("name", name) != name:
            raise ApiError(400, "the name of the object does not match the name on the URL")
        with self.lock:
            answer = self._update_secret(ns, name, body,
                                         precondition=meta.get("resourceVersion"))
        return web.json_response(answer)

    async def _patch_secret(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        if request.content_type not in ("application/merge-patch+json",
                                        "application/strategic-merge-patch+json"):
            raise ApiError(415, "the body of the request was in an unknown format - accepted "
                           "media types include: application/merge-patch+json, "
                           "application/strategic-merge-patch+json")
        patch = await self._json(request)
        with self.lock:
            current = self.secrets.get((ns, name))
            if current is None:
                raise self._not_found("secrets", name)
            precondition = (patch.get("metadata") or {}).get("resourceVersion")
            merged = _merge_patch(current, patch)
            merged["metadata"].pop("resourceVersion", None)
            answer = self._update_secret(ns, name, merged, precondition=precondition)
        return web.json_response(answer)

    async def _delete_secret(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        with self.lock:
            stored = self.secrets.pop((ns, name), None)
            if stored is None:
                raise self._not_found("secrets", name)
            self._next_version()
        return web.json_response({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "kind": "secrets", "uid": stored["metadata"]["uid"]}})

    # ---- CertificateRequests and the simulated cert-manager ----------------------------

    def _require_crd(self) -> None:
        if not self.crd_installed:
            raise web.HTTPNotFound

    def _validate_cr(self, name: str, body: Json) -> None:
        qualified = f'CertificateRequest.{CM_GROUP} "{name}" is invalid'
        if body.get("apiVersion") != f"{CM_GROUP}/{CM_VERSION}" or \
                body.get("kind") != "CertificateRequest":
            raise ApiError(400, f"the API version in the data ({body.get('apiVersion')}) does "
                           f"not match the expected API version ({CM_GROUP}/{CM_VERSION})")
        spec = body.get("spec")
        if not isinstance(spec, dict):
            raise ApiError(422, f"{qualified}: spec: Required value")
        if "duration" in spec:
            try:
                parse_go_duration(spec["duration"])
            except (ValueError, TypeError) as exc:
                raise ApiError(400, f"spec.duration: {exc}") from exc
        ref = spec.get("issuerRef") or {}
        if not ref.get("name"):
            raise ApiError(422, f"{qualified}: spec.issuerRef.name: Required value: must be "
                           "specified")
        unknown = [u for u in spec.get("usages") or [] if u not in _KNOWN_USAGES]
        if unknown:
            raise ApiError(422, f'{qualified}: spec.usages[0]: Unsupported value: "{unknown[0]}"')
        try:
            csr = x509.load_pem_x509_csr(base64.b64decode(spec.get("request", ""), validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ApiError(422, f"{qualified}: spec.request: Invalid value: failed to decode "
                           f"csr: {exc}") from exc
        if not csr.is_signature_valid:
            raise ApiError(422, f"{qualified}: spec.request: Invalid value: csr signature "
                           "is invalid")

    async def _create_cr(self, request: web.Request) -> web.Response:
        self._require_crd()
        ns = request.match_info["ns"]
        body = await self._json(request)
        meta = body.setdefault("metadata", {})
        self._check_namespace(ns, meta)
        name = meta.get("name") or ""
        if not name and meta.get("generateName"):
            name = meta["generateName"] + secrets.token_hex(3)[:5]
        if not name:
            raise ApiError(422, "metadata.name: Required value: name or generateName is "
                           "required")
        self._validate_cr(name, body)
        with self.lock:
            if (ns, name) in self.certificate_requests:
                raise ApiError(409, f'certificaterequests.{CM_GROUP} "{name}" already exists',
                               reason="AlreadyExists",
                               details={"name": name, "group": CM_GROUP,
                                        "kind": "certificaterequests"})
            stored = copy.deepcopy(body)
            stored["metadata"].update(name=name, namespace=ns, uid=str(uuid.uuid4()),
                                      creationTimestamp=_now(),
                                      resourceVersion=self._next_version())
            stored["status"] = {}
            self.certificate_requests[(ns, name)] = stored
            self.created_certificate_requests.append(copy.deepcopy(stored))
            answer = copy.deepcopy(stored)
            outcome = self.outcome
        if outcome != "never":
            loop = asyncio.get_running_loop()
            loop.call_later(self.controller_delay, self._reconcile, ns, name, outcome, 1)
        return web.json_response(answer, status=201)

    def _reconcile(self, ns: str, name: str, outcome: Outcome, step: int) -> None:
        """One step of the simulated cert-manager: approve (or deny), then sign."""
        with self.lock:
            cr = self.certificate_requests.get((ns, name))
            if cr is None:
                return
            status = cr["status"]
            message = self.outcome_message
            if outcome == "deny":
                status["conditions"] = [
                    _condition("Denied", "True", "keyward-test-approver", message),
                    _condition("Ready", "False", "Denied",
                               "The CertificateRequest was denied by an approval controller"),
                ]
                status["failureTime"] = _now()
            elif step == 1:
                status["conditions"] = [
                    _condition("Approved", "True", "cert-manager.io",
                               "Certificate request has been approved by cert-manager.io"),
                    _condition("Ready", "False", "Pending",
                               "Waiting on certificate issuance from order"),
                ]
                asyncio.get_running_loop().call_later(
                    self.controller_delay, self._reconcile, ns, name, outcome, 2)
            elif outcome == "issue":
                self._sign(cr)
            elif outcome == "invalid":
                status["conditions"][1:] = [
                    _condition("InvalidRequest", "True", "RequestParsingError", message),
                    _condition("Ready", "False", "Failed", message),
                ]
                status["failureTime"] = _now()
            else:  # fail
                status["conditions"][1:] = [_condition("Ready", "False", "Failed", message)]
                status["failureTime"] = _now()
            cr["metadata"]["resourceVersion"] = self._next_version()

    def _sign(self, cr: Json) -> None:
        spec = cr["spec"]
        csr = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
        lifetime = parse_go_duration(spec.get("duration", "2160h0m0s"))
        usages = spec.get("usages") or ["digital signature", "key encipherment"]
        cert = self.ca.sign(csr, usages=usages, lifetime=lifetime,
                            whole_subject=self.whole_subject)
        pem = cert.public_bytes(serialization.Encoding.PEM)
        status = cr["status"]
        status["certificate"] = base64.b64encode(pem).decode()
        status["ca"] = base64.b64encode(self.ca.pem).decode()
        status["conditions"][1:] = [
            _condition("Ready", "True", "Issued", "Certificate fetched from issuer successfully"),
        ]

    async def _get_cr(self, request: web.Request) -> web.Response:
        self._require_crd()
        ns, name = request.match_info["ns"], request.match_info["name"]
        with self.lock:
            stored = self.certificate_requests.get((ns, name))
            if stored is None:
                raise self._not_found("certificaterequests", name, CM_GROUP)
            return web.json_response(copy.deepcopy(stored))

    async def _delete_cr(self, request: web.Request) -> web.Response:
        self._require_crd()
        ns, name = request.match_info["ns"], request.match_info["name"]
        with self.lock:
            stored = self.certificate_requests.pop((ns, name), None)
            if stored is None:
                raise self._not_found("certificaterequests", name, CM_GROUP)
            self._next_version()
        # Custom resources answer a DELETE with the deleted object.
        return web.json_response(stored)


@dataclass
class RunningKubeApi:
    """A started fake: ``url`` is what ``kubernetes.client.Configuration(host=...)`` takes."""

    url: str
    fake: FakeKubeApi

    def client(self, token: str | None = None) -> kubernetes.client.ApiClient:
        """A real ``kubernetes`` ApiClient for this server, authenticating the way a
        service account does (``Authorization: Bearer <token>``). Close it after use."""
        return api_client_for(self.url, token if token is not None else self.fake.token)


def api_client_for(url: str, token: str) -> kubernetes.client.ApiClient:
    """An ApiClient for ``url`` with a bearer token (also for addresses nobody serves)."""
    config = kubernetes.client.Configuration(
        host=url, api_key={"authorization": f"Bearer {token}"})
    return kubernetes.client.ApiClient(config)


@contextmanager
def serve(fake: FakeKubeApi, host: str = "127.0.0.1") -> Iterator[RunningKubeApi]:
    """Serve ``fake`` on a free port on a background event-loop thread for the block."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(fake.build_app(), handle_signals=False, access_log=None)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        # Port 0: the OS picks a free port at bind time, so there is no race for it.
        loop.run_until_complete(web.TCPSite(runner, host, 0).start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="fake-kube-api", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("fake Kubernetes API server did not start")
    port = runner.addresses[0][1]
    try:
        yield RunningKubeApi(url=f"http://{host}:{port}", fake=fake)
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
