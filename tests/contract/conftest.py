"""Fixtures for the Vault contract tests.

The same tests run against real Vault and against keyward's dev server, which
is how the dev server is kept faithful. Set ``VAULT_ADDR`` and ``VAULT_TOKEN``
(and ``VAULT_CACERT`` for https with a private CA) to use a real Vault; the
tests then create their own transit mount and auth mounts under random names
and remove them afterwards. Otherwise the dev server is started once per
session as a subprocess, exactly as the launcher runs it.

Tests that only make sense against the dev server (restarts, its data
directory, its command line) ask for ``dev_vault`` and are skipped against
real Vault. Tests needing an auth method enable it at a random path and skip
when the token is not allowed to.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import hvac
import hvac.exceptions
import pytest

from tests.contract.support import DevVaultProcess, random_token


@dataclass(frozen=True)
class VaultTarget:
    """The Vault the tests talk to."""

    url: str
    token: str
    verify: bool | str
    dev_server: DevVaultProcess | None


@pytest.fixture(scope="session")
def vault_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VaultTarget]:
    """Real Vault from the environment, else a dev server subprocess for the session."""
    address, token = os.environ.get("VAULT_ADDR"), os.environ.get("VAULT_TOKEN")
    if address and token:
        yield VaultTarget(address, token, os.environ.get("VAULT_CACERT") or True, None)
        return
    server = DevVaultProcess(tmp_path_factory.mktemp("vault") / "data", root_token=random_token())
    server.start()
    try:
        assert server.root_token is not None
        yield VaultTarget(server.url, server.root_token, True, server)
    finally:
        server.stop()


@pytest.fixture
def client_for(vault_target: VaultTarget) -> Iterator[Callable[[str | None], hvac.Client]]:
    """Make hvac clients with any token; they are closed after the test."""
    clients: list[hvac.Client] = []

    def make(token: str | None) -> hvac.Client:
        client = hvac.Client(url=vault_target.url, token=token, verify=vault_target.verify)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.adapter.close()


@pytest.fixture
def root_client(
    vault_target: VaultTarget, client_for: Callable[[str | None], hvac.Client]
) -> hvac.Client:
    """An hvac client holding the privileged token."""
    return client_for(vault_target.token)


@pytest.fixture
def dev_vault(vault_target: VaultTarget) -> DevVaultProcess:
    """The dev server subprocess; skips the test when running against real Vault."""
    if vault_target.dev_server is None:
        pytest.skip("exercises the keyward dev server itself; VAULT_ADDR points at real Vault")
    return vault_target.dev_server


@pytest.fixture(scope="session")
def transit_mount(vault_target: VaultTarget) -> Iterator[str]:
    """A transit mount of the tests' own, removed (with its keys) at the end."""
    client = hvac.Client(url=vault_target.url, token=vault_target.token, verify=vault_target.verify)
    path = f"kw-contract-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("transit", path=path)
    try:
        yield path
    finally:
        client.sys.disable_secrets_engine(path)
        client.adapter.close()


@pytest.fixture
def key_name() -> str:
    """A key name no other test uses."""
    return f"key-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def auth_mount(root_client: hvac.Client) -> Iterator[Callable[[str], str]]:
    """Enable an auth method at a random path; skip if this token may not."""
    enabled: list[str] = []

    def enable(method: str) -> str:
        path = f"kw-{method}-{uuid.uuid4().hex[:8]}"
        try:
            root_client.sys.enable_auth_method(method_type=method, path=path)
        except hvac.exceptions.Forbidden:
            pytest.skip(f"this Vault token may not enable the {method} auth method")
        enabled.append(path)
        return path

    yield enable
    for path in enabled:
        root_client.sys.disable_auth_method(path)
