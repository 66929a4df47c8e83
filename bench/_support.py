"""What the benchmarks share: a throwaway dev Vault, the machine description, medians."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import hvac

from keyward.secrets import Secret
from keyward_devstack.processes import free_port
from keyward_devstack.vault_dev import DevVault, ensure_transit

TRANSIT_MOUNT = "transit"
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class VaultHandle:
    address: str
    token: Secret


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextlib.contextmanager
def dev_vault(keys: Sequence[str]) -> Iterator[VaultHandle]:
    """keyward's dev Vault on a free port in a temporary directory, with ``keys`` in Transit.

    Stopped on the way out, also on an error, Ctrl-C or SIGTERM (the server runs in its
    own session, so the terminal's Ctrl-C reaches only us).
    """
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        with tempfile.TemporaryDirectory(prefix="keyward-bench-") as tmp:
            dev = DevVault(host="127.0.0.1", port=free_port(), state_dir=Path(tmp))
            process, token = asyncio.run(dev.ensure_running())
            try:
                client = hvac.Client(url=dev.address, token=token.reveal(), timeout=10)
                try:
                    ensure_transit(client, TRANSIT_MOUNT, keys)
                finally:
                    client.adapter.close()
                yield VaultHandle(address=dev.address, token=token)
            finally:
                if process is not None:
                    process.stop()
    finally:
        signal.signal(signal.SIGTERM, previous)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_count() -> int:
    """What ``nproc`` prints: the CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def machine_description() -> str:
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    return (f"nproc={cpu_count()}, CPU {cpu_model()!r}, Python {platform.python_version()} "
            f"({sys.implementation.name}), {platform.system()} {platform.release()}, {today}")


def code_state(paths: Sequence[str] = ("keyward",)) -> str:
    """Which code was measured: the commit, and files under ``paths`` changed since it."""
    git = shutil.which("git")
    if git is None:
        return "unknown (no git)"
    try:
        commit = subprocess.run([git, "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                capture_output=True, check=True, timeout=10).stdout.strip()
        status = subprocess.run([git, "status", "--porcelain", "--", *paths], cwd=ROOT,
                                text=True, capture_output=True, check=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown (git failed)"
    changed = sorted(line[3:] for line in status.splitlines() if line.strip())
    if not changed:
        return f"commit {commit}, clean"
    return f"commit {commit} + uncommitted changes to {', '.join(changed)}"


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")
