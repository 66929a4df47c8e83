"""keyward errors as Temporal failures: the one conversion, at the activity's edge.

An activity raises (or catches) a :class:`keyward.errors.KeywardError` and re-raises
``to_application_error(exc)``; it never builds an ``ApplicationError`` by hand. The
failure type names are the constants of :mod:`keyward.contracts.failures`, documented in
``docs/failures.md``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.exceptions import ApplicationError

from keyward.errors import KeywardError

T = TypeVar("T")


def to_application_error(exc: KeywardError) -> ApplicationError:
    """An ``ApplicationError`` typed ``exc.failure_type``, non-retryable unless
    ``exc.retryable``.

    Temporal's retry policy then does the right thing on its own: 5xx/429 and
    connection failures are retried with backoff, refusals (400/403/404, bad input)
    fail at once.
    """
    return ApplicationError(str(exc), type=exc.failure_type, non_retryable=not exc.retryable)


def as_temporal_failure(operation: Callable[[], T]) -> T:
    """Run ``operation``; a keyward error it raises leaves as its ``ApplicationError``.

    What every activity adapter does around the service call it adapts.
    """
    try:
        return operation()
    except KeywardError as exc:
        raise to_application_error(exc) from exc


async def as_temporal_failure_async(operation: Callable[[], Awaitable[T]]) -> T:
    """:func:`as_temporal_failure` for an ``async def`` activity: await ``operation``; a
    keyward error it raises leaves as its ``ApplicationError``."""
    try:
        return await operation()
    except KeywardError as exc:
        raise to_application_error(exc) from exc
