"""The aiohttp application: Vault's HTTP conventions around the backends.

Every request goes through one handler that does what Vault's HTTP layer and
core do before a backend runs: map the HTTP method to an operation (``LIST``
and ``GET ?list=true`` both list), parse the JSON body, find the mount the
path belongs to, and check the token (``X-Vault-Token``, or
``Authorization: Bearer``) unless the path is one Vault serves without one.
Answers get Vault's envelope and a ``Content-Type`` of exactly
``application/json``, which hvac requires before it reads error lists.

A background task sweeps once a second: it rotates keys whose
``auto_rotate_period`` has passed and forgets expired tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web

from keyward_devstack.vaultdev.approle import AppRoleBackend
from keyward_devstack.vaultdev.config import DevVaultConfig
from keyward_devstack.vaultdev.errors import (
    InternalError,
    UserError,
    VaultApiError,
    bad_request,
    internal_error,
    no_route,
    not_found,
    unsupported_operation,
)
from keyward_devstack.vaultdev.keyring import rotate_due_keys
from keyward_devstack.vaultdev.kubernetes import KubernetesBackend
from keyward_devstack.vaultdev.pki import BodyReply, PkiBackend
from keyward_devstack.vaultdev.protocol import Call, Caller, Operation, Reply
from keyward_devstack.vaultdev.state import Store
from keyward_devstack.vaultdev.system import UNAUTHENTICATED, SystemBackend
from keyward_devstack.vaultdev.tokens import TokenBackend, TokenStore
from keyward_devstack.vaultdev.transit import TransitBackend

_LOG = logging.getLogger("keyward_devstack.vaultdev")

#: Vault's default limit on a request body.
MAX_REQUEST_BYTES = 32 * 1024 * 1024

Backend = Callable[[Call], Reply | None]


class DevVault:
    """One dev server's state and request handling, independent of sockets."""

    def __init__(self, config: DevVaultConfig, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self.store = Store.open(config.data_dir, now=clock())
        self.tokens = TokenStore(self.store, config.root_token)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one HTTP request the way Vault would."""
        try:
            body = await request.read()
            reply, mount_type = self.serve(
                request.method, request.path, request.query, body, request.headers
            )
        except VaultApiError as exc:
            return json_response(exc.status, exc.body())
        except UserError as exc:
            return json_response(400, bad_request(exc.message).body())
        except InternalError as exc:
            return json_response(500, internal_error(exc.message).body())
        except web.HTTPRequestEntityTooLarge:
            return json_response(413, {"errors": ["http: request body too large"]})
        except Exception:  # noqa: BLE001 - HTTP boundary: log, answer 500, never leak a traceback
            _LOG.exception("unexpected failure serving %s %s", request.method, request.path)
            return json_response(500, internal_error("internal error").body())
        if reply is None:
            return web.Response(status=204)
        if isinstance(reply, BodyReply):
            if reply.status == 204:
                return web.Response(status=204)
            return web.Response(status=reply.status, body=reply.body,
                                content_type=reply.content_type)
        return json_response(reply.status, reply.envelope(mount_type))

    def serve(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        body: bytes,
        headers: Mapping[str, str],
    ) -> tuple[Reply | None, str]:
        """The reply for one request, and the mount type for its envelope."""
        if not path.startswith("/v1/"):
            raise not_found()
        relative = path[len("/v1/") :]
        operation = _operation(method, query)
        data = _parse_body(body) if operation in (Operation.UPDATE, Operation.DELETE) else {}
        now = self._clock()
        backend, sub_path, mount_type, open_path = self._resolve(relative)
        caller: Caller | None = None
        if not open_path:
            caller = self.tokens.authenticate(_client_token(headers), now)
        if backend is None:
            raise no_route(relative)
        call = Call(operation=operation, path=sub_path, data=data, now=now, caller=caller)
        return backend(call), mount_type

    def sweep(self) -> None:
        """Rotate keys that are due and forget expired tokens."""
        now = self._clock()
        rotated = rotate_due_keys(self.store.state, now)
        expired = self.tokens.sweep(now)
        if rotated or expired:
            self.store.save()

    def _resolve(self, relative: str) -> tuple[Backend | None, str, str, bool]:
        """The backend serving ``relative``, the path inside it, its type, and if it is open."""
        if relative.startswith("sys/"):
            backend = SystemBackend(self.store).handle
            return backend, relative[len("sys/") :], "system", relative in UNAUTHENTICATED
        state = self.store.state
        if relative.startswith("auth/"):
            inner = relative[len("auth/") :]
            mount_path = _longest_prefix(inner, state.auth_mounts)
            if mount_path is None:
                return None, "", "", False
            auth_mount = state.auth_mounts[mount_path]
            sub_path = inner[len(mount_path) :]
            kind = auth_mount.kind
            if kind == "token":
                return TokenBackend(self.store, self.tokens).handle, sub_path, kind, False
            handler: Backend
            if kind == "approle":
                handler = AppRoleBackend(self.store, self.tokens, auth_mount, mount_path).handle
            else:
                handler = KubernetesBackend(self.store, self.tokens, auth_mount, mount_path).handle
            return handler, sub_path, kind, sub_path == "login"
        mount_path = _longest_prefix(relative, state.secrets_mounts)
        if mount_path is None:
            return None, "", "", False
        secrets_mount = state.secrets_mounts[mount_path]
        if secrets_mount.kind == "pki":
            handler = PkiBackend(self.store, secrets_mount).handle
        else:
            handler = TransitBackend(self.store, secrets_mount).handle
        return handler, relative[len(mount_path) :], secrets_mount.kind, False


#: Where :func:`build_app` keeps the :class:`DevVault` it serves.
DEV_VAULT = web.AppKey("keyward_dev_vault", DevVault)


def build_app(
    config: DevVaultConfig,
    *,
    clock: Callable[[], float] = time.time,
    sweep_interval: float = 1.0,
) -> web.Application:
    """An aiohttp application serving a dev Vault for ``config``.

    ``clock`` and ``sweep_interval`` exist for tests that need time to pass
    faster than it does.
    """
    vault = DevVault(config, clock=clock)
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app[DEV_VAULT] = vault
    app.router.add_route("*", "/{tail:.*}", vault.handle)

    async def sweeper(_: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_sweep_forever(vault, sweep_interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def release(_: web.Application) -> None:
        vault.store.close()

    app.cleanup_ctx.append(sweeper)
    app.on_cleanup.append(release)
    return app


async def _sweep_forever(vault: DevVault, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            vault.sweep()
        except Exception:  # noqa: BLE001 - one failed save must not stop rotation for good
            _LOG.exception("background sweep failed")


def json_response(status: int, body: Mapping[str, Any]) -> web.Response:
    """A JSON answer with Vault's exact ``Content-Type`` (no charset parameter)."""
    return web.Response(
        status=status,
        body=(json.dumps(body) + "\n").encode("utf-8"),
        content_type="application/json",
    )


def _operation(method: str, query: Mapping[str, str]) -> Operation:
    if method in ("GET", "HEAD"):
        listing = query.get("list", "").lower() in ("1", "t", "true")
        return Operation.LIST if listing else Operation.READ
    operations = {
        "LIST": Operation.LIST,
        "POST": Operation.UPDATE,
        "PUT": Operation.UPDATE,
        "DELETE": Operation.DELETE,
    }
    if method in operations:
        return operations[method]
    if method == "PATCH":
        raise unsupported_operation()
    raise VaultApiError(405, [])


def _parse_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"failed to parse JSON input: {exc}") from None
    if not isinstance(parsed, dict):
        raise bad_request(
            "failed to parse JSON input: json: cannot unmarshal "
            f"{type(parsed).__name__} into Go value of type map[string]interface {{}}"
        )
    return parsed


def _client_token(headers: Mapping[str, str]) -> str | None:
    token = headers.get("X-Vault-Token", "").strip()
    if token:
        return token
    authorization = headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        return authorization[len("Bearer ") :].strip() or None
    return None


def _longest_prefix(path: str, mounts: Mapping[str, object]) -> str | None:
    matches = [mount for mount in mounts if path.startswith(mount)]
    return max(matches, key=len) if matches else None
