"""The Cloud Ops API's gRPC statuses mapped once into keyward's errors: retryable or permanent.

As with Vault (``keyward.vault.errors``), callers decide from the class alone: a transient
one (unavailable, rate limited, a server error, keyward's own deadline) is worth trying again
with backoff; a permanent one (the key refused, no permission, not found, a malformed
request) is not, and an activity turns it into a non-retryable Temporal failure.
:class:`CloudOpsConflict` is its own case: a write carried a ``resource_version`` someone
has since moved past. Retrying the whole read-modify-write helps (so it is ``retryable``),
re-sending the same request never does. One table, :data:`ERROR_BY_STATUS`, says which
class a status is.

A stale version is answered ``ABORTED`` by services that follow Google's AIP-154 today and
``FAILED_PRECONDITION`` by those that followed its older text; Temporal documents neither
for Cloud, so on a write both are a conflict (a reread settles which it was: the next write
either succeeds or fails again), while on a read ``FAILED_PRECONDITION`` stays a refusal.
Messages carry the operation and Cloud's own status text, never a request's metadata (the
API key travels there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from temporalio.service import RPCError, RPCStatusCode

from keyward.contracts import failures
from keyward.errors import KeywardError

#: The core's message when keyward's own per-call deadline passed (status CANCELLED).
_CORE_TIMEOUT: Final = "Timeout expired"
#: Cloud's INVALID_ARGUMENT text for an update that changes nothing (cloud-cli and the
#: Terraform provider match on it too).
_NOTHING_TO_CHANGE: Final = "nothing to change"


class CloudOpsError(KeywardError):
    """A Cloud Ops API call failed. ``retryable`` says whether trying again may help."""

    retryable = False
    failure_type = failures.CLOUD_OPS_ERROR

    def __init__(self, operation: str, detail: str, *,
                 status: RPCStatusCode | None = None) -> None:
        self.operation = operation
        self.detail = detail
        #: The gRPC status Cloud answered with; None when no answer came (or keyward refused).
        self.status = status
        where = f" ({status.name})" if status is not None else ""
        super().__init__(f"Cloud Ops API {operation} failed{where}: {detail}")


class CloudOpsUnavailable(CloudOpsError):
    """Nobody answered in time: connection refused or reset, TLS failure, UNAVAILABLE,
    DEADLINE_EXCEEDED, or keyward's own call deadline."""

    retryable = True
    failure_type = failures.CLOUD_OPS_UNAVAILABLE


class CloudOpsRateLimited(CloudOpsError):
    retryable = True
    failure_type = failures.CLOUD_OPS_RATE_LIMITED


class CloudOpsServerError(CloudOpsError):
    retryable = True
    failure_type = failures.CLOUD_OPS_SERVER_ERROR


class CloudOpsConflict(CloudOpsError):
    """The namespace changed since it was read: read it again, re-apply, write again."""

    retryable = True
    failure_type = failures.CLOUD_OPS_CONFLICT


class CloudOpsUnauthenticated(CloudOpsError):
    """The API key was refused: wrong, expired or revoked."""

    failure_type = failures.CLOUD_OPS_UNAUTHENTICATED


class CloudOpsPermissionDenied(CloudOpsError):
    """The key's identity lacks the account role or namespace access for this call."""

    failure_type = failures.CLOUD_OPS_PERMISSION_DENIED


class CloudOpsNotFound(CloudOpsError):
    failure_type = failures.CLOUD_OPS_NOT_FOUND


class CloudOpsInvalidRequest(CloudOpsError):
    failure_type = failures.CLOUD_OPS_INVALID_REQUEST


class CloudOpsNothingToChange(CloudOpsInvalidRequest):
    """The update asked for the spec the namespace already has."""

    failure_type = failures.CLOUD_OPS_NOTHING_TO_CHANGE


class CloudOpsOperationFailed(CloudOpsError):
    """An async operation ended failed, cancelled or rejected."""

    failure_type = failures.CLOUD_OPS_OPERATION_FAILED

    def __init__(self, operation_id: str, state: str, reason: str) -> None:
        self.operation_id = operation_id
        self.state = state
        self.reason = reason
        super().__init__(f"async operation {operation_id}",
                         f"{state}: {reason or 'Cloud gave no failure reason'}")


class CloudOpsOperationTimeout(CloudOpsError):
    """An async operation had not ended when keyward stopped waiting; waiting again may see
    it end (the operation itself goes on in Cloud)."""

    retryable = True
    failure_type = failures.CLOUD_OPS_OPERATION_TIMEOUT


#: The one map from the status Cloud answers with to keyward's error class (statuses not
#: listed are permanent CloudOpsError; CANCELLED is special-cased in :func:`map_rpc_error`).
ERROR_BY_STATUS: Final[Mapping[RPCStatusCode, type[CloudOpsError]]] = {
    RPCStatusCode.UNAVAILABLE: CloudOpsUnavailable,
    RPCStatusCode.DEADLINE_EXCEEDED: CloudOpsUnavailable,
    RPCStatusCode.RESOURCE_EXHAUSTED: CloudOpsRateLimited,
    RPCStatusCode.INTERNAL: CloudOpsServerError,
    RPCStatusCode.UNKNOWN: CloudOpsServerError,
    RPCStatusCode.DATA_LOSS: CloudOpsServerError,
    RPCStatusCode.ABORTED: CloudOpsConflict,
    RPCStatusCode.UNAUTHENTICATED: CloudOpsUnauthenticated,
    RPCStatusCode.PERMISSION_DENIED: CloudOpsPermissionDenied,
    RPCStatusCode.NOT_FOUND: CloudOpsNotFound,
    RPCStatusCode.INVALID_ARGUMENT: CloudOpsInvalidRequest,
    RPCStatusCode.FAILED_PRECONDITION: CloudOpsInvalidRequest,
    RPCStatusCode.OUT_OF_RANGE: CloudOpsInvalidRequest,
    RPCStatusCode.UNIMPLEMENTED: CloudOpsInvalidRequest,
    RPCStatusCode.ALREADY_EXISTS: CloudOpsInvalidRequest,
}


def error_class_for_status(status: RPCStatusCode, *, write: bool = False) -> type[CloudOpsError]:
    """The class for a status; ``write`` for a call that carried a ``resource_version``."""
    if write and status == RPCStatusCode.FAILED_PRECONDITION:
        return CloudOpsConflict
    return ERROR_BY_STATUS.get(status, CloudOpsError)


def map_rpc_error(exc: RPCError, operation: str, *, write: bool = False) -> CloudOpsError:
    """Translate the SDK's :class:`RPCError` into the matching :class:`CloudOpsError`."""
    status = exc.status
    detail = exc.message or "no detail from Cloud"
    if status == RPCStatusCode.CANCELLED and exc.message == _CORE_TIMEOUT:
        # The core reports keyward's own deadline as CANCELLED "Timeout expired".
        return CloudOpsUnavailable(operation, "no answer before the call's deadline",
                                   status=RPCStatusCode.DEADLINE_EXCEEDED)
    if status == RPCStatusCode.INVALID_ARGUMENT and _NOTHING_TO_CHANGE in detail.lower():
        return CloudOpsNothingToChange(operation, detail, status=status)
    return error_class_for_status(status, write=write)(operation, detail, status=status)


def connect_error(exc: RuntimeError, operation: str, target: str) -> CloudOpsError | None:
    """The core's "Failed client connect" (raised before any call when the endpoint cannot
    be reached) as :class:`CloudOpsUnavailable`; None for any other RuntimeError (a bug)."""
    text = str(exc)
    if not text.startswith("Failed client connect"):
        return None
    return CloudOpsUnavailable(operation, f"cannot connect to {target}: {text}")
