"""How a dev server is started: where it keeps state, where it listens, its root token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

#: The environment variable a launcher passes the root token in (never on the command
#: line: ``/proc/<pid>/cmdline`` is world-readable, ``/proc/<pid>/environ`` is not).
ROOT_TOKEN_ENV: Final = "KEYWARD_DEV_VAULT_ROOT_TOKEN"  # noqa: S105 - a variable name


@dataclass(frozen=True)
class DevVaultConfig:
    """Settings for one dev server.

    ``port`` 0 asks the OS for a free port; :class:`RunningDevVault.url`
    reports the one chosen. Serving https needs both ``tls_cert`` and
    ``tls_key`` (PEM files).
    """

    data_dir: Path
    root_token: str
    host: str = "127.0.0.1"
    port: int = 8200
    tls_cert: Path | None = None
    tls_key: Path | None = None

    def __post_init__(self) -> None:
        if not self.root_token:
            raise ValueError("root_token must not be empty")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key must be given together")

    @property
    def scheme(self) -> str:
        """``https`` when a certificate is configured, else ``http``."""
        return "https" if self.tls_cert is not None else "http"

    def __repr__(self) -> str:
        # The root token is a credential: never print it in reprs or logs.
        return (
            f"DevVaultConfig(data_dir={self.data_dir!r}, root_token='***', host={self.host!r}, "
            f"port={self.port!r}, tls_cert={self.tls_cert!r}, tls_key={self.tls_key!r})"
        )
