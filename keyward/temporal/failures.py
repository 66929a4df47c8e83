"""keyward errors as Temporal failures: permanent ones must not be retried."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

from keyward.vault.errors import VaultError


def as_application_error(exc: VaultError) -> ApplicationError:
    """An ``ApplicationError`` typed by the error class, non-retryable when permanent.

    Temporal's retry policy then does the right thing on its own: 5xx/429 and
    connection failures are retried with backoff, 400/403/404 fail at once.
    """
    return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=not exc.retryable)
