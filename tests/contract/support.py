"""Helpers shared by the contract tests: running the dev server, polling, encoding."""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import requests

T = TypeVar("T")


def b64(data: bytes) -> str:
    """Base64 as Vault's transit API wants plaintexts, contexts and associated data."""
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    """The bytes of a base64 value Vault returned."""
    return base64.b64decode(text)


def free_port() -> int:
    """A TCP port nothing is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(check: Callable[[], T], *, timeout: float = 5.0, interval: float = 0.05) -> T:
    """Retry ``check`` until it stops failing its assertions or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(interval)


class DevVaultProcess:
    """The dev server as a subprocess, started the way the launcher starts it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        root_token: str | None = None,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        verify: bool | str = True,
        scheme: str = "http",
    ) -> None:
        self.data_dir = data_dir
        self.root_token = root_token
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.verify = verify
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.banner = ""
        self._process: subprocess.Popen[str] | None = None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        command = [
            sys.executable,
            "-m",
            "keyward_devstack.transit_server",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]
        if self.root_token:
            command += ["--root-token", self.root_token]
        return command

    def start(self, timeout: float = 20.0) -> None:
        """Start the server and wait until ``/v1/sys/health`` answers."""
        self._process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                _, stderr = self._process.communicate()
                raise RuntimeError(f"dev vault exited early: {stderr}")
            try:
                health = requests.get(f"{self.url}/v1/sys/health", timeout=1, verify=self.verify)
            except requests.RequestException:
                health = None
            if health is not None and health.status_code == 200:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("dev vault did not become healthy in time")
            time.sleep(0.05)
        assert self._process.stdout is not None
        self.banner = self._process.stdout.readline().strip()
        if not self.root_token:
            self.root_token = self.banner.rsplit("root token: ", 1)[-1]

    def stop(self) -> int:
        """Stop the server with SIGTERM; returns its exit code."""
        process = self._process
        if process is None:
            return 0
        self._process = None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        return process.returncode


def random_token() -> str:
    """A root token for a throwaway dev server."""
    return f"kw-test-{secrets.token_urlsafe(16)}"
