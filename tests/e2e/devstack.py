"""`python worker.py --dev` as a subprocess, on free ports in a test's own directory.

Shared by the tests that drive the local stack as a user would (``test_dev_stack``,
``test_starter_cli``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from keyward_devstack.processes import free_port
from keyward_devstack.temporal_dev import temporal_cli_path
from tests.support import kill_processes_mentioning, wait_until

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DevWorker:
    state_dir: Path
    temporal_port: int
    ui_port: int
    vault_port: int
    codec_port: int
    log_dir: Path
    #: More ``KEYWARD_*`` settings for the worker (and for starters sharing its env).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The in-process mTLS gateway the worker connects through.
    gateway_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    runs: int = 0

    @classmethod
    def on_free_ports(cls, directory: Path, **extra_env: str) -> DevWorker:
        return cls(state_dir=directory / "state", temporal_port=free_port(),
                   ui_port=free_port(), vault_port=free_port(), codec_port=free_port(),
                   log_dir=directory, extra_env=dict(extra_env))

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TEMPORAL_", "VAULT_", "KEYWARD_"))}
        env.update({
            "KEYWARD_DEVSTACK__STATE_DIR": str(self.state_dir),
            "KEYWARD_DEVSTACK__TEMPORAL_PORT": str(self.temporal_port),
            "KEYWARD_DEVSTACK__UI_PORT": str(self.ui_port),
            "KEYWARD_DEVSTACK__VAULT_PORT": str(self.vault_port),
            "KEYWARD_DEVSTACK__CODEC_SERVER_PORT": str(self.codec_port),
            "KEYWARD_DEVSTACK__GATEWAY_PORT": str(self.gateway_port),
            "KEYWARD_LOGGING__FORMAT": "json",
        })
        env.update(self.extra_env)
        return env

    @property
    def client_env(self) -> dict[str, str]:
        """What an operator exports to use the running stack: its addresses and dev token."""
        token = (self.state_dir / "vault-root-token").read_text().strip()
        return self.env | {"TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
                           "VAULT_ADDR": f"http://127.0.0.1:{self.vault_port}",
                           "VAULT_TOKEN": token}

    def start(self, *extra: str) -> None:
        self.runs += 1
        self.stdout = self.log_dir / f"stdout-{self.runs}.log"
        self.stderr = self.log_dir / f"stderr-{self.runs}.log"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.proc = subprocess.Popen([sys.executable, "worker.py", "--dev", *extra],
                                         cwd=ROOT, env=self.env, stdout=out, stderr=err)

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.output()}")
            return '"worker started"' in self.stderr.read_text()
        wait_until(ready, within=120, what="worker started")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)

    def shut_down(self) -> None:
        """Teardown: stop the worker if it still runs, then anything left of its stack."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the normal way: it stops its own children
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        kill_processes_mentioning(str(self.state_dir))

    def temporal(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(temporal_cli_path()), *args, "--address",
                               f"127.0.0.1:{self.temporal_port}"],
                              capture_output=True, text=True, timeout=60, check=False)


def payloads_in(document: object) -> list[dict[str, str]]:
    """Every {"metadata":..., "data":...} object in a JSON document."""
    found: list[dict[str, str]] = []
    if isinstance(document, dict):
        if "metadata" in document and "data" in document:
            found.append(document)
        for value in document.values():
            found += payloads_in(value)
    elif isinstance(document, list):
        for value in document:
            found += payloads_in(value)
    return found
