"""One background asyncio task that repeats a step at an interval, started and stopped once.

The content watcher, the usage reporter and the certificate reloader all need exactly
this; the step's own failures are logged and the loop goes on, because a watcher that
dies on one bad reload watches nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from keyward.log import get_logger


class PeriodicTask:
    def __init__(self, name: str, step: Callable[[], Awaitable[object]], *,
                 interval_seconds: float) -> None:
        self.name = name
        self._step = step
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._log = get_logger("keyward.periodic", task=name)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._step()
            except Exception as exc:  # noqa: BLE001 - one failed step must not end the loop
                self._log.error("periodic step failed", error=f"{type(exc).__name__}: {exc}")
