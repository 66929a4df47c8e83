"""The Temporal Cloud Operations API client keyward uses: one, long-lived, key kept fresh.

:class:`CloudOps` wraps the SDK's own ``temporalio.client.CloudOperationsClient`` (gRPC
through the Rust core, so no grpcio at run time) and adds what keyward needs around it:

* **one connection**, made at the first call and reused by every later one (the codec
  server looks roles up per user; a connection per lookup is what Temporal's sample does
  and what this avoids). Connecting is lazy, so a process starts while Cloud is
  unreachable and each call then fails on its own, retryably;
* **the API key from a file** (``cloud.api_key_file``), re-read before each call when its
  content changed (``keyward.connect.api_key``, the pieces ``temporal.api_key_file``
  uses): a rotated key is used from the next call on, without a restart. The key is
  registered with the log redactor and never logged;
* **the API version pinned** (``cloud.api_version``, sent as ``temporal-cloud-api-version``
  on every call): Cloud interprets requests as that version defines them, which matters
  because UpdateNamespace replaces the spec whole;
* **errors mapped once** (``keyward.cloud.errors``): retryable or permanent from the class;
* **plain results** (``keyward.cloud.models``) instead of protobuf messages.

Calls are not retried here (the SDK's own retry is off): an activity's retry policy, or the
codec server's fail-closed answer, decides what a failure means. ``wait_operation`` is the
one loop, and it rides out transient errors until its deadline because the operation it
watches goes on in Cloud meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final, Self, TypeVar

from temporalio.api.cloud.cloudservice import v1 as cloudservice
from temporalio.client import CloudOperationsClient
from temporalio.service import CloudService, RPCError, TLSConfig

from keyward.cloud.errors import (
    CloudOpsError,
    CloudOpsInvalidRequest,
    CloudOpsOperationFailed,
    CloudOpsOperationTimeout,
    connect_error,
    map_rpc_error,
)
from keyward.cloud.models import CloudNamespace, CloudOperation, CloudUser, OperationState
from keyward.config import is_loopback_host
from keyward.config.cloud import SECTION, CloudSettings
from keyward.connect.api_key import ApiKeyReloader, read_api_key
from keyward.errors import ConfigError
from keyward.log import get_logger

_log = get_logger("keyward.cloud.ops")
_R = TypeVar("_R")

#: GetUsers' own default page size (the proto: "Cannot exceed 1000. Defaults to 100.").
DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
#: Polling faster than this gains nothing and costs rate limit, whatever Cloud suggests.
_MIN_POLL_SECONDS: Final = 0.01


class CloudOps:
    """The account's Cloud Ops API, as keyward uses it. Build it with :meth:`connect`, once
    per process, and share it; it is bound to the event loop of its first call."""

    def __init__(self, client: CloudOperationsClient, settings: CloudSettings,
                 api_keys: ApiKeyReloader) -> None:
        self._client = client
        self._settings = settings
        self._api_keys = api_keys
        self._timeout = timedelta(seconds=settings.timeout_seconds)

    @classmethod
    async def connect(cls, settings: CloudSettings) -> Self:
        """A client for ``settings``: reads the API key file now (a ConfigError naming
        ``cloud.api_key_file`` when it is missing or empty), connects at the first call."""
        if settings.api_key_file is None:
            raise ConfigError(f"{SECTION}.api_key_file",
                              "required to use the Temporal Cloud Operations API")
        if not settings.tls and not is_loopback_host(settings.host):
            raise ConfigError(f"{SECTION}.tls",
                              f"plain text to {settings.host} would send the API key "
                              "unencrypted; only a loopback host may be reached without TLS")
        setting = f"{SECTION}.api_key_file"
        client = await CloudOperationsClient.connect(
            api_key=read_api_key(settings.api_key_file, setting=setting),
            version=settings.api_version, target_host=settings.target,
            tls=_tls(settings), lazy=True)
        # Checked before every call (_call), never on a timer: the watcher is not started,
        # so its interval is unused, and a rotated key is in use from the very next call.
        api_keys = ApiKeyReloader(lambda: client, settings.api_key_file, interval=1.0,
                                  setting=setting, label="cloud ops api key")
        return cls(client, settings, api_keys)

    @property
    def settings(self) -> CloudSettings:
        return self._settings

    # -- users -------------------------------------------------------------------------------

    async def get_user_by_email(self, email: str) -> CloudUser | None:
        """The user with this email (compared case-insensitively), or None when the account
        has none."""
        wanted = email.strip().casefold()
        for user in await self.list_users(email=email.strip()):
            if user.email.casefold() == wanted:
                return user
        return None

    async def list_users(self, *, email: str = "", namespace: str = "",
                         page_size: int = DEFAULT_PAGE_SIZE) -> list[CloudUser]:
        """Every user matching the filters (both optional, ANDed), all pages followed."""
        if not 0 < page_size <= MAX_PAGE_SIZE:
            raise CloudOpsInvalidRequest("get users",
                                         f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        users: list[CloudUser] = []
        token = ""
        seen_tokens: set[str] = set()
        while True:
            response = await self._call("get users", functools.partial(
                self._service.get_users, cloudservice.GetUsersRequest(
                    email=email, namespace=namespace, page_size=page_size, page_token=token)))
            users.extend(CloudUser.from_proto(user) for user in response.users)
            token = response.next_page_token
            if not token:
                return users
            if token in seen_tokens:  # a server bug must not become an endless loop
                raise CloudOpsError("get users", "the same page token came back twice")
            seen_tokens.add(token)

    async def get_user(self, user_id: str) -> CloudUser:
        """One user by id (CloudOpsNotFound when there is none)."""
        response = await self._call("get user", functools.partial(
            self._service.get_user, cloudservice.GetUserRequest(user_id=user_id)))
        return CloudUser.from_proto(response.user)

    # -- namespaces --------------------------------------------------------------------------

    async def get_namespace(self, namespace: str) -> CloudNamespace:
        """The namespace (``<name>.<account>``) with its spec and ``resource_version``."""
        response = await self._call("get namespace", functools.partial(
            self._service.get_namespace, cloudservice.GetNamespaceRequest(namespace=namespace)))
        return CloudNamespace.from_proto(response.namespace)

    async def update_namespace(self, namespace: CloudNamespace, *,
                               async_operation_id: str | None = None) -> CloudOperation:
        """Write ``namespace.spec`` whole, if the namespace is still at
        ``namespace.resource_version``; the started operation (see :meth:`wait_operation`).

        Build ``namespace`` from :meth:`get_namespace` and its ``with_*`` methods. A newer
        version in Cloud is :class:`~keyward.cloud.errors.CloudOpsConflict`: read again,
        re-apply, write again. ``async_operation_id`` (a fresh UUID when not given) makes a
        retried write idempotent: Cloud answers the same id with the same operation.
        """
        request = cloudservice.UpdateNamespaceRequest(
            namespace=namespace.name, spec=namespace.spec,
            resource_version=namespace.resource_version,
            async_operation_id=async_operation_id or str(uuid.uuid4()))
        response = await self._call(
            f"update namespace {namespace.name}",
            functools.partial(self._service.update_namespace, request), write=True)
        return CloudOperation.from_proto(response.async_operation)

    # -- async operations --------------------------------------------------------------------

    async def get_operation(self, operation_id: str) -> CloudOperation:
        """An async operation as it is now."""
        response = await self._call("get async operation", functools.partial(
            self._service.get_async_operation,
            cloudservice.GetAsyncOperationRequest(async_operation_id=operation_id)))
        return CloudOperation.from_proto(response.async_operation)

    async def wait_operation(
            self, operation_id: str, *,
            timeout: float | None = None,  # noqa: ASYNC109 - its expiry is a typed, retryable error
    ) -> CloudOperation:
        """Poll until the operation is fulfilled, and return it.

        Failed, cancelled or rejected: :class:`~keyward.cloud.errors.CloudOpsOperationFailed`
        with Cloud's reason. Still running after ``timeout`` seconds (default
        ``cloud.operation_timeout_seconds``):
        :class:`~keyward.cloud.errors.CloudOpsOperationTimeout` (retryable). A transient
        error while polling is waited out until then; a permanent one is raised at once.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout is not None
                                  else self._settings.operation_timeout_seconds)
        last: CloudOperation | None = None
        problem: CloudOpsError | None = None
        while True:
            try:
                last = await self.get_operation(operation_id)
                problem = None
            except CloudOpsError as error:
                if not error.retryable:
                    raise
                problem = error
                _log.info("cloud ops operation poll failed; polling on",
                          operation_id=operation_id, error=str(error))
            if last is not None and problem is None and last.state.finished:
                if last.state is OperationState.FULFILLED:
                    return last
                raise CloudOpsOperationFailed(operation_id, last.state.value,
                                              last.failure_reason)
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = f"still {last.state.value}" if last is not None else "never read"
                raise CloudOpsOperationTimeout(
                    f"wait for async operation {operation_id}",
                    seen + (f"; last poll: {problem}" if problem is not None else ""))
            await asyncio.sleep(min(self._poll_interval(last), remaining))

    def _poll_interval(self, operation: CloudOperation | None) -> float:
        longest = self._settings.operation_poll_seconds
        if operation is None or operation.check_after is None:
            return longest
        return max(_MIN_POLL_SECONDS, min(longest, operation.check_after.total_seconds()))

    # -- plumbing ----------------------------------------------------------------------------

    @property
    def _service(self) -> CloudService:
        return self._client.cloud_service

    async def _call(self, operation: str, rpc: Callable[..., Awaitable[_R]], *,
                    write: bool = False) -> _R:
        """One RPC (a stub method with its request bound): the key file checked first, then
        the call with keyward's deadline and no SDK retry, its failure mapped."""
        await self._api_keys.check_now()
        try:
            return await rpc(retry=False, timeout=self._timeout)
        except RPCError as error:
            raise map_rpc_error(error, operation, write=write) from error
        except RuntimeError as error:
            mapped = connect_error(error, operation, self._settings.target)
            if mapped is None:
                raise
            raise mapped from error


def _tls(settings: CloudSettings) -> bool | TLSConfig:
    if not settings.tls:
        return False
    if settings.tls_server_ca is None and settings.tls_server_name is None:
        return True
    ca: bytes | None = None
    if settings.tls_server_ca is not None:
        try:
            ca = settings.tls_server_ca.read_bytes()
        except OSError as error:
            raise ConfigError(f"{SECTION}.tls_server_ca",
                              f"cannot read {settings.tls_server_ca}: {error}") from None
    return TLSConfig(server_root_ca_cert=ca, domain=settings.tls_server_name)
