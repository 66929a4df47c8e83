"""The dev stack's Temporal server start survives losing a port race, and only that.

``temporal server start-dev`` picks its HTTP, metrics and internal services' ports itself
(pick, then bind), so another process can take one in between and the CLI exits with
"address already in use". The tests provoke exactly that by handing the real CLI an
``--http-port`` that a socket here holds.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from keyward.errors import StartupError
from keyward_devstack.processes import free_port
from keyward_devstack.temporal_dev import TemporalDevServer


@dataclass(frozen=True)
class _ServerWithHttpPort(TemporalDevServer):
    http_port: int = 0

    def argv(self) -> list[str]:
        return [*super().argv(), "--http-port", str(self.http_port)]


def _held_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _starts(log: Path) -> int:
    return log.read_text(errors="replace").count("address already in use") if log.exists() else 0


def test_a_start_that_lost_a_port_race_is_tried_again(tmp_path: Path) -> None:
    holder = _held_port()
    server = _ServerWithHttpPort("127.0.0.1", free_port(), free_port(), tmp_path,
                                 http_port=holder.getsockname()[1])
    log = tmp_path / "temporal.log"

    def release_after_the_first_failure() -> None:
        while _starts(log) < 1:
            threading.Event().wait(0.05)
        holder.close()

    releaser = threading.Thread(target=release_after_the_first_failure, daemon=True)
    releaser.start()
    process = asyncio.run(server.ensure_running())
    try:
        assert process is not None
        assert process.exited() is None
        assert _starts(log) == 1  # one lost race, then a start that came up
    finally:
        assert process is not None
        process.stop()
        holder.close()


def test_a_port_that_stays_taken_fails_after_three_starts(tmp_path: Path) -> None:
    holder = _held_port()
    try:
        server = _ServerWithHttpPort("127.0.0.1", free_port(), free_port(), tmp_path,
                                     http_port=holder.getsockname()[1])
        with pytest.raises(StartupError, match="exited with code") as raised:
            asyncio.run(server.ensure_running())
        assert "address already in use" in str(raised.value)
        assert _starts(tmp_path / "temporal.log") == 3
    finally:
        holder.close()
