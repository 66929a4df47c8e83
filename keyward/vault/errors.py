"""hvac's exceptions mapped once into keyward's: retryable or permanent.

Callers decide what to do from the class alone: a :class:`VaultTransientError`
is worth retrying with backoff (429, 5xx, sealed, connection trouble); a
:class:`VaultPermanentError` is not (400 bad request, 403 forbidden, 404 not
found) and activities turn it into a non-retryable Temporal failure.

Messages carry Vault's own ``errors`` text and the operation, never the request
body (which may hold plaintext) or the token.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import hvac.exceptions
import requests

from keyward.errors import KeywardError


class VaultError(KeywardError):
    """A Vault call failed. ``retryable`` says whether trying again may help."""

    retryable: bool = False
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


class VaultUnavailable(VaultTransientError):
    """Connection refused, timeout, TLS failure, sealed or down: Vault is not answering."""


class VaultRateLimited(VaultTransientError):
    pass


class VaultServerError(VaultTransientError):
    pass


class VaultPermanentError(VaultError):
    retryable = False


class VaultInvalidRequest(VaultPermanentError):
    pass


class VaultForbidden(VaultPermanentError):
    """Bad or expired token, or a policy that does not grant the path."""


class VaultNotFound(VaultPermanentError):
    pass


_BY_HVAC_CLASS: dict[type[Exception], tuple[type[VaultError], int | None]] = {
    hvac.exceptions.InvalidRequest: (VaultInvalidRequest, 400),
    hvac.exceptions.Unauthorized: (VaultForbidden, 401),
    hvac.exceptions.Forbidden: (VaultForbidden, 403),
    hvac.exceptions.InvalidPath: (VaultNotFound, 404),
    hvac.exceptions.UnsupportedOperation: (VaultInvalidRequest, 405),
    hvac.exceptions.ParamValidationError: (VaultInvalidRequest, None),
    hvac.exceptions.PreconditionFailed: (VaultServerError, 412),
    hvac.exceptions.RateLimitExceeded: (VaultRateLimited, 429),
    hvac.exceptions.InternalServerError: (VaultServerError, 500),
    hvac.exceptions.VaultNotInitialized: (VaultUnavailable, 501),
    hvac.exceptions.BadGateway: (VaultServerError, 502),
    hvac.exceptions.VaultDown: (VaultUnavailable, 503),
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
            if hvac_cls in _BY_HVAC_CLASS:
                cls, status = _BY_HVAC_CLASS[hvac_cls]
                return cls(operation, _detail(exc), status=status, body=getattr(exc, "json", None))
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
