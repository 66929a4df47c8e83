"""The AppRole auth method: roles, role IDs, secret IDs and login.

A machine logs in with a role ID (which names the role) and a secret ID
(which proves it may use it). Secret IDs may expire (``secret_id_ttl``) or be
limited to a number of uses (``secret_id_num_uses``). Any failure to match
answers 400 ``invalid role or secret ID`` without saying which part was
wrong, as Vault does. Secret IDs are stored as SHA-256 digests.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.errors import bad_request, not_found
from keyward_devstack.vaultdev.leases import parse_token_settings, token_settings_view
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply
from keyward_devstack.vaultdev.routing import NAME, Route, dispatch
from keyward_devstack.vaultdev.state import (
    AppRoleRole,
    AuthMount,
    SecretID,
    Store,
    token_digest,
)
from keyward_devstack.vaultdev.tokens import TokenStore

ERR_INVALID_CREDENTIALS = "invalid role or secret ID"
_ROLE = f"role/(?P<role>{NAME})"


class AppRoleBackend:
    """The endpoints of one AppRole mount."""

    def __init__(self, store: Store, tokens: TokenStore, mount: AuthMount, path: str) -> None:
        self._store = store
        self._tokens = tokens
        self._roles = mount.approle_roles
        self._path = path

    def handle(self, call: Call) -> Reply | None:
        """Serve one request under this mount."""
        update = Operation.UPDATE
        routes = [
            Route(re.compile("login"), {update: self._login}),
            Route(re.compile("role/?"), {Operation.LIST: self._list}),
            Route(
                re.compile(_ROLE),
                {update: self._write, Operation.READ: self._read, Operation.DELETE: self._delete},
            ),
            Route(
                re.compile(f"{_ROLE}/role-id"),
                {Operation.READ: self._read_role_id, update: self._write_role_id},
            ),
            Route(
                re.compile(f"{_ROLE}/secret-id"),
                {update: self._generate_secret_id, Operation.LIST: self._list_secret_ids},
            ),
        ]
        return dispatch(routes, call)

    def _list(self, call: Call, match: re.Match[str]) -> Reply:
        if not self._roles:
            raise not_found()
        return Reply(data={"keys": sorted(self._roles)})

    def _write(self, call: Call, match: re.Match[str]) -> None:
        name, data = match["role"].lower(), call.data
        role = self._roles.get(name) or AppRoleRole(role_id=str(uuid.uuid4()))
        updated = AppRoleRole(
            role_id=fields.string(data, "role_id", role.role_id) or role.role_id,
            bind_secret_id=fields.boolean(data, "bind_secret_id", role.bind_secret_id),
            secret_id_ttl=fields.duration(data, "secret_id_ttl", role.secret_id_ttl),
            secret_id_num_uses=fields.integer(data, "secret_id_num_uses", role.secret_id_num_uses),
            token=parse_token_settings(data, role.token),
            secret_ids=role.secret_ids,
        )
        if updated.secret_id_num_uses < 0:
            raise bad_request("secret_id_num_uses cannot be negative")
        if not updated.bind_secret_id:
            raise bad_request("at least one constraint should be enabled on the role")
        if self._role_id_taken(updated.role_id, name):
            raise bad_request("role_id already in use")
        self._roles[name] = updated
        self._store.save()

    def _read(self, call: Call, match: re.Match[str]) -> Reply:
        role = self._role(match)
        return Reply(data=_role_view(role))

    def _delete(self, call: Call, match: re.Match[str]) -> None:
        if self._roles.pop(match["role"].lower(), None) is not None:
            self._store.save()

    def _read_role_id(self, call: Call, match: re.Match[str]) -> Reply:
        return Reply(data={"role_id": self._role(match).role_id})

    def _write_role_id(self, call: Call, match: re.Match[str]) -> None:
        role = self._role(match)
        role_id = fields.string(call.data, "role_id")
        if not role_id:
            raise bad_request("missing role_id")
        if self._role_id_taken(role_id, match["role"].lower()):
            raise bad_request("role_id already in use")
        role.role_id = role_id
        self._store.save()

    def _generate_secret_id(self, call: Call, match: re.Match[str]) -> Reply:
        name = match["role"].lower()
        role = self._roles.get(name)
        if role is None:
            raise bad_request(f'role "{name}" does not exist')
        if not role.bind_secret_id:
            raise bad_request("bind_secret_id is not set on the role")
        ttl = fields.duration(call.data, "ttl", role.secret_id_ttl)
        uses = fields.integer(call.data, "num_uses", role.secret_id_num_uses)
        secret_id = str(uuid.uuid4())
        accessor = str(uuid.uuid4())
        role.secret_ids[token_digest(secret_id)] = SecretID(
            accessor=accessor,
            created=call.now,
            expires=call.now + ttl if ttl > 0 else None,
            uses_left=uses,
            metadata=_metadata(call.data),
        )
        self._store.save()
        return Reply(
            data={
                "secret_id": secret_id,
                "secret_id_accessor": accessor,
                "secret_id_ttl": ttl,
                "secret_id_num_uses": uses,
            }
        )

    def _list_secret_ids(self, call: Call, match: re.Match[str]) -> Reply:
        role = self._role(match)
        accessors = sorted(
            entry.accessor
            for entry in role.secret_ids.values()
            if entry.expires is None or entry.expires > call.now
        )
        if not accessors:
            raise not_found()
        return Reply(data={"keys": accessors})

    def _login(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        role_id = fields.string(data, "role_id").strip()
        if not role_id:
            raise bad_request("missing role_id")
        found = next(
            ((name, role) for name, role in self._roles.items() if role.role_id == role_id),
            None,
        )
        if found is None:
            raise bad_request(ERR_INVALID_CREDENTIALS)
        name, role = found
        if role.bind_secret_id:
            self._consume_secret_id(role, fields.string(data, "secret_id").strip(), call.now)
        return self._tokens.login(
            settings=role.token,
            path=f"auth/{self._path}login",
            display_name="approle",
            meta={"role_name": name},
            entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"approle/{self._path}{name}")),
            now=call.now,
        )

    def _consume_secret_id(self, role: AppRoleRole, secret_id: str, now: float) -> None:
        if not secret_id:
            raise bad_request("missing secret_id")
        digest = token_digest(secret_id)
        entry = role.secret_ids.get(digest)
        if entry is None or (entry.expires is not None and entry.expires <= now):
            raise bad_request(ERR_INVALID_CREDENTIALS)
        if entry.uses_left > 0:
            entry.uses_left -= 1
            if entry.uses_left == 0:
                del role.secret_ids[digest]
            self._store.save()

    def _role(self, match: re.Match[str]) -> AppRoleRole:
        role = self._roles.get(match["role"].lower())
        if role is None:
            raise not_found()
        return role

    def _role_id_taken(self, role_id: str, name: str) -> bool:
        return any(r.role_id == role_id for n, r in self._roles.items() if n != name)


def _role_view(role: AppRoleRole) -> dict[str, Any]:
    return {
        "bind_secret_id": role.bind_secret_id,
        "local_secret_ids": False,
        "secret_id_bound_cidrs": [],
        "secret_id_num_uses": role.secret_id_num_uses,
        "secret_id_ttl": role.secret_id_ttl,
        **token_settings_view(role.token),
    }


def _metadata(data: Mapping[str, Any]) -> dict[str, str]:
    raw = data.get("metadata")
    if raw is None or raw == "":
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raise bad_request("failed to parse metadata: invalid JSON") from None
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise bad_request("metadata must be a map of strings to strings")
    return {str(k): str(v) for k, v in raw.items()}
