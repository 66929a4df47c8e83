"""Tokens: issuing, checking, renewing and revoking them, and ``auth/token/*``.

Lifetimes follow Vault (see :mod:`leases`). Tokens whose policies include
``root`` and that ask for no TTL never expire, as with Vault; the configured
root token always works and never expires. Tokens are stored under their
SHA-256 digest, so the state file does not contain usable credentials.

There is no ACL policy engine: any valid, unexpired token may call any
endpoint. Policies are recorded and reported, not enforced, except that a
non-root token may only create children with a subset of its own policies.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.errors import (
    bad_request,
    coded,
    invalid_token,
    permission_denied,
)
from keyward_devstack.vaultdev.leases import calculate_ttl, sanitize_policies
from keyward_devstack.vaultdev.protocol import Call, Caller, Operation, Reply
from keyward_devstack.vaultdev.routing import Handler, Route, dispatch
from keyward_devstack.vaultdev.state import (
    Store,
    TokenEntry,
    TokenSettings,
    new_accessor,
    token_digest,
)

_DISPLAY_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9-]")


def go_time(moment: float | None) -> str | None:
    """A timestamp as Go's JSON encoder writes a ``time.Time`` (RFC 3339, UTC)."""
    if moment is None:
        return None
    stamp = dt.datetime.fromtimestamp(moment, tz=dt.UTC)
    return stamp.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Issued:
    """A freshly issued token: its value (shown once), record and TTL warnings."""

    token: str
    entry: TokenEntry
    ttl: int
    warnings: list[str]


class TokenStore:
    """All tokens of one server: the configured root token and issued ones."""

    def __init__(self, store: Store, root_token: str) -> None:
        self._store = store
        self._root = root_token.encode("utf-8")

    def root_entry(self) -> TokenEntry:
        """The record lookups report for the configured root token."""
        state = self._store.state
        return TokenEntry(
            accessor=state.root_accessor,
            policies=["root"],
            path="auth/token/root",
            display_name="root",
            creation_time=state.root_created,
            creation_ttl=0,
            expire_time=None,
            renewable=False,
            orphan=True,
        )

    def authenticate(self, token: str | None, now: float) -> Caller:
        """The caller behind ``token``; 403 when it is missing, unknown or expired."""
        if not token:
            raise permission_denied()
        if hmac.compare_digest(token.encode("utf-8"), self._root):
            return Caller(token=token, entry=self.root_entry(), is_root_token=True)
        entry = self.find(token, now)
        if entry is None:
            raise invalid_token()
        return Caller(token=token, entry=entry)

    def find(self, token: str, now: float) -> TokenEntry | None:
        """The live record for ``token``, or None if unknown or expired."""
        entry = self._store.state.tokens.get(token_digest(token))
        if entry is None or (entry.expire_time is not None and entry.expire_time <= now):
            return None
        return entry

    def issue(
        self,
        *,
        policies: list[str],
        path: str,
        display_name: str,
        ttl: int,
        now: float,
        period: int = 0,
        explicit_max_ttl: int = 0,
        max_ttl: int = 0,
        renewable: bool = True,
        parent: str = "",
        meta: dict[str, str] | None = None,
        num_uses: int = 0,
        entity_id: str = "",
        token: str | None = None,
        warnings: list[str] | None = None,
    ) -> Issued:
        """Record a new token and return its value; the caller saves the store."""
        value = token or f"hvs.{secrets.token_urlsafe(24)}"
        digest = token_digest(value)
        if digest in self._store.state.tokens or hmac.compare_digest(
            value.encode("utf-8"), self._root
        ):
            raise bad_request("cannot create a token with a duplicate ID")
        entry = TokenEntry(
            accessor=new_accessor(),
            policies=policies,
            path=path,
            display_name=display_name,
            creation_time=now,
            creation_ttl=ttl,
            expire_time=now + ttl if ttl > 0 else None,
            explicit_max_ttl=explicit_max_ttl,
            period=period,
            max_ttl=max_ttl,
            renewable=renewable and ttl > 0,
            orphan=not parent,
            parent=parent,
            meta=meta,
            num_uses=num_uses,
            entity_id=entity_id,
        )
        self._store.state.tokens[digest] = entry
        return Issued(token=value, entry=entry, ttl=ttl, warnings=list(warnings or []))

    def login(
        self,
        *,
        settings: TokenSettings,
        path: str,
        display_name: str,
        meta: dict[str, str],
        entity_id: str,
        now: float,
    ) -> Reply:
        """Issue the token an auth-method login grants, from the role's settings."""
        policies = sanitize_policies(settings.policies, add_default=not settings.no_default_policy)
        ttl, warnings = calculate_ttl(
            increment=0,
            backend_ttl=settings.ttl,
            period=settings.period,
            backend_max_ttl=settings.max_ttl,
            explicit_max_ttl=settings.explicit_max_ttl,
            start=now,
            now=now,
        )
        issued = self.issue(
            policies=policies,
            path=path,
            display_name=display_name,
            ttl=ttl,
            now=now,
            period=settings.period,
            explicit_max_ttl=settings.explicit_max_ttl,
            max_ttl=settings.max_ttl,
            meta=meta,
            num_uses=settings.num_uses,
            entity_id=entity_id,
            warnings=warnings,
        )
        self._store.save()
        return Reply(auth=auth_block(issued.token, issued.entry, ttl), warnings=issued.warnings)

    def renew(self, token: str, entry: TokenEntry, increment: int, now: float) -> Reply:
        """Extend a token's lease as far as its limits allow."""
        if not entry.renewable or entry.expire_time is None:
            raise bad_request("lease is not renewable")
        ttl, warnings = calculate_ttl(
            increment=increment,
            backend_ttl=entry.creation_ttl,
            period=entry.period,
            backend_max_ttl=entry.max_ttl,
            explicit_max_ttl=entry.explicit_max_ttl,
            start=entry.creation_time,
            now=now,
        )
        entry.expire_time = now + ttl
        entry.last_renewal_time = now
        self._store.save()
        return Reply(auth=auth_block(token, entry, ttl), warnings=warnings)

    def revoke(self, token: str) -> None:
        """Revoke ``token`` and, as Vault does, every non-orphan token it created."""
        pending = [token_digest(token)]
        tokens = self._store.state.tokens
        while pending:
            digest = pending.pop()
            tokens.pop(digest, None)
            pending.extend(child for child, entry in tokens.items() if entry.parent == digest)
        self._store.save()

    def sweep(self, now: float) -> bool:
        """Forget expired tokens; True if anything was removed."""
        tokens = self._store.state.tokens
        expired = [
            digest
            for digest, entry in tokens.items()
            if entry.expire_time is not None and entry.expire_time <= now
        ]
        for digest in expired:
            del tokens[digest]
        return bool(expired)


def auth_block(token: str, entry: TokenEntry, ttl: int) -> dict[str, Any]:
    """The ``auth`` object Vault returns for a login, creation or renewal."""
    return {
        "client_token": token,
        "accessor": entry.accessor,
        "policies": list(entry.policies),
        "token_policies": list(entry.policies),
        "metadata": entry.meta,
        "lease_duration": ttl,
        "renewable": entry.renewable,
        "entity_id": entry.entity_id,
        "token_type": "service",
        "orphan": entry.orphan,
        "mfa_requirement": None,
        "num_uses": entry.num_uses,
    }


def lookup_view(token: str, entry: TokenEntry, now: float) -> dict[str, Any]:
    """The ``data`` of a token lookup, field for field as Vault reports it."""
    ttl = 0 if entry.expire_time is None else max(0, round(entry.expire_time - now))
    view: dict[str, Any] = {
        "accessor": entry.accessor,
        "creation_time": int(entry.creation_time),
        "creation_ttl": entry.creation_ttl,
        "display_name": entry.display_name,
        "entity_id": entry.entity_id,
        "expire_time": go_time(entry.expire_time),
        "explicit_max_ttl": entry.explicit_max_ttl,
        "id": token,
        "meta": entry.meta,
        "num_uses": entry.num_uses,
        "orphan": entry.orphan,
        "path": entry.path,
        "policies": list(entry.policies),
        "renewable": entry.renewable,
        "ttl": ttl,
        "type": "service",
    }
    if entry.expire_time is not None:
        view["issue_time"] = go_time(entry.creation_time)
    if entry.period:
        view["period"] = entry.period
    if entry.last_renewal_time is not None:
        view["last_renewal_time"] = int(entry.last_renewal_time)
        view["last_renewal"] = go_time(entry.last_renewal_time)
    return view


def _display_name(requested: str) -> str:
    if not requested:
        return "token"
    return _DISPLAY_NAME_UNSAFE.sub("-", f"token-{requested}").rstrip("-")


class TokenBackend:
    """The ``auth/token/`` endpoints: create, lookup, renew and revoke."""

    def __init__(self, store: Store, tokens: TokenStore) -> None:
        self._store = store
        self._tokens = tokens

    def handle(self, call: Call) -> Reply | None:
        """Serve one request under ``auth/token/``."""
        return dispatch(self._routes(), call)

    def _routes(self) -> list[Route]:
        update = Operation.UPDATE
        return [
            _route("create", {update: lambda c, _: self._create(c, orphan=False)}),
            _route("create-orphan", {update: lambda c, _: self._create(c, orphan=True)}),
            _route(
                "lookup-self",
                {Operation.READ: self._lookup_self, update: self._lookup_self},
            ),
            _route("lookup", {update: self._lookup}),
            _route("renew-self", {update: self._renew_self}),
            _route("renew", {update: self._renew}),
            _route("revoke-self", {update: self._revoke_self}),
            _route("revoke", {update: self._revoke}),
        ]

    def _create(self, call: Call, *, orphan: bool) -> Reply:
        caller = _require_caller(call)
        data = call.data
        parent_policies = caller.entry.policies
        requested = fields.string_list(data, "policies")
        if requested is not None and "root" not in parent_policies:
            wanted = set(sanitize_policies(requested, add_default=False)) - {"default"}
            if not wanted <= set(parent_policies):
                raise bad_request("child policies must be subset of parent")
        policies = sanitize_policies(
            requested if requested else parent_policies,
            add_default=not fields.boolean(data, "no_default_policy"),
        )
        ttl = fields.duration(data, "ttl")
        period = fields.duration(data, "period")
        explicit_max_ttl = fields.duration(data, "explicit_max_ttl")
        if min(ttl, period, explicit_max_ttl) < 0:
            raise bad_request("ttl, period and explicit_max_ttl must not be negative")
        warnings: list[str] = []
        if period > 0 or ttl > 0 or "root" not in policies:
            ttl, warnings = calculate_ttl(
                increment=0,
                backend_ttl=ttl,
                period=period,
                backend_max_ttl=0,
                explicit_max_ttl=explicit_max_ttl,
                start=call.now,
                now=call.now,
            )
        custom_id = fields.string(data, "id")
        if custom_id and not caller.is_root_token and "root" not in parent_policies:
            raise bad_request("root or sudo privileges required to specify token id")
        issued = self._tokens.issue(
            policies=policies,
            path="auth/token/create-orphan" if orphan else "auth/token/create",
            display_name=_display_name(fields.string(data, "display_name")),
            ttl=ttl,
            now=call.now,
            period=period,
            explicit_max_ttl=explicit_max_ttl,
            renewable=fields.boolean(data, "renewable", default=True),
            parent="" if orphan else token_digest(caller.token),
            meta=_meta(data),
            num_uses=fields.integer(data, "num_uses"),
            token=custom_id or None,
            warnings=warnings,
        )
        self._store.save()
        return Reply(auth=auth_block(issued.token, issued.entry, ttl), warnings=issued.warnings)

    def _lookup_self(self, call: Call, _: re.Match[str]) -> Reply:
        caller = _require_caller(call)
        return Reply(data=lookup_view(caller.token, caller.entry, call.now))

    def _lookup(self, call: Call, _: re.Match[str]) -> Reply:
        token, entry = self._target(call)
        return Reply(data=lookup_view(token, entry, call.now))

    def _renew_self(self, call: Call, _: re.Match[str]) -> Reply:
        caller = _require_caller(call)
        if caller.is_root_token:
            raise bad_request("lease not found")
        increment = fields.duration(call.data, "increment")
        return self._tokens.renew(caller.token, caller.entry, increment, call.now)

    def _renew(self, call: Call, _: re.Match[str]) -> Reply:
        token, entry = self._target(call)
        increment = fields.duration(call.data, "increment")
        return self._tokens.renew(token, entry, increment, call.now)

    def _revoke_self(self, call: Call, _: re.Match[str]) -> None:
        caller = _require_caller(call)
        if caller.is_root_token:
            raise bad_request("the keyward dev vault cannot revoke its configured root token")
        self._tokens.revoke(caller.token)

    def _revoke(self, call: Call, _: re.Match[str]) -> None:
        token = fields.string(call.data, "token")
        if not token:
            raise bad_request("missing token")
        if self._tokens.find(token, call.now) is not None:
            self._tokens.revoke(token)

    def _target(self, call: Call) -> tuple[str, TokenEntry]:
        caller = _require_caller(call)
        token = fields.string(call.data, "token")
        if not token:
            raise bad_request("missing token")
        if token == caller.token:
            return token, caller.entry
        entry = self._tokens.find(token, call.now)
        if entry is None:
            raise coded(403, "bad token")
        return token, entry


def _route(path: str, handlers: Mapping[Operation, Handler]) -> Route:
    return Route(re.compile(re.escape(path)), handlers)


def _require_caller(call: Call) -> Caller:
    if call.caller is None:
        raise permission_denied()
    return call.caller


def _meta(data: Mapping[str, Any]) -> dict[str, str] | None:
    raw = data.get("meta")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in raw.items()
    ):
        raise bad_request("meta must be a map of strings to strings")
    return dict(raw)
