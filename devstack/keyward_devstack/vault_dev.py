"""A development Vault for the local stack: real ``vault server -dev`` if installed,
else keyward's Vault-Transit-compatible dev server (persistent, in the state dir)."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import hvac
import requests

from keyward.errors import StartupError
from keyward.secrets import Secret
from keyward.vault.errors import VaultError, vault_errors
from keyward_devstack.processes import ManagedProcess, port_is_open


def read_or_create_token(path: Path) -> Secret:
    """The dev root token, kept (mode 0600) so a restart of the stack reuses it."""
    if path.is_file():
        # A token file someone else made (or a copy restored with a wide mode) is narrowed:
        # the dev server refuses a token file that others can read.
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return Secret(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = "hvs.dev" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token)
    return Secret(token)


def vault_health(address: str) -> dict[str, object] | None:
    """Vault's health document, or ``None`` when what answers is not Vault."""
    try:
        response = requests.get(f"{address}/v1/sys/health", timeout=1)
        body = response.json()
    except (requests.RequestException, ValueError):
        return None
    return body if isinstance(body, dict) and "initialized" in body else None


def ensure_transit(client: hvac.Client, mount: str, keys: Sequence[str]) -> None:
    """Mount Transit at ``mount`` if needed and create ``keys`` (both idempotent)."""
    with vault_errors("enable transit"):
        mounts = client.sys.list_mounted_secrets_engines()
        listed = mounts.get("data", mounts)
        if f"{mount}/" not in listed:
            client.sys.enable_secrets_engine("transit", path=mount)
    for key in keys:
        with vault_errors(f"create transit key {key}"):
            client.secrets.transit.create_key(name=key, mount_point=mount)


@dataclass(frozen=True)
class DevVault:
    host: str
    port: int
    state_dir: Path

    @property
    def address(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_path(self) -> Path:
        return self.state_dir / "vault-root-token"

    def argv(self) -> list[str]:
        """The command line: never the root token, which every local user could read in
        ``/proc/<pid>/cmdline``. It goes in the environment or the 0600 token file."""
        vault = shutil.which("vault")
        if vault:
            # Real Vault keeps dev-mode state in memory only; keys do not survive a restart.
            return [vault, "server", "-dev", f"-dev-listen-address={self.host}:{self.port}"]
        return [sys.executable, "-m", "keyward_devstack.transit_server", "--host", self.host,
                "--port", str(self.port), "--data-dir", str(self.state_dir / "vault"),
                "--root-token-file", str(self.token_path)]

    def environment(self, token: Secret) -> dict[str, str]:
        """The child's environment: real Vault reads its dev root token from
        ``VAULT_DEV_ROOT_TOKEN_ID``; keyward's dev server reads the token file instead."""
        env = dict(os.environ)
        if shutil.which("vault"):
            env["VAULT_DEV_ROOT_TOKEN_ID"] = token.reveal()
        return env

    async def ensure_running(self) -> tuple[ManagedProcess | None, Secret]:
        """Start the dev Vault unless one that accepts our token already answers."""
        token = read_or_create_token(self.token_path)
        if port_is_open(self.host, self.port):
            if vault_health(self.address) is None:
                raise StartupError(f"port {self.port} on {self.host} is in use by something "
                                   "that is not Vault; stop it, set devstack.vault_port, or point "
                                   "VAULT_ADDR/VAULT_TOKEN at your own Vault")
            if not self._token_works(token):
                raise StartupError(f"a Vault server on port {self.port} does not accept the dev "
                                   f"token in {self.token_path}; set VAULT_ADDR/VAULT_TOKEN to "
                                   "use it, or stop it")
            return None, token
        process = ManagedProcess("vault dev server", self.argv(), self.state_dir / "vault.log",
                                 env=self.environment(token))
        process.start()

        async def healthy() -> bool:
            return await asyncio.to_thread(vault_health, self.address) is not None

        try:
            await process.wait_healthy(healthy, within=30)
        except BaseException:
            process.stop()
            raise
        return process, token

    def _token_works(self, token: Secret) -> bool:
        client = hvac.Client(url=self.address, token=token.reveal(), timeout=2)
        try:
            with vault_errors("token lookup-self"):
                client.auth.token.lookup_self()
        except VaultError:
            return False
        finally:
            client.adapter.close()
        return True
