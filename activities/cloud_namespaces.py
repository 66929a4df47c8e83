"""Activities that read a Temporal Cloud namespace's trust and codec endpoint and change
them, adapting :class:`keyward.services.cloud_namespaces.CloudNamespaces` to Temporal.

Registered only when the worker's settings have ``cloud.api_key_file``. Their inputs are
untrusted (docs/trust-boundary.md §5), so before any Ops API call:

* the namespace must be Cloud's ``<name>.<account-id>`` and listed in the worker's
  ``cloud.namespaces`` (empty by default: then these activities touch no namespace);
* a change (a CA added, the codec endpoint set) must have arrived encrypted
  (``authenticated``, which the worker's payload converter sets and plain JSON cannot);
* a codec endpoint must be one of the worker's ``cloud.codec_endpoints``: the Web UI sends
  payloads, and with ``pass_access_token`` each user's Cloud access token, to it;
* a CA must be CA certificates only (no leaf, no private key), as for the operator command.

Removing a CA retires trust and is no activity: only ``keyward cloud ca remove`` does it.

``async def``: the Ops API client is asynchronous, so these run on the worker's event loop.
The client is made at the first call (reading ``cloud.api_key_file``), so building the
activities connects nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from temporalio import activity

from keyward.cloud.names import check_codec_endpoint, check_namespace_name
from keyward.cloud.ops import CloudOps
from keyward.config.cloud import CloudSettings
from keyward.contracts import failures
from keyward.contracts.cloud import (
    ADD_ACCEPTED_CLIENT_CA,
    READ_CLOUD_NAMESPACE,
    SET_NAMESPACE_CODEC_SERVER,
    AddClientCAInput,
    CloudNamespaceChange,
    CloudNamespaceTrust,
    ReadCloudNamespaceInput,
    SetCodecServerInput,
)
from keyward.errors import KeywardError
from keyward.services.cloud_namespaces import CloudNamespaces
from keyward.temporal.failures import as_temporal_failure_async

Connect = Callable[[CloudSettings], Awaitable[CloudOps]]


class CloudNamespaceActivities:
    """Temporal's view of :class:`~keyward.services.cloud_namespaces.CloudNamespaces`, with
    the worker's settings deciding which namespaces and codec endpoints inputs may name."""

    def __init__(self, settings: CloudSettings, *, connect: Connect = CloudOps.connect) -> None:
        self._settings = settings
        self._connect = connect
        self._service: CloudNamespaces | None = None
        self._connecting = asyncio.Lock()

    @activity.defn(name=READ_CLOUD_NAMESPACE.name)
    async def read_namespace(self, request: ReadCloudNamespaceInput) -> CloudNamespaceTrust:
        async def run() -> CloudNamespaceTrust:
            self._check_namespace(request.namespace)
            return await (await self._namespaces()).read(request.namespace)

        return await as_temporal_failure_async(run)

    @activity.defn(name=ADD_ACCEPTED_CLIENT_CA.name)
    async def add_client_ca(self, request: AddClientCAInput) -> CloudNamespaceChange:
        """Add CA certificates to the namespace's accepted client CAs (no-op if there)."""
        async def run() -> CloudNamespaceChange:
            self._check_namespace(request.namespace)
            _check_authenticated(request.authenticated, ADD_ACCEPTED_CLIENT_CA.name)
            return await (await self._namespaces()).add_client_ca(
                request.namespace, request.ca_pem, source="the CA in the input")

        return _logged(await as_temporal_failure_async(run))

    @activity.defn(name=SET_NAMESPACE_CODEC_SERVER.name)
    async def set_codec_server(self, request: SetCodecServerInput) -> CloudNamespaceChange:
        """Set the namespace's codec endpoint to one the worker's settings list."""
        async def run() -> CloudNamespaceChange:
            self._check_namespace(request.namespace)
            _check_authenticated(request.authenticated, SET_NAMESPACE_CODEC_SERVER.name)
            check_codec_endpoint(request.endpoint)
            if request.endpoint not in self._settings.codec_endpoints:
                raise KeywardError(
                    f"codec endpoint {request.endpoint!r} is not listed in the worker's "
                    "cloud.codec_endpoints; an activity sets only an endpoint the worker's "
                    "settings name (set another with 'keyward cloud codec-server set')",
                    failure_type=failures.CLOUD_NAMESPACE_NOT_ALLOWED)
            return await (await self._namespaces()).set_codec_server(
                request.namespace, request.endpoint,
                pass_access_token=request.pass_access_token,
                include_cross_origin_credentials=request.include_cross_origin_credentials)

        return _logged(await as_temporal_failure_async(run))

    def _check_namespace(self, namespace: str) -> None:
        check_namespace_name(namespace)
        if namespace not in self._settings.namespaces:
            raise KeywardError(
                f"namespace {namespace} is not listed in the worker's cloud.namespaces; "
                "keyward's activities read and change only the Cloud namespaces its settings "
                "name", failure_type=failures.CLOUD_NAMESPACE_NOT_ALLOWED)

    async def _namespaces(self) -> CloudNamespaces:
        async with self._connecting:
            if self._service is None:
                self._service = CloudNamespaces(await self._connect(self._settings))
            return self._service


def _check_authenticated(authenticated: bool, activity_type: str) -> None:
    if not authenticated:
        raise KeywardError(
            f"refusing {activity_type}: its input did not arrive encrypted (plain JSON, which "
            "anyone who can start an execution can send, never changes a namespace's trust)",
            failure_type=failures.UNAUTHENTICATED_INPUT)


def _logged(change: CloudNamespaceChange) -> CloudNamespaceChange:
    activity.logger.info("%s", change.summary)
    return change
