"""What the Cloud Ops API returns, as plain frozen dataclasses, and the CA bundle's encoding.

Callers (the codec server's role lookup, the namespace CA commands) decide from these and
never touch protobuf, with one exception kept on purpose: :class:`CloudNamespace` carries
the namespace's whole ``spec`` as read, because ``UpdateNamespace`` replaces the spec whole.
An edit (:meth:`CloudNamespace.with_accepted_client_ca`,
:meth:`CloudNamespace.with_codec_server`) copies that spec and changes one part, so regions,
retention, search attributes and fields keyward's protos do not even know (protobuf keeps
unknown fields) go back to Cloud exactly as they came.

Roles and permissions are :class:`enum.StrEnum` members named as Cloud's own strings
(``owner``, ``write``...). A value these protos do not know reads as ``UNSPECIFIED``, which
grants nothing.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

from cryptography import x509
from temporalio.api.cloud.identity import v1 as identity
from temporalio.api.cloud.namespace import v1 as namespace_pb
from temporalio.api.cloud.operation import v1 as operation_pb
from temporalio.api.cloud.resource import v1 as resource_pb

from keyward.cloud.errors import CloudOpsError, CloudOpsInvalidRequest
from keyward.contracts.cloud import CodecServerSetting

#: A namespace's codec-server setting: the contract's own dataclass, so what the Ops API
#: returns is what activities and ``keyward cloud`` report, without a copy.
CodecServer = CodecServerSetting

_E = TypeVar("_E", bound=StrEnum)


class AccountRole(StrEnum):
    """A user's account-wide role (``identity.v1.AccountAccess.Role``)."""

    OWNER = "owner"
    ADMIN = "admin"
    DEVELOPER = "developer"
    FINANCE_ADMIN = "financeadmin"
    READ = "read"
    METRICS_READ = "metricsread"
    UNSPECIFIED = "unspecified"


class NamespacePermission(StrEnum):
    """A user's access to one namespace (``identity.v1.NamespaceAccess.Permission``)."""

    ADMIN = "admin"
    WRITE = "write"
    READ = "read"
    UNSPECIFIED = "unspecified"


class OperationState(StrEnum):
    """Where an async operation is (``operation.v1.AsyncOperation.State``)."""

    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    FULFILLED = "fulfilled"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNSPECIFIED = "unspecified"

    @property
    def finished(self) -> bool:
        return self in _FINISHED

    @property
    def succeeded(self) -> bool:
        return self is OperationState.FULFILLED


_FINISHED = frozenset({OperationState.FULFILLED, OperationState.FAILED,
                       OperationState.CANCELLED, OperationState.REJECTED})

_ROLES: Mapping[int, AccountRole] = {
    identity.AccountAccess.ROLE_OWNER: AccountRole.OWNER,
    identity.AccountAccess.ROLE_ADMIN: AccountRole.ADMIN,
    identity.AccountAccess.ROLE_DEVELOPER: AccountRole.DEVELOPER,
    identity.AccountAccess.ROLE_FINANCE_ADMIN: AccountRole.FINANCE_ADMIN,
    identity.AccountAccess.ROLE_READ: AccountRole.READ,
    identity.AccountAccess.ROLE_METRICS_READ: AccountRole.METRICS_READ,
}
_PERMISSIONS: Mapping[int, NamespacePermission] = {
    identity.NamespaceAccess.PERMISSION_ADMIN: NamespacePermission.ADMIN,
    identity.NamespaceAccess.PERMISSION_WRITE: NamespacePermission.WRITE,
    identity.NamespaceAccess.PERMISSION_READ: NamespacePermission.READ,
}
_STATES: Mapping[int, OperationState] = {
    operation_pb.AsyncOperation.STATE_PENDING: OperationState.PENDING,
    operation_pb.AsyncOperation.STATE_IN_PROGRESS: OperationState.IN_PROGRESS,
    operation_pb.AsyncOperation.STATE_FULFILLED: OperationState.FULFILLED,
    operation_pb.AsyncOperation.STATE_FAILED: OperationState.FAILED,
    operation_pb.AsyncOperation.STATE_CANCELLED: OperationState.CANCELLED,
    operation_pb.AsyncOperation.STATE_REJECTED: OperationState.REJECTED,
}


def _member(value: int, legacy: str, table: Mapping[int, _E], kind: type[_E],
            unspecified: _E) -> _E:
    """The enum's member; else the pre-v0.3.0 string field (a version pinned that old
    fills only that one); else UNSPECIFIED."""
    if value in table:
        return table[value]
    try:
        return kind(legacy.lower()) if legacy else unspecified
    except ValueError:
        return unspecified


def _resource_state(value: int) -> str:
    """``RESOURCE_STATE_ACTIVE`` → ``"active"`` (``"unspecified"`` for an unknown value)."""
    try:
        return resource_pb.ResourceState.Name(
            value).removeprefix("RESOURCE_STATE_").lower()  # type: ignore[arg-type]
    except ValueError:
        return "unspecified"


@dataclass(frozen=True)
class CloudUser:
    """A Cloud user: who they are and what their account role and namespace accesses are."""

    id: str
    email: str
    account_role: AccountRole
    #: Namespace (``<name>.<account>``) → permission, for the namespaces listed on the user
    #: (an account owner or admin reaches every namespace without one).
    namespace_accesses: Mapping[str, NamespacePermission]
    #: ``active``, ``activating`` (invited, not yet signed in), ``suspended``...
    state: str
    resource_version: str

    @classmethod
    def from_proto(cls, user: identity.User) -> CloudUser:
        access = user.spec.access
        role = _member(access.account_access.role, access.account_access.role_deprecated,
                       _ROLES, AccountRole, AccountRole.UNSPECIFIED)
        accesses = {
            name: _member(entry.permission, entry.permission_deprecated, _PERMISSIONS,
                          NamespacePermission, NamespacePermission.UNSPECIFIED)
            for name, entry in sorted(access.namespace_accesses.items())}
        return cls(id=user.id, email=user.spec.email, account_role=role,
                   namespace_accesses=MappingProxyType(accesses),
                   state=_resource_state(user.state), resource_version=user.resource_version)

    def permission_in(self, namespace: str) -> NamespacePermission | None:
        """The access listed for ``namespace``, or None (account roles not considered)."""
        return self.namespace_accesses.get(namespace)


@dataclass(frozen=True)
class CloudNamespace:
    """A namespace as read, with the ``resource_version`` an update must send back."""

    name: str
    resource_version: str
    #: The whole spec as read. Treat it as read-only: the ``with_*`` methods copy it.
    spec: namespace_pb.NamespaceSpec = field(repr=False)
    #: ``active``, ``updating`` (an operation is running), ...
    state: str = "active"

    @classmethod
    def from_proto(cls, namespace: namespace_pb.Namespace) -> CloudNamespace:
        return cls(name=namespace.namespace, resource_version=namespace.resource_version,
                   spec=copy.deepcopy(namespace.spec), state=_resource_state(namespace.state))

    @property
    def accepted_client_ca_pem(self) -> str:
        """Every CA the namespace accepts client certificates from, one PEM bundle ("" if
        none). Raises CloudOpsError when Cloud holds something that is not PEM."""
        return decode_ca_bundle(self.spec.mtls_auth.accepted_client_ca)

    @property
    def mtls_enabled(self) -> bool:
        return self.spec.mtls_auth.enabled

    @property
    def codec_server(self) -> CodecServer | None:
        if not self.spec.HasField("codec_server") or not self.spec.codec_server.endpoint:
            return None
        codec = self.spec.codec_server
        return CodecServer(codec.endpoint, codec.pass_access_token,
                           codec.include_cross_origin_credentials)

    def with_accepted_client_ca(self, pem: str) -> CloudNamespace:
        """This namespace with the CA bundle replaced by ``pem`` (everything else as read,
        mTLS left on or off as it was). Raises CloudOpsInvalidRequest when ``pem`` is not a
        bundle of certificates, or holds a private key."""
        spec = copy.deepcopy(self.spec)
        spec.mtls_auth.accepted_client_ca = encode_ca_bundle(pem)
        return CloudNamespace(self.name, self.resource_version, spec, self.state)

    def with_codec_server(self, codec: CodecServer | None) -> CloudNamespace:
        """This namespace with its codec-server setting replaced (None removes it); a custom
        error message configured in Cloud is kept."""
        spec = copy.deepcopy(self.spec)
        if codec is None:
            spec.ClearField("codec_server")
        else:
            spec.codec_server.endpoint = codec.endpoint
            spec.codec_server.pass_access_token = codec.pass_access_token
            spec.codec_server.include_cross_origin_credentials = \
                codec.include_cross_origin_credentials
        return CloudNamespace(self.name, self.resource_version, spec, self.state)


@dataclass(frozen=True)
class CloudOperation:
    """An async operation (what UpdateNamespace starts) as last seen."""

    id: str
    state: OperationState
    #: Cloud's reason when the operation failed ("" otherwise).
    failure_reason: str = ""
    operation_type: str = ""
    #: When Cloud suggests looking again (None when it says nothing).
    check_after: dt.timedelta | None = None

    @classmethod
    def from_proto(cls, operation: operation_pb.AsyncOperation) -> CloudOperation:
        state = _member(operation.state, operation.state_deprecated, _STATES, OperationState,
                        OperationState.UNSPECIFIED)
        check = operation.check_duration.ToTimedelta() \
            if operation.HasField("check_duration") else None
        return cls(id=operation.id, state=state,
                   failure_reason=operation.failure_reason,
                   operation_type=operation.operation_type,
                   check_after=check if check and check > dt.timedelta(0) else None)


def decode_ca_bundle(raw: bytes) -> str:
    """``accepted_client_ca`` as PEM text. The field holds the PEM bytes (what cloud-cli and
    the Terraform provider write today); writers of the older base64 form (tcld, earlier
    Terraform) stored base64 of the PEM, which is read as well."""
    compact = b"".join(raw.split())
    if not compact:
        return ""
    if b"-----BEGIN" in raw:
        return raw.decode("ascii", errors="strict")
    try:
        decoded = base64.b64decode(compact, validate=True)
    except binascii.Error:
        decoded = b""
    if b"-----BEGIN" not in decoded:
        raise CloudOpsError("read namespace",
                            "spec.mtls_auth.accepted_client_ca is neither PEM nor base64 of PEM")
    return decoded.decode("ascii")


def encode_ca_bundle(pem: str) -> bytes:
    """The bytes ``accepted_client_ca`` takes for ``pem``: the PEM itself, after checking it
    holds certificates only ("" clears the bundle). A private key pasted by mistake is
    refused here, before it could reach Cloud."""
    if not pem.strip():
        return b""
    data = pem.encode("ascii", errors="replace")
    if b"PRIVATE KEY" in data:
        raise CloudOpsInvalidRequest("update namespace",
                                     "the CA bundle holds a private key; send certificates only")
    try:
        x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CloudOpsInvalidRequest("update namespace",
                                     "the CA bundle is not PEM certificates") from None
    return data
