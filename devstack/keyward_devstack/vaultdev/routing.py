"""Matching a path inside a mount to the handler for its operation.

Vault backends declare path patterns and, per pattern, which operations they
serve. The distinction matters to clients: a path nobody serves is a 404
(``unsupported path``) while a served path with the wrong method is a 405
(``unsupported operation``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from keyward_devstack.vaultdev.errors import unsupported_operation, unsupported_path
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply

Handler = Callable[[Call, "re.Match[str]"], Reply | None]

#: Vault's ``framework.GenericNameRegex``: word characters, with ``-``, ``.``
#: and ``@`` allowed inside but not at either end.
NAME = r"\w(?:[\w\-.@]*\w)?"


@dataclass(frozen=True)
class Route:
    """One path pattern and the handlers for the operations it serves."""

    pattern: re.Pattern[str]
    handlers: Mapping[Operation, Handler]


def dispatch(routes: Sequence[Route], call: Call) -> Reply | None:
    """Run the handler that serves ``call``, or fail the way Vault does."""
    for route in routes:
        match = route.pattern.fullmatch(call.path)
        if match is None:
            continue
        handler = route.handlers.get(call.operation)
        if handler is None:
            raise unsupported_operation()
        return handler(call, match)
    raise unsupported_path()
