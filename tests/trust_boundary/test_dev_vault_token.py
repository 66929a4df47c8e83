"""The dev Vault's root token never appears on a command line.

``/proc/<pid>/cmdline`` is readable by every local user; ``/proc/<pid>/environ`` and a
0600 file are not. The dev stack hands keyward's dev server the token file, and real
Vault ``VAULT_DEV_ROOT_TOKEN_ID``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from keyward.secrets import Secret
from keyward_devstack.processes import ManagedProcess, free_port
from keyward_devstack.vault_dev import DevVault, read_or_create_token
from keyward_devstack.vaultdev.config import ROOT_TOKEN_ENV

pytestmark = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")


def command_line(pid: int) -> bytes:
    """What every local user can read about a process's arguments."""
    return Path(f"/proc/{pid}/cmdline").read_bytes()


@pytest.fixture
def processes() -> Iterator[list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    yield started
    for process in started:
        process.stop()


async def test_dev_vault_root_token_is_not_on_its_command_line(
        tmp_path: Path, processes: list[ManagedProcess]) -> None:
    """The dev Vault the local stack starts gets its root token through the environment or
    its 0600 token file: it is not in /proc/<pid>/cmdline, and the token file is 0600."""
    dev = DevVault(host="127.0.0.1", port=free_port(), state_dir=tmp_path / "state")
    process, token = await dev.ensure_running()
    assert process is not None
    processes.append(process)
    assert process.pid is not None
    assert token.reveal().encode() not in command_line(process.pid)
    assert stat.S_IMODE(dev.token_path.stat().st_mode) == 0o600
    assert token.reveal() not in (dev.state_dir / "vault.log").read_text()
    client = hvac.Client(url=dev.address, token=token.reveal(), timeout=5)
    try:
        assert client.auth.token.lookup_self()["data"]["policies"] == ["root"]
    finally:
        client.adapter.close()


def test_a_world_readable_token_file_is_narrowed_before_use(tmp_path: Path) -> None:
    """A token file that others can read is made 0600 before the stack uses it."""
    path = tmp_path / "vault-root-token"
    path.write_text("hvs.devhandmade0000000000000000")
    path.chmod(0o644)
    assert read_or_create_token(path) == Secret("hvs.devhandmade0000000000000000")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def run_server(tmp_path: Path, *args: str, env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess[str]:
    """The dev server's command line, stopped right after start (it fails before it listens)."""
    return subprocess.run(
        [sys.executable, "-m", "keyward_devstack.transit_server", "--port", str(free_port()),
         "--data-dir", str(tmp_path / "data"), *args],
        capture_output=True, text=True, timeout=30, check=False,
        env={**os.environ, **(env or {})})


def test_dev_server_refuses_a_token_file_others_can_read(tmp_path: Path) -> None:
    """keyward's dev server refuses a --root-token-file readable by group or others."""
    path = tmp_path / "token"
    path.write_text("hvs.devwide000000000000000000000")
    path.chmod(0o640)
    finished = run_server(tmp_path, "--root-token-file", str(path))
    assert finished.returncode == 1
    assert "chmod 600" in finished.stderr
    assert "hvs.devwide" not in finished.stderr


def test_dev_server_refuses_a_missing_token_file(tmp_path: Path) -> None:
    """A --root-token-file that does not exist is a one-line error, not a new token."""
    finished = run_server(tmp_path, "--root-token-file", str(tmp_path / "missing"))
    assert finished.returncode == 1
    assert "cannot read root token file" in finished.stderr


@pytest.mark.parametrize("source", ["file", "environment"])
async def test_token_from_file_or_environment_is_used_and_not_printed(
        tmp_path: Path, processes: list[ManagedProcess], source: str) -> None:
    """A root token from --root-token-file or $KEYWARD_DEV_VAULT_ROOT_TOKEN is the server's
    root token, and its banner names where it came from instead of printing it."""
    token = "hvs.devfromsource00000000000000000"
    port = free_port()
    args = [sys.executable, "-m", "keyward_devstack.transit_server", "--port", str(port),
            "--data-dir", str(tmp_path / "data")]
    env = dict(os.environ)
    if source == "file":
        path = tmp_path / "token"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, token.encode())
        os.close(fd)
        args += ["--root-token-file", str(path)]
    else:
        env[ROOT_TOKEN_ENV] = token
    process = ManagedProcess("dev vault", args, tmp_path / "vault.log", env=env)
    process.start()
    processes.append(process)
    dev = DevVault(host="127.0.0.1", port=port, state_dir=tmp_path)

    async def up() -> bool:
        return "listening" in (tmp_path / "vault.log").read_text()

    await process.wait_healthy(up, within=30)
    assert token not in (tmp_path / "vault.log").read_text()
    client = hvac.Client(url=dev.address, token=token, timeout=5)
    try:
        assert client.auth.token.lookup_self()["data"]["policies"] == ["root"]
    finally:
        client.adapter.close()
