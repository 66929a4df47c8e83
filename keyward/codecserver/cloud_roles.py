"""Codec-server roles from Temporal Cloud: who may decode is what the account says.

A Cloud Web UI user's access token names the user by email and carries no ``permissions``
claim; their role lives in the account, read through the Cloud Ops API
(``GetUsers(email=…)``). An account ``owner`` or ``admin`` reaches every namespace; anyone
else has the access listed for the namespace (``read``, ``write``, ``admin``), mapped onto
the same :class:`~keyward.codecserver.permissions.Role` flags the ``permissions`` claim
uses, so one decision rule (:meth:`Permissions.allows`) serves both sources.

The lookup must stay off the hot path: :class:`CloudRoles` keeps each user's answer for a
short TTL (a shorter one for "no such user", so a newly invited user is not locked out for
long), lets concurrent requests for one user share one lookup, and bounds its memory.
A failed lookup is never cached and never guessed: the caller answers 503 (fail closed).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from keyward.cloud.models import AccountRole, CloudUser, NamespacePermission
from keyward.codecserver.permissions import Permissions, Role

#: Account roles that reach every namespace (as Temporal's own sample grants decoding).
ACCOUNT_WIDE: Final = frozenset({AccountRole.OWNER, AccountRole.ADMIN})
_ROLES: Final = {NamespacePermission.READ: Role.READER, NamespacePermission.WRITE: Role.WRITER,
                 NamespacePermission.ADMIN: Role.ADMIN}
#: User states that may act: anything else (suspended, deleted, still being invited, a
#: state these protos do not know) grants nothing.
_ACTIVE_STATES: Final = frozenset({"active", "updating", "update_failed"})


class UserDirectory(Protocol):
    """Where users are looked up: :class:`keyward.cloud.ops.CloudOps` in production."""

    async def get_user_by_email(self, email: str) -> CloudUser | None: ...


@dataclass(frozen=True)
class CloudRole:
    """One user's standing in the account, as the codec server decides with it."""

    permissions: Permissions
    #: False: the account has no user with this email (a 403, not a 503).
    known: bool
    #: For the audit line: ``account:owner``, ``namespaces:2``, ``unknown``, ``suspended``.
    summary: str


def role_of(user: CloudUser | None) -> CloudRole:
    """The permissions a Cloud user has, by the rules in the module docstring."""
    if user is None:
        return CloudRole(Permissions(), known=False, summary="unknown")
    if user.state not in _ACTIVE_STATES:
        return CloudRole(Permissions(), known=True, summary=f"user {user.state}")
    if user.account_role in ACCOUNT_WIDE:
        return CloudRole(Permissions(system=Role.ADMIN), known=True,
                         summary=f"account:{user.account_role}")
    namespaces = {name.lower(): _ROLES[permission]
                  for name, permission in user.namespace_accesses.items()
                  if permission in _ROLES}
    return CloudRole(Permissions(namespaces=namespaces), known=True,
                     summary=f"account:{user.account_role} namespaces:{len(namespaces)}")


class CloudRoles:
    """Per-user roles with a TTL, shared in-flight lookups and a size bound."""

    def __init__(self, directory: UserDirectory, *, ttl_seconds: float,
                 unknown_ttl_seconds: float, max_users: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._directory = directory
        self._ttl = ttl_seconds
        self._unknown_ttl = unknown_ttl_seconds
        self._max_users = max_users
        self._clock = clock
        self._cached: OrderedDict[str, tuple[float, CloudRole]] = OrderedDict()
        self._pending: dict[str, asyncio.Task[CloudRole]] = {}
        #: Lookups sent to the directory (the benchmark reports calls per 1,000 requests).
        self.lookups = 0

    async def role_for(self, email: str) -> CloudRole:
        """The user's role; raises what the directory raises when it cannot answer."""
        email = email.strip()
        key = email.casefold()
        cached = self._cached.get(key)
        if cached is not None and cached[0] > self._clock():
            self._cached.move_to_end(key)
            return cached[1]
        task = self._pending.get(key)
        if task is None:
            # A task of its own, not the first caller's: a request that goes away (the
            # browser closed) must not fail the others waiting for the same answer.
            task = asyncio.get_running_loop().create_task(self._look_up(email, key))
            self._pending[key] = task
            task.add_done_callback(lambda _done: self._pending.pop(key, None))
        return await asyncio.shield(task)

    async def _look_up(self, email: str, key: str) -> CloudRole:
        self.lookups += 1
        role = role_of(await self._directory.get_user_by_email(email))
        ttl = self._ttl if role.known else self._unknown_ttl
        self._cached[key] = (self._clock() + ttl, role)
        self._cached.move_to_end(key)
        while len(self._cached) > self._max_users:
            self._cached.popitem(last=False)
        return role
