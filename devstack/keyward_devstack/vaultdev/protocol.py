"""The shapes a request and an answer take between the HTTP layer and backends.

Vault turns every HTTP request into a *logical* request: an operation (read,
list, update, delete), a path relative to the mount, and a data map. Backends
answer with data, an auth block, warnings, or nothing (HTTP 204). Keeping that
split means backends never touch aiohttp, which keeps them easy to test and
lets the HTTP layer own the envelope Vault wraps around every answer.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keyward_devstack.vaultdev.state import TokenEntry


class Operation(enum.Enum):
    """Vault's logical operations, which HTTP methods map onto."""

    READ = "read"
    LIST = "list"
    UPDATE = "update"
    DELETE = "delete"


@dataclass(frozen=True)
class Caller:
    """The token a request was made with, already checked to be valid."""

    token: str
    entry: TokenEntry
    is_root_token: bool = False


@dataclass(frozen=True)
class Call:
    """One logical request as a backend sees it."""

    operation: Operation
    path: str
    data: Mapping[str, Any]
    now: float
    caller: Caller | None = None


@dataclass
class Reply:
    """A backend's answer; the HTTP layer wraps it in Vault's envelope.

    ``status`` lets an answer that still carries data fail, which is how Vault
    reports a batch where some items failed. ``raw`` bypasses the envelope for
    the few endpoints (``sys/health``) that answer with a bare object, and
    ``inject_top`` copies ``data`` to the top level as Vault does for
    ``sys/mounts`` and ``sys/auth``.
    """

    data: dict[str, Any] | None = None
    auth: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    status: int = 200
    raw: dict[str, Any] | None = None
    inject_top: bool = False

    def envelope(self, mount_type: str) -> dict[str, Any]:
        """The JSON body Vault sends for this answer."""
        if self.raw is not None:
            return self.raw
        body: dict[str, Any] = {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": self.data,
            "wrap_info": None,
            "warnings": self.warnings or None,
            "auth": self.auth,
            "mount_type": mount_type,
        }
        if self.inject_top and self.data:
            body = {**self.data, **body}
        return body
