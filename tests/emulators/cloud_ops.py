"""An in-memory Temporal Cloud Operations API (the RPCs keyward uses) over real gRPC.

Built from the SDK's generated ``CloudServiceServicer``
(``temporalio.api.cloud.cloudservice.v1.service_pb2_grpc``) and served by ``grpc.aio``, so
the SDK's own ``temporalio.client.CloudOperationsClient`` (the Rust core underneath) talks to
it unchanged: the same wire messages, metadata and status codes as against
``saas-api.tmprl.cloud:443``. Shapes follow the api-cloud protos (v0.17.0, the release the
protos in temporalio 1.35 are generated from) and what Temporal's own clients expect of the
real service (cloud-cli, the Terraform provider, tcld):

* every call needs ``authorization: Bearer <key>`` with a key in :attr:`CloudOpsEmulator.api_keys`
  (``UNAUTHENTICATED`` otherwise; replace the set at run time to model a rotated or revoked
  key) and ``temporal-cloud-api-version`` in :attr:`~CloudOpsEmulator.api_versions`
  (``INVALID_ARGUMENT`` "API version specified is invalid" otherwise, the answer tcld got
  from Cloud for a version it did not know; a missing header is refused the same way, so a
  client that forgets to pin is caught);
* ``GetUsers``: ``email`` (case-insensitive, exact) and ``namespace`` (users with an
  explicit access to it; account owners and admins reach every namespace through their role,
  not through a listed access) filters, ANDed; users in ascending id order; ``page_size`` 0
  means 100, more than 1000 is ``INVALID_ARGUMENT`` (the proto's limits); ``page_token`` is
  opaque (``INVALID_ARGUMENT`` when it is not one this server issued);
* ``GetUser``, ``GetNamespace``: ``NOT_FOUND`` for an unknown id or namespace;
* ``UpdateNamespace``: the spec is replaced whole, so ``spec.name`` and ``spec.regions``
  must be sent back unchanged (``INVALID_ARGUMENT`` otherwise: a client that sends only
  the parts it edits would wipe the rest in real Cloud); ``resource_version`` is required
  here (stricter than Cloud, so a client that forgets it is caught) and must be the
  current one, else :attr:`~CloudOpsEmulator.conflict_code` (``ABORTED`` by default; see
  :data:`DEFAULT_CONFLICT_CODE` for why); a spec equal to the current one is
  ``INVALID_ARGUMENT`` "nothing to change", as cloud-cli and the Terraform provider expect
  from Cloud; ``accepted_client_ca`` must hold PEM certificates (raw, as cloud-cli and
  Terraform send them now, or base64 of PEM, as tcld and older Terraform did) and never a
  private key; a codec endpoint must be ``https://``. An ``async_operation_id`` seen before
  returns that operation again without applying anything (the Go cloud SDK sets one on
  every write so that a retried write is idempotent). The new spec and a new
  ``resource_version`` are visible at once, the namespace is ``UPDATING`` until the
  operation ends; an operation that fails puts the old spec back (with yet another version);
* ``GetAsyncOperation``: ``PENDING`` for the first half of
  :attr:`~CloudOpsEmulator.operation_delay`, ``IN_PROGRESS`` for the second, then
  ``FULFILLED``, or ``FAILED`` with ``failure_reason`` when
  :attr:`~CloudOpsEmulator.operation_failure` was set as the operation started.

A concurrent writer: :meth:`~CloudOpsEmulator.modify_namespace` edits a namespace at once;
:meth:`~CloudOpsEmulator.interleave_writes` (or :attr:`~CloudOpsEmulator.before_update_namespace`)
does it inside the next UpdateNamespace calls, between the client's read and its write.

Faults, switched per test by setting attributes: :attr:`~CloudOpsEmulator.unavailable_calls`
(the next N calls answer ``UNAVAILABLE``), :attr:`~CloudOpsEmulator.rate_limited_calls`
(``RESOURCE_EXHAUSTED``), :attr:`~CloudOpsEmulator.call_delay` (seconds every call waits
first), :attr:`~CloudOpsEmulator.denied_methods` (``PERMISSION_DENIED``, as for an API key
whose account role lacks the right; :data:`ALL` for every method). Checks run in that order
after the delay: unavailable, API key, API version, rate limit, permission. Every call is
counted per method in :attr:`~CloudOpsEmulator.calls` (refused ones too) and recorded in
:attr:`~CloudOpsEmulator.seen`.

State is guarded by a lock, so tests may read and change it from any thread while the
server runs, in the test's own event loop (:func:`serve`) or on a thread of its own
(:func:`serve_in_thread`, for synchronous callers, other processes and benchmarks that must
keep the emulator off the measured loop). ``grpc.aio`` rather than grpc's threaded server:
measured with ``CloudOperationsClient`` on a 2-core machine, both answer in 0.4-0.9 ms a call
(0.78/0.92 ms one at a time, 0.48/0.39 ms 500 at once), but aio holds no worker thread
during :attr:`~CloudOpsEmulator.call_delay`, so any number of delayed calls (coalescing
tests) can wait at once, and it starts and stops inside the test's own loop.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import copy
import functools
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import grpc
import grpc.aio
from cryptography import x509
from google.protobuf import duration_pb2, timestamp_pb2
from temporalio.api.cloud.cloudservice import v1 as cloudservice
from temporalio.api.cloud.cloudservice.v1 import service_pb2_grpc
from temporalio.api.cloud.identity import v1 as identity
from temporalio.api.cloud.namespace import v1 as namespace_pb
from temporalio.api.cloud.operation import v1 as operation_pb
from temporalio.api.cloud.resource import v1 as resource_pb

from keyward.config.cloud import CloudSettings
from tests.tls_material import ServerTLS

#: The api-cloud release temporalio 1.35's generated protos match (its 76 CloudService RPCs
#: and its enums are v0.17.0's; v0.17.1 only added an Azure cloud provider).
DEFAULT_API_VERSION: Final = "v0.17.0"
DEFAULT_API_KEY: Final = "tmprl-emulator-api-key-0"
API_VERSION_HEADER: Final = "temporal-cloud-api-version"
#: The status a stale ``resource_version`` gets. Temporal documents none for Cloud; the
#: api-cloud protos are linted against Google's AIPs, and AIP-154 (and gRPC's own status
#: guide: "a test-and-set failed, restart the read-modify-write") say ABORTED, where older
#: AIP-154 text said FAILED_PRECONDITION. Tests set :attr:`CloudOpsEmulator.conflict_code`
#: to the other one to prove keyward reads both as a conflict.
DEFAULT_CONFLICT_CODE: Final = grpc.StatusCode.ABORTED
#: :attr:`CloudOpsEmulator.denied_methods` entry that denies every method.
ALL: Final = "*"
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000

_ROLES: Final[Mapping[str, int]] = {
    "owner": identity.AccountAccess.ROLE_OWNER, "admin": identity.AccountAccess.ROLE_ADMIN,
    "developer": identity.AccountAccess.ROLE_DEVELOPER,
    "financeadmin": identity.AccountAccess.ROLE_FINANCE_ADMIN,
    "read": identity.AccountAccess.ROLE_READ,
    "metricsread": identity.AccountAccess.ROLE_METRICS_READ}
_PERMISSIONS: Final[Mapping[str, int]] = {
    "admin": identity.NamespaceAccess.PERMISSION_ADMIN,
    "write": identity.NamespaceAccess.PERMISSION_WRITE,
    "read": identity.NamespaceAccess.PERMISSION_READ}

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


class _Refusal(Exception):
    """Raised inside a handler body; the wrapper answers the call with this status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class SeenCall:
    """One call as the emulator saw it (a test may ask: which key, which version, answered how)."""

    method: str
    api_key: str | None
    api_version: str | None
    code: grpc.StatusCode


@dataclass
class _Operation:
    proto: operation_pb.AsyncOperation
    started: float
    delay: float
    failure: str | None
    namespace: str
    #: The spec and version the namespace had before; put back if the operation fails.
    previous_spec: namespace_pb.NamespaceSpec
    settled: bool = False


@dataclass
class CloudOpsEmulator(service_pb2_grpc.CloudServiceServicer):
    """The account's state, the fault switches and the counters. Tests read and set them."""

    #: API keys accepted as ``Bearer`` tokens; assign a new set to rotate or revoke.
    api_keys: set[str] = field(default_factory=lambda: {DEFAULT_API_KEY})
    #: ``temporal-cloud-api-version`` values accepted.
    api_versions: set[str] = field(default_factory=lambda: {DEFAULT_API_VERSION})
    #: Seconds an UpdateNamespace operation takes (half pending, half in progress).
    operation_delay: float = 0.2
    #: The ``check_duration`` each AsyncOperation suggests to pollers.
    check_duration: float = 0.05
    #: When set, operations started from now on end FAILED with this ``failure_reason``.
    operation_failure: str | None = None
    #: The status a stale ``resource_version`` is answered with.
    conflict_code: grpc.StatusCode = DEFAULT_CONFLICT_CODE
    #: The next N calls (after the delay) answer UNAVAILABLE.
    unavailable_calls: int = 0
    #: The next N authenticated calls answer RESOURCE_EXHAUSTED.
    rate_limited_calls: int = 0
    #: Seconds every call waits before it is answered.
    call_delay: float = 0.0
    #: Methods (``"UpdateNamespace"``, or :data:`ALL`) answered PERMISSION_DENIED.
    denied_methods: set[str] = field(default_factory=set)
    #: Called with each admitted UpdateNamespace request before it is looked at (lock held,
    #: so :meth:`modify_namespace` may be called from it): another writer whose change lands
    #: between the client's read and its write. See :meth:`interleave_writes`.
    before_update_namespace: Callable[[cloudservice.UpdateNamespaceRequest], None] | None = \
        None
    users: dict[str, identity.User] = field(default_factory=dict)
    namespaces: dict[str, namespace_pb.Namespace] = field(default_factory=dict)
    operations: dict[str, _Operation] = field(default_factory=dict)
    #: Calls per method name (``"GetUsers"``), counted before any check.
    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    seen: list[SeenCall] = field(default_factory=list)
    #: The client connections calls came over (``ipv4:127.0.0.1:54321``): one per channel.
    peers: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- seeding and inspecting (for tests) --------------------------------------------------

    def add_user(self, email: str, *, account_role: str = "developer",
                 namespaces: Mapping[str, str] | None = None,
                 user_id: str | None = None) -> identity.User:
        """A user with an account role (``owner``, ``admin``, ``developer``, ``financeadmin``,
        ``read``, ``metricsread``) and namespace accesses (``admin``, ``write``, ``read``)."""
        access = identity.Access(account_access=identity.AccountAccess(
            role=_ROLES[account_role]))  # type: ignore[arg-type]
        for ns, permission in (namespaces or {}).items():
            access.namespace_accesses[ns].permission = \
                _PERMISSIONS[permission]  # type: ignore[assignment]
        user = identity.User(
            id=user_id or uuid.uuid4().hex, resource_version=_version(),
            spec=identity.UserSpec(email=email, access=access),
            state=resource_pb.ResourceState.RESOURCE_STATE_ACTIVE, created_time=_now())
        with self.lock:
            self.users[user.id] = user
        return copy.deepcopy(user)

    def add_namespace(self, name: str, *, accepted_client_ca: bytes = b"",
                      codec_endpoint: str = "", pass_access_token: bool = False,
                      include_cross_origin_credentials: bool = False,
                      regions: Collection[str] = ("aws-us-east-1",),
                      retention_days: int = 30) -> namespace_pb.Namespace:
        """A namespace (``<name>.<account>``, as Cloud names them) with its mTLS CA bundle and
        codec-server setting; the other spec fields are filled so a whole-spec write has
        something to lose."""
        spec = namespace_pb.NamespaceSpec(
            name=name.partition(".")[0], regions=list(regions), retention_days=retention_days,
            mtls_auth=namespace_pb.MtlsAuthSpec(accepted_client_ca=accepted_client_ca,
                                                enabled=bool(accepted_client_ca)))
        spec.search_attributes["CustomerId"] = \
            namespace_pb.NamespaceSpec.SEARCH_ATTRIBUTE_TYPE_KEYWORD  # type: ignore[assignment]
        if codec_endpoint:
            spec.codec_server.CopyFrom(namespace_pb.CodecServerSpec(
                endpoint=codec_endpoint, pass_access_token=pass_access_token,
                include_cross_origin_credentials=include_cross_origin_credentials))
        namespace = namespace_pb.Namespace(
            namespace=name, resource_version=_version(), spec=spec,
            state=resource_pb.ResourceState.RESOURCE_STATE_ACTIVE, created_time=_now())
        with self.lock:
            self.namespaces[name] = namespace
        return copy.deepcopy(namespace)

    def namespace(self, name: str) -> namespace_pb.Namespace:
        """The namespace as GetNamespace would answer now (a copy)."""
        with self.lock:
            self._settle()
            return copy.deepcopy(self.namespaces[name])

    def modify_namespace(self, name: str, change: Callable[[namespace_pb.NamespaceSpec], None]
                         ) -> str:
        """Another writer edits the namespace (``change`` edits the spec in place): a new
        ``resource_version``, which this returns, makes every earlier one stale."""
        with self.lock:
            stored = self.namespaces[name]
            change(stored.spec)
            stored.resource_version = _version()
            return stored.resource_version

    def interleave_writes(self, name: str,
                          change: Callable[[namespace_pb.NamespaceSpec], None], *,
                          times: int | None = None) -> list[str]:
        """Make another writer edit namespace ``name`` (with ``change``, as
        :meth:`modify_namespace`) just before each of the next ``times`` UpdateNamespace calls
        (every one when None) is checked, so each such write carries a stale version. Returns
        the list the versions it produced are appended to."""
        versions: list[str] = []
        left = [times]

        def hook(request: cloudservice.UpdateNamespaceRequest) -> None:
            if request.namespace != name or left[0] == 0:
                return
            if left[0] is not None:
                left[0] -= 1
            versions.append(self.modify_namespace(name, change))

        self.before_update_namespace = hook
        return versions

    def calls_to(self, method: str) -> int:
        with self.lock:
            return self.calls[method]

    def reset_counts(self) -> None:
        with self.lock:
            self.calls.clear()
            self.seen.clear()
            self.peers.clear()

    # -- plumbing ----------------------------------------------------------------------------

    async def _admit(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        """The checks every call passes before its handler, in the documented order."""
        metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
        authorization = metadata.get("authorization")
        api_key = authorization.removeprefix("Bearer ") if isinstance(authorization, str) \
            and authorization.startswith("Bearer ") else None
        version = metadata.get(API_VERSION_HEADER)
        version = version if isinstance(version, str) else None
        with self.lock:
            self.calls[method] += 1
            delay = self.call_delay
        if delay:
            await asyncio.sleep(delay)
        with self.lock:
            if self.unavailable_calls > 0:
                self.unavailable_calls -= 1
                raise _Refusal(grpc.StatusCode.UNAVAILABLE, "service unavailable")
            if api_key is None or api_key not in self.api_keys:
                raise _Refusal(grpc.StatusCode.UNAUTHENTICATED, "Request unauthenticated")
            if version not in self.api_versions:
                raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                               "API version specified is invalid")
            if self.rate_limited_calls > 0:
                self.rate_limited_calls -= 1
                raise _Refusal(grpc.StatusCode.RESOURCE_EXHAUSTED, "request rate limit exceeded")
            if method in self.denied_methods or ALL in self.denied_methods:
                raise _Refusal(grpc.StatusCode.PERMISSION_DENIED,
                               f"the caller is not allowed to {method}")

    def _record(self, method: str, context: grpc.aio.ServicerContext[Any, Any],
                code: grpc.StatusCode) -> None:
        metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
        authorization = metadata.get("authorization")
        version = metadata.get(API_VERSION_HEADER)
        with self.lock:
            self.peers.add(context.peer())
            self.seen.append(SeenCall(
                method,
                authorization.removeprefix("Bearer ") if isinstance(authorization, str) else None,
                version if isinstance(version, str) else None, code))

    def _settle(self) -> None:
        """Finish the operations whose time is up (called with the lock held)."""
        now = time.monotonic()
        for operation in self.operations.values():
            if operation.settled or now - operation.started < operation.delay:
                continue
            operation.settled = True
            operation.proto.finished_time.CopyFrom(_now())
            stored = self.namespaces.get(operation.namespace)
            if operation.failure is not None:
                operation.proto.state = operation_pb.AsyncOperation.STATE_FAILED
                operation.proto.failure_reason = operation.failure
                if stored is not None:
                    stored.spec.CopyFrom(operation.previous_spec)
                    stored.resource_version = _version()
            else:
                operation.proto.state = operation_pb.AsyncOperation.STATE_FULFILLED
            if stored is not None and not any(
                    not other.settled and other.namespace == operation.namespace
                    for other in self.operations.values()):
                stored.state = resource_pb.ResourceState.RESOURCE_STATE_ACTIVE

    def _operation_now(self, operation: _Operation) -> operation_pb.AsyncOperation:
        if not operation.settled:
            elapsed = time.monotonic() - operation.started
            operation.proto.state = operation_pb.AsyncOperation.STATE_PENDING \
                if elapsed < operation.delay / 2 else operation_pb.AsyncOperation.STATE_IN_PROGRESS
        return copy.deepcopy(operation.proto)

    # -- the RPCs ----------------------------------------------------------------------------

    @staticmethod
    def _rpc(handler: _Handler) -> _Handler:
        """Wrap a synchronous handler body: checks first, the lock around it, refusals as
        statuses (``context.abort`` must be awaited outside the lock)."""
        method = handler.__name__

        @functools.wraps(handler)
        async def run(self: CloudOpsEmulator, request: Any,
                      context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            try:
                await self._admit(method, context)
                with self.lock:
                    self._settle()
                    answer = handler(self, request)
            except _Refusal as refusal:
                self._record(method, context, refusal.code)
                await context.abort(refusal.code, refusal.message)
                raise AssertionError("context.abort returned") from None
            self._record(method, context, grpc.StatusCode.OK)
            return answer

        return run  # type: ignore[return-value]

    @_rpc
    def GetUsers(self, request: cloudservice.GetUsersRequest) -> cloudservice.GetUsersResponse:
        page_size = request.page_size or DEFAULT_PAGE_SIZE
        if page_size < 0 or page_size > MAX_PAGE_SIZE:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                           f"page_size must be between 0 and {MAX_PAGE_SIZE}")
        after = _read_page_token(request.page_token)
        email = request.email.casefold()
        matching = [user for user_id, user in sorted(self.users.items())
                    if (after is None or user_id > after)
                    and (not email or user.spec.email.casefold() == email)
                    and (not request.namespace
                         or request.namespace in user.spec.access.namespace_accesses)]
        page = matching[:page_size]
        more = len(matching) > page_size
        return cloudservice.GetUsersResponse(
            users=[copy.deepcopy(user) for user in page],
            next_page_token=_page_token(page[-1].id) if more else "")

    @_rpc
    def GetUser(self, request: cloudservice.GetUserRequest) -> cloudservice.GetUserResponse:
        user = self.users.get(request.user_id)
        if user is None:
            raise _Refusal(grpc.StatusCode.NOT_FOUND, f"user not found: {request.user_id}")
        return cloudservice.GetUserResponse(user=copy.deepcopy(user))

    @_rpc
    def GetNamespace(self, request: cloudservice.GetNamespaceRequest
                     ) -> cloudservice.GetNamespaceResponse:
        return cloudservice.GetNamespaceResponse(
            namespace=copy.deepcopy(self._stored(request.namespace)))

    @_rpc
    def UpdateNamespace(self, request: cloudservice.UpdateNamespaceRequest
                        ) -> cloudservice.UpdateNamespaceResponse:
        if self.before_update_namespace is not None:
            self.before_update_namespace(request)
        stored = self._stored(request.namespace)
        if request.async_operation_id and request.async_operation_id in self.operations:
            # A retried write: the operation it started, not a second change.
            return cloudservice.UpdateNamespaceResponse(
                async_operation=self._operation_now(self.operations[request.async_operation_id]))
        if not request.resource_version:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "resource_version is required")
        if request.resource_version != stored.resource_version:
            raise _Refusal(self.conflict_code,
                           f"resource version {request.resource_version!r} is not the latest; "
                           "read the namespace again")
        _check_spec(stored.spec, request.spec)
        if request.spec == stored.spec:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "nothing to change")
        operation_id = request.async_operation_id or f"emulator-op-{uuid.uuid4().hex}"
        proto = operation_pb.AsyncOperation(
            id=operation_id, state=operation_pb.AsyncOperation.STATE_PENDING,
            operation_type="UpdateNamespace", started_time=_now(),
            check_duration=_duration(self.check_duration))
        self.operations[operation_id] = _Operation(
            proto, time.monotonic(), self.operation_delay, self.operation_failure,
            request.namespace, copy.deepcopy(stored.spec))
        stored.spec.CopyFrom(request.spec)
        stored.resource_version = _version()
        stored.state = resource_pb.ResourceState.RESOURCE_STATE_UPDATING
        stored.async_operation_id = operation_id
        stored.last_modified_time.CopyFrom(_now())
        self._settle()  # a zero delay finishes at once
        return cloudservice.UpdateNamespaceResponse(
            async_operation=self._operation_now(self.operations[operation_id]))

    @_rpc
    def GetAsyncOperation(self, request: cloudservice.GetAsyncOperationRequest
                          ) -> cloudservice.GetAsyncOperationResponse:
        operation = self.operations.get(request.async_operation_id)
        if operation is None:
            raise _Refusal(grpc.StatusCode.NOT_FOUND,
                           f"async operation not found: {request.async_operation_id}")
        return cloudservice.GetAsyncOperationResponse(
            async_operation=self._operation_now(operation))

    def _stored(self, name: str) -> namespace_pb.Namespace:
        stored = self.namespaces.get(name)
        if stored is None:
            raise _Refusal(grpc.StatusCode.NOT_FOUND, f"namespace not found: {name}")
        return stored


def _check_spec(current: namespace_pb.NamespaceSpec, new: namespace_pb.NamespaceSpec) -> None:
    """What Cloud refuses in a whole-spec write that keyward could get wrong."""
    if new.name != current.name or list(new.regions) != list(current.regions):
        raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                       "spec.name and spec.regions cannot be changed by UpdateNamespace; send "
                       "the whole spec as read")
    bundle = new.mtls_auth.accepted_client_ca
    if bundle:
        pem = bundle if b"-----BEGIN" in bundle else _base64_or_empty(bundle)
        if b"PRIVATE KEY" in pem:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                           "accepted_client_ca must not contain a private key")
        try:
            x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT,
                           "accepted_client_ca is not a PEM certificate bundle") from None
    endpoint = new.codec_server.endpoint
    if endpoint and not endpoint.startswith("https://"):
        raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "codec server endpoint must be https")


def _base64_or_empty(data: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error:
        return b""


def _page_token(last_id: str) -> str:
    return base64.urlsafe_b64encode(f"after:{last_id}".encode()).decode()


def _read_page_token(token: str) -> str | None:
    if not token:
        return None
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text.startswith("after:"):
        raise _Refusal(grpc.StatusCode.INVALID_ARGUMENT, "invalid page token")
    return text.removeprefix("after:")


def _version() -> str:
    return uuid.uuid4().hex[:12]


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration


# -- a sample account ---------------------------------------------------------------------------

#: The namespaces of :func:`seed_sample_account` (Cloud names them ``<name>.<account id>``).
ORDERS: Final = "orders.a1b2c"
BILLING: Final = "billing.a1b2c"
#: email → (account role, namespace accesses) of :func:`seed_sample_account`: one user per
#: account role and per namespace permission, and one with no access at all.
SAMPLE_USERS: Final[Mapping[str, tuple[str, Mapping[str, str]]]] = {
    "owner@example.com": ("owner", {}),
    "admin@example.com": ("admin", {}),
    "developer@example.com": ("developer", {}),
    "finance@example.com": ("financeadmin", {}),
    "reader@example.com": ("read", {}),
    "metrics@example.com": ("metricsread", {}),
    "ns-admin@example.com": ("developer", {ORDERS: "admin"}),
    "ns-write@example.com": ("developer", {ORDERS: "write", BILLING: "read"}),
    "ns-read@example.com": ("read", {ORDERS: "read"}),
    "no-access@example.com": ("read", {}),
}


def seed_sample_account(emulator: CloudOpsEmulator, *, ca_pem: bytes,
                        codec_endpoint: str = "https://codec.example.com") -> None:
    """:data:`SAMPLE_USERS` and two namespaces: :data:`ORDERS` (trusting ``ca_pem``, with a
    codec endpoint) and :data:`BILLING` (the same CA, no codec server)."""
    for email, (role, accesses) in SAMPLE_USERS.items():
        emulator.add_user(email, account_role=role, namespaces=accesses)
    emulator.add_namespace(ORDERS, accepted_client_ca=ca_pem, codec_endpoint=codec_endpoint,
                           pass_access_token=True)
    emulator.add_namespace(BILLING, accepted_client_ca=ca_pem)


# -- serving ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningCloudOps:
    """A started emulator: ``host:port`` is what ``CloudOperationsClient`` connects to."""

    host: str
    port: int
    emulator: CloudOpsEmulator
    #: The TLS material when the listener is TLS (its CA is what a client must trust).
    tls: ServerTLS | None = None

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def settings(self, api_key_file: Path, **overrides: Any) -> CloudSettings:
        """keyward's ``[cloud]`` settings for this server (fast polling for tests)."""
        values: dict[str, Any] = {
            "api_key_file": api_key_file, "host": self.host, "port": self.port,
            "tls": self.tls is not None, "api_version": DEFAULT_API_VERSION,
            "timeout_seconds": 5.0, "operation_poll_seconds": 0.05}
        if self.tls is not None:
            values["tls_server_ca"] = self.tls.ca_cert
        values.update(overrides)
        return CloudSettings(**values)


@asynccontextmanager
async def serve(emulator: CloudOpsEmulator, *, host: str = "127.0.0.1",
                tls: ServerTLS | None = None) -> AsyncIterator[RunningCloudOps]:
    """Serve ``emulator`` on a free port in the running event loop for the block."""
    server = grpc.aio.server()
    service_pb2_grpc.add_CloudServiceServicer_to_server(emulator, server)
    if tls is None:
        port = server.add_insecure_port(f"{host}:0")  # port 0: the OS picks a free one
    else:
        credentials = grpc.ssl_server_credentials(
            [(tls.key.read_bytes(), tls.cert.read_bytes())])
        port = server.add_secure_port(f"{host}:0", credentials)
    await server.start()
    try:
        yield RunningCloudOps(host, port, emulator, tls)
    finally:
        # No grace: a call held by call_delay must not keep a test waiting.
        await server.stop(None)


@contextmanager
def serve_in_thread(emulator: CloudOpsEmulator, *, host: str = "127.0.0.1",
                    tls: ServerTLS | None = None) -> Iterator[RunningCloudOps]:
    """As :func:`serve`, on an event loop of its own thread: for synchronous code, and for a
    server another process (``codec_server.py``) or a busy benchmark loop talks to."""
    loop = asyncio.new_event_loop()
    started: asyncio.Future[RunningCloudOps] = loop.create_future()
    stop = asyncio.Event()

    async def run() -> None:
        try:
            async with serve(emulator, host=host, tls=tls) as running:
                started.set_result(running)
                await stop.wait()
        except Exception as exc:  # noqa: BLE001 - handed to the starting thread, which raises it
            if not started.done():
                started.set_exception(exc)

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),),
                              name="cloud-ops-emulator", daemon=True)
    thread.start()
    try:
        running = asyncio.run_coroutine_threadsafe(_wait(started), loop).result(10)
        yield running
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


async def _wait(future: Awaitable[RunningCloudOps]) -> RunningCloudOps:
    return await future
