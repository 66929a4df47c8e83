"""Watching certificate files by content.

Certificate files are replaced in many ways: an atomic rename, a Kubernetes
``..data`` symlink swap, a cert-manager csi-driver rewrite, a plain overwrite.
Inode and mtime miss some of these; the bytes do not. A watcher polls the
*content* of a set of files and reports when the set as a whole has changed and
is readable — never half a change (new cert, old key) if the writer swaps both
together, and a half-written pair is simply retried at the next poll because
validation fails until both files agree.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from keyward.periodic import PeriodicTask


def digest_files(paths: Sequence[Path]) -> str | None:
    """One digest over the contents of all files (following symlinks); None if any is missing."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            return None
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


class ContentWatcher:
    """Calls ``on_change`` when the files' combined content changes.

    ``on_change`` returns True when it accepted the new content. When it returns
    False (say, the new pair does not validate yet), the same content is offered
    again only after it changes again: a broken pair is reported once, not every poll.
    """

    def __init__(self, paths: Sequence[Path], on_change: Callable[[], Awaitable[bool]], *,
                 interval_seconds: float) -> None:
        self.paths = list(paths)
        self._on_change = on_change
        self._interval = interval_seconds
        self._seen = digest_files(self.paths)
        self._periodic = PeriodicTask("content-watcher", self.check_now,
                                      interval_seconds=interval_seconds)

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def check_now(self) -> bool:
        """Poll once; True if new content was offered and accepted."""
        current = await asyncio.to_thread(digest_files, self.paths)
        if current is None or current == self._seen:
            return False
        self._seen = current
        return await self._on_change()
