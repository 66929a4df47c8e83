"""The ``sys/`` endpoints: health, and enabling secrets engines and auth methods.

Mount paths behave as in Vault: they are stored with a trailing slash, may be
nested (``team/a/transit``), cannot overlap an existing mount in either
direction (``path is already in use at ...``), and disabling a mount drops
everything stored under it. Disabling a path that is not mounted succeeds, as
Vault's "(if it existed)" wording promises.
"""

from __future__ import annotations

import re
from typing import Any

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.errors import bad_request
from keyward_devstack.vaultdev.pki import remove_mount_data as remove_pki_data
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply
from keyward_devstack.vaultdev.routing import Route, dispatch
from keyward_devstack.vaultdev.state import (
    AuthMount,
    SecretsMount,
    Store,
    new_auth_mount,
    new_secrets_mount,
)

#: The Vault version whose API this server follows, reported where Vault reports its own;
#: the cluster name tells the two apart.
VERSION = "1.19.0"
CLUSTER_NAME = "keyward-dev-vault"

SECRETS_ENGINES = frozenset({"transit", "pki"})
AUTH_METHODS = frozenset({"approle", "kubernetes"})
#: Paths Vault mounts itself and never lets anyone else take.
_BUILTIN_SECRETS_PATHS = ("sys/", "cubbyhole/", "identity/")

#: Paths that answer without a token, as in Vault.
UNAUTHENTICATED = frozenset({"sys/health", "sys/seal-status", "sys/init"})


def normalize_mount_path(raw: str) -> str:
    """A mount path as Vault stores it: no leading slash, one trailing slash."""
    path = raw.strip("/")
    return f"{path}/" if path else ""


def conflicting_mount(path: str, existing: list[str]) -> str | None:
    """The mounted path ``path`` would overlap, if any (prefix in either direction)."""
    for mounted in existing:
        if path.startswith(mounted) or mounted.startswith(path):
            return mounted
    return None


class SystemBackend:
    """The ``sys/`` endpoints this server implements."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def handle(self, call: Call) -> Reply | None:
        """Serve one request under ``sys/``."""
        read, update, delete = Operation.READ, Operation.UPDATE, Operation.DELETE
        routes = [
            Route(re.compile("health"), {read: self._health}),
            Route(re.compile("seal-status"), {read: self._seal_status}),
            Route(re.compile("init"), {read: lambda c, m: Reply(raw={"initialized": True})}),
            Route(re.compile("mounts"), {read: self._list_mounts}),
            Route(
                re.compile("mounts/(?P<path>.+)"),
                {update: self._mount, delete: self._unmount, read: self._read_mount},
            ),
            Route(re.compile("auth"), {read: self._list_auth}),
            Route(
                re.compile("auth/(?P<path>.+)"),
                {update: self._enable_auth, delete: self._disable_auth},
            ),
        ]
        return dispatch(routes, call)

    # health ------------------------------------------------------------------------

    def _health(self, call: Call, match: re.Match[str]) -> Reply:
        return Reply(
            raw={
                "initialized": True,
                "sealed": False,
                "standby": False,
                "performance_standby": False,
                "replication_performance_mode": "disabled",
                "replication_dr_mode": "disabled",
                "server_time_utc": int(call.now),
                "version": VERSION,
                "enterprise": False,
                "cluster_name": CLUSTER_NAME,
                "cluster_id": self._store.state.cluster_id,
                "echo_duration_ms": 0,
                "clock_skew_ms": 0,
                "replication_primary_canary_age_ms": 0,
                "removed_from_cluster": False,
            }
        )

    def _seal_status(self, call: Call, match: re.Match[str]) -> Reply:
        return Reply(
            raw={
                "type": "shamir",
                "initialized": True,
                "sealed": False,
                "t": 1,
                "n": 1,
                "progress": 0,
                "nonce": "",
                "version": VERSION,
                "build_date": "",
                "migration": False,
                "cluster_name": CLUSTER_NAME,
                "cluster_id": self._store.state.cluster_id,
                "recovery_seal": False,
                "storage_type": "file",
                "removed_from_cluster": False,
            }
        )

    # secrets engines ---------------------------------------------------------------

    def _list_mounts(self, call: Call, match: re.Match[str]) -> Reply:
        listing = {
            "sys/": _mount_view(
                "system",
                "system_00000000",
                "",
                "system endpoints used for control, policy and debugging",
            ),
        }
        for path, mount in sorted(self._store.state.secrets_mounts.items()):
            listing[path] = _mount_view(mount.kind, mount.accessor, mount.uuid, mount.description)
        return Reply(data=listing, inject_top=True)

    def _read_mount(self, call: Call, match: re.Match[str]) -> Reply:
        path = normalize_mount_path(match["path"])
        mount = self._store.state.secrets_mounts.get(path)
        if mount is None:
            raise bad_request(f"No secret engine mount at {path}")
        return Reply(data=_mount_view(mount.kind, mount.accessor, mount.uuid, mount.description))

    def _mount(self, call: Call, match: re.Match[str]) -> None:
        path = normalize_mount_path(match["path"])
        kind = fields.string(call.data, "type")
        if not path:
            raise bad_request("path cannot be empty")
        if path.startswith("auth/"):
            raise bad_request("cannot mount under auth/")
        taken = [*_BUILTIN_SECRETS_PATHS, *self._store.state.secrets_mounts]
        conflict = conflicting_mount(path, taken)
        if conflict is not None:
            raise bad_request(f"path is already in use at {conflict}")
        if not kind:
            raise bad_request("backend type must be specified as a string")
        if kind not in SECRETS_ENGINES:
            raise bad_request(
                f'secrets engine type "{kind}" is not supported by the keyward dev vault '
                f"(supported: {', '.join(sorted(SECRETS_ENGINES))})"
            )
        mount: SecretsMount = new_secrets_mount(kind)
        mount.description = fields.string(call.data, "description")
        self._store.state.secrets_mounts[path] = mount
        self._store.save()

    def _unmount(self, call: Call, match: re.Match[str]) -> None:
        path = normalize_mount_path(match["path"])
        if path in _BUILTIN_SECRETS_PATHS:
            raise bad_request(f"cannot unmount {path!r}")
        mount = self._store.state.secrets_mounts.pop(path, None)
        if mount is not None:
            self._store.save()
            # Vault drops a disabled mount's storage; a PKI mount keeps its CA keys apart.
            remove_pki_data(self._store.data_dir, mount)

    # auth methods ------------------------------------------------------------------

    def _list_auth(self, call: Call, match: re.Match[str]) -> Reply:
        listing = {
            path: _mount_view(mount.kind, mount.accessor, mount.uuid, mount.description)
            for path, mount in sorted(self._store.state.auth_mounts.items())
        }
        return Reply(data=listing, inject_top=True)

    def _enable_auth(self, call: Call, match: re.Match[str]) -> None:
        path = normalize_mount_path(match["path"])
        kind = fields.string(call.data, "type")
        if not path:
            raise bad_request("path cannot be empty")
        if kind == "token":
            raise bad_request("token credential backend cannot be instantiated")
        conflict = conflicting_mount(path, list(self._store.state.auth_mounts))
        if conflict is not None:
            raise bad_request(f"path is already in use at {conflict}")
        if kind not in AUTH_METHODS:
            raise bad_request(
                f'auth method type "{kind}" is not supported by the keyward dev vault '
                f"(supported: {', '.join(sorted(AUTH_METHODS))})"
            )
        mount: AuthMount = new_auth_mount(kind, fields.string(call.data, "description"))
        self._store.state.auth_mounts[path] = mount
        self._store.save()

    def _disable_auth(self, call: Call, match: re.Match[str]) -> None:
        path = normalize_mount_path(match["path"])
        if path == "token/":
            raise bad_request("token credential backend cannot be disabled")
        if self._store.state.auth_mounts.pop(path, None) is not None:
            self._store.save()


def _mount_view(kind: str, accessor: str, uuid: str, description: str) -> dict[str, Any]:
    return {
        "accessor": accessor,
        "config": {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0},
        "description": description,
        "external_entropy_access": False,
        "local": False,
        "options": None,
        "plugin_version": "",
        "running_plugin_version": f"v{VERSION}+builtin",
        "running_sha256": "",
        "seal_wrap": False,
        "type": kind,
        "uuid": uuid,
    }
