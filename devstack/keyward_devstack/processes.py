"""Child processes of the local stack: start with a log file, wait until healthy, stop.

Children run in their own session, so the terminal's Ctrl-C reaches only the
parent, which then stops them in order (worker first, servers last). A child
that outlives a killed parent is found again at the next start by its port and
reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from keyward.errors import StartupError


def port_is_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free right now (for tests and ephemeral services)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ManagedProcess:
    """One child process whose output goes to a log file in the state directory."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path,
                 *, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._env = env
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(  # noqa: S603 - argv is built by keyward, not a shell
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self._env, start_new_session=True,
            )

    def exited(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])

    async def wait_healthy(self, check: Callable[[], Awaitable[bool]], *,
                           within: float = 60.0) -> None:
        """Poll ``check`` until it passes; fail early and clearly if the child dies."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            code = self.exited()
            if code is not None:
                raise StartupError(f"{self.name} exited with code {code} during start; "
                                   f"last lines of {self.log_path}:\n{self.log_tail()}")
            if await check():
                return
            await asyncio.sleep(0.2)
        raise StartupError(f"{self.name} did not become healthy within {within:.0f}s; "
                           f"see {self.log_path}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if it does not leave in time."""
        if self._proc is None or self._proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            self._proc.wait(timeout=5)
