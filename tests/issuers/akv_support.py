"""What the Key Vault tests share: the fixed-token credential, the emulator on a free port
and the client options that reach it (its CA, a non-Azure host, no SDK retries)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessToken
from azure.keyvault.certificates._shared import http_challenge_cache as certificate_challenges
from azure.keyvault.secrets._shared import http_challenge_cache as secret_challenges

from keyward_devstack.processes import free_port
from tests.emulators.azure_keyvault import KeyVaultEmulator, RunningVault, serve
from tests.tls_material import ServerTLS

TOKEN = f"kw-test-token-{uuid.uuid4().hex}"


@dataclass
class FixedTokenCredential:
    """A ``TokenCredential`` that always returns one token and remembers what it was asked."""

    token: str
    requests: list[tuple[tuple[str, ...], str | None]] = field(default_factory=list)

    def get_token(self, *scopes: str, claims: str | None = None, tenant_id: str | None = None,
                  enable_cae: bool = False, **kwargs: Any) -> AccessToken:
        self.requests.append((scopes, tenant_id))
        return AccessToken(self.token, int(time.time()) + 3600)


def forget_challenges() -> None:
    """The SDK caches each vault's challenge process-wide; a reused port must start afresh."""
    certificate_challenges.clear()
    secret_challenges.clear()


@contextmanager
def running_vault(tls: ServerTLS) -> Iterator[RunningVault]:
    """A fresh emulator that accepts only :data:`TOKEN`, on a free port."""
    with ExitStack() as stack:
        for attempt in range(3):  # free_port() can lose a race with another process
            try:
                running = stack.enter_context(
                    serve(KeyVaultEmulator(accepted_tokens={TOKEN}), tls, port=free_port()))
            except OSError:
                if attempt == 2:
                    raise
                continue
            break
        yield running


def connection(vault: RunningVault, **extra: Any) -> dict[str, Any]:
    """Client options for the emulator: its CA, a non-Azure host, no SDK-level retries."""
    return {"verify_challenge_resource": False, "connection_verify": vault.ca_path,
            "retry_total": 0, **extra}
