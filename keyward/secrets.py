"""A wrapper for secret strings, and a registry the log redactor consults.

Settings hold tokens and passwords as :class:`Secret` (a pydantic ``SecretStr``) so
that ``repr``, f-strings and structured logs print stars. Every secret value is also
registered, so the log redaction processor can scrub it even when it reaches a log
line as a plain string (say, inside an exception message from a library).
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from typing import Final

from pydantic import SecretStr

_MASK: Final = "**********"
# Very short values would match innocent text everywhere; nothing we guard is that short.
_MIN_REGISTERED_LEN: Final = 8
_MAX_REGISTERED: Final = 4096
_MAX_PINNED: Final = 1024


class SecretRegistry:
    """A thread-safe set of secret strings that must never be logged.

    Two bounded sets, so that a flood of one kind can never push out the other:
    *pinned* values (tokens, passwords, configured credentials; each login adds one)
    and *ephemeral* ones (envelope-mode data keys, registered as they are created,
    which fall out once the codec's own caches have long forgotten them).
    """

    def __init__(self, max_entries: int = _MAX_REGISTERED,
                 max_pinned: int = _MAX_PINNED) -> None:
        self._lock = threading.Lock()
        self._values: OrderedDict[str, None] = OrderedDict()
        self._pinned: OrderedDict[str, None] = OrderedDict()
        self._max = max_entries
        self._max_pinned = max_pinned

    def add(self, value: str, *, pinned: bool = True) -> None:
        if len(value) < _MIN_REGISTERED_LEN:
            return
        target, limit = (self._pinned, self._max_pinned) if pinned else (self._values,
                                                                        self._max)
        with self._lock:
            target[value] = None
            target.move_to_end(value)
            while len(target) > limit:
                target.popitem(last=False)

    def add_bytes(self, value: bytes) -> None:
        """Register raw key material (ephemeral) in the encodings it could be logged in."""
        for text in (base64.b64encode(value).decode(), base64.urlsafe_b64encode(value).decode(),
                     value.hex()):
            self.add(text, pinned=False)

    def snapshot(self) -> tuple[str, ...]:
        with self._lock:
            return (*self._pinned, *self._values)

    def scrub(self, text: str) -> str:
        for value in self.snapshot():
            if value in text:
                text = text.replace(value, _MASK)
        return text


#: The process-wide registry. It holds values to hide, never a client or a
#: connection, so it is the one module-level object the logging path may share.
REGISTRY: Final = SecretRegistry()


class Secret(SecretStr):
    """A string that prints as stars; call :meth:`reveal` where the value is needed.

    pydantic's ``SecretStr`` (so settings validate a plain string into one, and
    ``get_secret_value``/constant-time ``==`` come with it), plus two things keyward
    needs: the value is registered for log redaction, and even an empty one prints
    as stars.
    """

    def __init__(self, value: str) -> None:
        super().__init__(value)
        REGISTRY.add(value)

    def reveal(self) -> str:
        return self.get_secret_value()

    def _display(self) -> str:
        return _MASK
