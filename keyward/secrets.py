"""A wrapper for secret strings, and a registry the log redactor consults.

Settings hold tokens and passwords as :class:`Secret` so that ``repr``, f-strings
and structured logs print stars. Every secret value is also registered, so the
log redaction processor can scrub it even when it reaches a log line as a plain
string (say, inside an exception message from a library).
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from typing import Final

_MASK: Final = "**********"
# Very short values would match innocent text everywhere; nothing we guard is that short.
_MIN_REGISTERED_LEN: Final = 8
_MAX_REGISTERED: Final = 4096


class SecretRegistry:
    """A bounded, thread-safe set of secret strings that must never be logged.

    Bounded because envelope-mode data keys are registered as they are created:
    the oldest fall out once the codec's own cache has long forgotten them.
    """

    def __init__(self, max_entries: int = _MAX_REGISTERED) -> None:
        self._lock = threading.Lock()
        self._values: OrderedDict[str, None] = OrderedDict()
        self._max = max_entries

    def add(self, value: str) -> None:
        if len(value) < _MIN_REGISTERED_LEN:
            return
        with self._lock:
            self._values[value] = None
            self._values.move_to_end(value)
            while len(self._values) > self._max:
                self._values.popitem(last=False)

    def add_bytes(self, value: bytes) -> None:
        """Register raw key material in the encodings it could be logged in."""
        self.add(base64.b64encode(value).decode())
        self.add(base64.urlsafe_b64encode(value).decode())
        self.add(value.hex())

    def snapshot(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._values)

    def scrub(self, text: str) -> str:
        for value in self.snapshot():
            if value in text:
                text = text.replace(value, _MASK)
        return text


#: The process-wide registry. It holds values to hide, never a client or a
#: connection, so it is the one module-level object the logging path may share.
REGISTRY: Final = SecretRegistry()


class Secret:
    """A string that prints as stars; call :meth:`reveal` where the value is needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        REGISTRY.add(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
