"""Temporal's JWT permission model, as the server's default claim mapper and authorizer apply it.

A ``permissions`` claim is a list of ``"<namespace>:<role>"`` strings. Roles are
bit flags (worker=1, read=2, write=4, admin=8) OR-ed per namespace, and a check
passes when the combined value is *numerically* at least the required role —
exactly the server's comparison, so the codec server grants what the cluster
grants. ``temporal-system:<role>`` applies to every namespace. The server looks
the namespace up lowercased, so a claim must name it in lower case to match,
there as here. Entries that are not strings, lack a colon, or name an unknown
role are ignored, as the server ignores them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntFlag
from typing import Any, Final, Literal

SYSTEM_SCOPE: Final = "temporal-system"
Operation = Literal["encode", "decode"]


class Role(IntFlag):
    UNDEFINED = 0
    WORKER = 1
    READER = 2
    WRITER = 4
    ADMIN = 8


_ROLE_NAMES: Final = {"worker": Role.WORKER, "read": Role.READER, "write": Role.WRITER,
                      "admin": Role.ADMIN}

#: What each codec operation needs: decoding shows data (read), encoding creates it (write).
REQUIRED_ROLE: Final[dict[Operation, Role]] = {"decode": Role.READER, "encode": Role.WRITER}


@dataclass(frozen=True)
class Permissions:
    system: Role = Role.UNDEFINED
    namespaces: dict[str, Role] = field(default_factory=dict)

    def role_in(self, namespace: str) -> Role:
        return self.namespaces.get(namespace.lower(), Role.UNDEFINED)

    def allows(self, operation: Operation, namespace: str) -> bool:
        required = REQUIRED_ROLE[operation]
        return self.system >= required or self.role_in(namespace) >= required


def parse_permissions(claim: Any) -> Permissions:
    """Permissions from the claim's value; anything that is not a list grants nothing."""
    if not isinstance(claim, list):
        return Permissions()
    system = Role.UNDEFINED
    namespaces: dict[str, Role] = {}
    for entry in _strings(claim):
        namespace, sep, role_name = entry.partition(":")
        if not sep:
            continue
        role = _ROLE_NAMES.get(role_name.lower(), Role.UNDEFINED)
        if namespace == SYSTEM_SCOPE:
            system |= role
        else:
            namespaces[namespace] = namespaces.get(namespace, Role.UNDEFINED) | role
    return Permissions(system=system, namespaces=namespaces)


def _strings(values: Iterable[Any]) -> Iterable[str]:
    return (value for value in values if isinstance(value, str))
