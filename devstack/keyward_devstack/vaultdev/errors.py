"""Vault's error bodies, and the HTTP status each kind of failure carries.

Vault answers every failure with ``{"errors": [...]}``. Two shapes reach
clients and both are reproduced here because people read them even when
programs only look at the status:

* a backend's own message, passed through verbatim
  (``"encryption key not found"``), and
* an error the Vault core collects with go-multierror, which renders as
  ``"1 error occurred:\\n\\t* unsupported path\\n\\n"``.

``UserError`` and ``InternalError`` mirror Vault's ``errutil`` types: deep
code raises them and the endpoint decides whether they become a 400, a 500 or
a per-item ``error`` in a batch.
"""

from __future__ import annotations

from collections.abc import Sequence


class VaultApiError(Exception):
    """A failed request: the HTTP status and the ``errors`` list Vault sends.

    The dev server's own answer to a client, raised inside its handlers; not keyward's
    client-side :class:`keyward.vault.errors.VaultError` (what keyward raises when a Vault
    answers like this).
    """

    def __init__(self, status: int, errors: Sequence[str]) -> None:
        super().__init__(f"HTTP {status}: {list(errors)}")
        self.status = status
        self.errors = list(errors)

    def body(self) -> dict[str, list[str]]:
        """The JSON body Vault writes for this failure."""
        return {"errors": list(self.errors)}


class UserError(Exception):
    """The caller sent something unusable; Vault reports these as 400s."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InternalError(Exception):
    """Vault itself failed; Vault reports these as 500s."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def multierror(*causes: str) -> str:
    """Render causes the way go-multierror does inside Vault's core."""
    head = "1 error occurred:" if len(causes) == 1 else f"{len(causes)} errors occurred:"
    points = "".join(f"\n\t* {cause}" for cause in causes)
    return f"{head}{points}\n\n"


def bad_request(message: str) -> VaultApiError:
    """A backend rejecting the input with its own message (HTTP 400)."""
    return VaultApiError(400, [message])


def internal_error(message: str) -> VaultApiError:
    """A backend failure the core wraps before answering (HTTP 500)."""
    return VaultApiError(500, [multierror(message)])


def not_found() -> VaultApiError:
    """A read of something absent: Vault answers 404 with an empty list."""
    return VaultApiError(404, [])


def unsupported_path() -> VaultApiError:
    """A path inside a mount that the mounted backend does not serve."""
    return VaultApiError(404, [multierror("unsupported path")])


def unsupported_operation() -> VaultApiError:
    """A path that exists but not for this HTTP method."""
    return VaultApiError(405, [multierror("unsupported operation")])


def no_route(path: str) -> VaultApiError:
    """A path under no mount at all."""
    return VaultApiError(404, [f'no handler for route "{path}". route entry not found.'])


def permission_denied() -> VaultApiError:
    """No token, or a login that failed verification."""
    return VaultApiError(403, ["permission denied"])


def invalid_token() -> VaultApiError:
    """A token Vault does not know: unknown, revoked or expired."""
    return VaultApiError(403, [multierror("permission denied", "invalid token")])


def coded(status: int, message: str) -> VaultApiError:
    """A backend answering with an explicit status (Vault's ``logical.CodedError``)."""
    return VaultApiError(status, [message])
