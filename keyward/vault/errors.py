"""hvac's exceptions mapped once into keyward's: retryable or permanent.

Callers decide what to do from the class alone: a :class:`VaultTransientError`
is worth retrying with backoff (429, 5xx, sealed, connection trouble); a
:class:`VaultPermanentError` is not (400 bad request, 403 forbidden, 404 not
found) and activities turn it into a non-retryable Temporal failure. One table,
:data:`ERROR_BY_STATUS`, says which class an HTTP status is, for hvac's exceptions and
for :class:`keyward.vault.transit_async.AsyncTransit`'s own answers alike.

Messages carry Vault's own ``errors`` text and the operation, never the request
body (which may hold plaintext) or the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import hvac.exceptions
import requests

from keyward.contracts import failures
from keyward.errors import KeywardError


class VaultError(KeywardError):
    """A Vault call failed. ``retryable`` says whether trying again may help."""

    retryable = False
    failure_type = failures.VAULT_ERROR
    status: int | None = None

    def __init__(self, operation: str, detail: str, *, status: int | None = None,
                 body: Any = None) -> None:
        self.operation = operation
        self.detail = detail
        self.status = status
        #: Vault's JSON error body when there was one (batch results live here).
        self.body = body
        where = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"Vault {operation} failed{where}: {detail}")


class VaultTransientError(VaultError):
    retryable = True
    failure_type = failures.VAULT_TRANSIENT_ERROR


class VaultUnavailable(VaultTransientError):
    """Connection refused, timeout, TLS failure, sealed or down: Vault is not answering."""

    failure_type = failures.VAULT_UNAVAILABLE


class VaultRateLimited(VaultTransientError):
    failure_type = failures.VAULT_RATE_LIMITED


class VaultServerError(VaultTransientError):
    failure_type = failures.VAULT_SERVER_ERROR


class VaultPermanentError(VaultError):
    retryable = False
    failure_type = failures.VAULT_PERMANENT_ERROR


class VaultInvalidRequest(VaultPermanentError):
    failure_type = failures.VAULT_INVALID_REQUEST


class VaultForbidden(VaultPermanentError):
    """Bad or expired token, or a policy that does not grant the path."""

    failure_type = failures.VAULT_FORBIDDEN


class VaultNotFound(VaultPermanentError):
    failure_type = failures.VAULT_NOT_FOUND


#: The one map from Vault's HTTP status to keyward's error class. 412 is a performance
#: standby not yet caught up (retry); 501 is an uninitialised Vault.
ERROR_BY_STATUS: Final[dict[int, type[VaultError]]] = {
    400: VaultInvalidRequest,
    401: VaultForbidden,
    403: VaultForbidden,
    404: VaultNotFound,
    405: VaultInvalidRequest,
    412: VaultServerError,
    429: VaultRateLimited,
    500: VaultServerError,
    501: VaultUnavailable,
    502: VaultServerError,
    503: VaultUnavailable,
}


def error_class_for_status(status: int | None) -> type[VaultError]:
    """The class for an HTTP status: the table's, else 5xx transient and the rest a bad
    request; ``None`` (refused before any request was sent) is a bad request."""
    if status is None:
        return VaultInvalidRequest
    return ERROR_BY_STATUS.get(status) or (
        VaultServerError if status >= 500 else VaultInvalidRequest)


#: hvac raises one class per status; this says which status each class stands for.
_HVAC_STATUS: Final[dict[type[Exception], int | None]] = {
    hvac.exceptions.InvalidRequest: 400,
    hvac.exceptions.Unauthorized: 401,
    hvac.exceptions.Forbidden: 403,
    hvac.exceptions.InvalidPath: 404,
    hvac.exceptions.UnsupportedOperation: 405,
    hvac.exceptions.ParamValidationError: None,  # hvac refused before sending anything
    hvac.exceptions.PreconditionFailed: 412,
    hvac.exceptions.RateLimitExceeded: 429,
    hvac.exceptions.InternalServerError: 500,
    hvac.exceptions.VaultNotInitialized: 501,
    hvac.exceptions.BadGateway: 502,
    hvac.exceptions.VaultDown: 503,
}


def _detail(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if isinstance(errors, list) and errors:
        return "; ".join(str(e) for e in errors)
    text = str(exc).split(", on ", 1)[0]  # hvac appends ", on <method> <url>"
    if text in ("", "None"):  # Vault sent an empty "errors" list (e.g. a plain 404)
        return "no error detail from Vault"
    return text


def map_vault_error(exc: BaseException, operation: str) -> VaultError:
    """Translate an hvac/requests exception into the matching :class:`VaultError`."""
    if isinstance(exc, VaultError):
        return exc
    if isinstance(exc, hvac.exceptions.VaultError):
        for hvac_cls in type(exc).__mro__:
            if hvac_cls in _HVAC_STATUS:
                status = _HVAC_STATUS[hvac_cls]
                return error_class_for_status(status)(
                    operation, _detail(exc), status=status, body=getattr(exc, "json", None))
        return VaultServerError(operation, _detail(exc), body=getattr(exc, "json", None))
    if isinstance(exc, requests.exceptions.SSLError):
        return VaultUnavailable(operation, f"TLS error talking to Vault: {_first_line(exc)}")
    if isinstance(exc, requests.exceptions.Timeout):
        return VaultUnavailable(operation, "timed out waiting for Vault")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return VaultUnavailable(operation, "cannot connect to Vault")
    if isinstance(exc, requests.exceptions.RequestException):
        return VaultUnavailable(operation, _first_line(exc))
    raise TypeError(f"not a Vault client error: {type(exc).__name__}")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


@contextmanager
def vault_errors(operation: str) -> Iterator[None]:
    """Run a block of hvac calls, re-raising their failures as :class:`VaultError`."""
    try:
        yield
    except (hvac.exceptions.VaultError, requests.exceptions.RequestException) as exc:
        raise map_vault_error(exc, operation) from exc
