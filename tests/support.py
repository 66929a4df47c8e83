"""Small helpers the tests share."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import structlog

from keyward.config import LoggingSettings
from keyward.log import configure_logging

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


def kill_processes_mentioning(marker: str) -> list[int]:
    """SIGKILL every process whose command line contains ``marker`` (a test's temp dir).

    The local stack starts its servers in their own sessions, so a worker killed by a
    failing test leaves them behind; this is the test suite's broom for that case.
    """
    killed: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed.append(int(entry.name))
            except ProcessLookupError:
                pass
    return killed


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """keyward's production logging (JSON lines) written to a string, then reset."""
    stream = io.StringIO()
    level = logging.getLogger().level
    configure_logging(LoggingSettings(format="json"), stream=stream)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        logging.getLogger().handlers.clear()
        logging.getLogger().setLevel(level)
