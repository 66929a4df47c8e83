"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def assert_eventually(check: Callable[[], Awaitable[T]], *, within: float = 10.0,
                            interval: float = 0.1) -> T:
    """Retry ``check`` until it stops raising AssertionError, then return its result."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(interval)


def wait_until(predicate: Callable[[], bool], *, within: float = 10.0,
               interval: float = 0.1, what: str = "condition") -> None:
    """Block until ``predicate()`` is true; fail with ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        time.sleep(interval)
