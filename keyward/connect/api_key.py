"""The Temporal API key (a bearer token) from a file that something else keeps fresh.

A cluster with Temporal's default JWT authorizer wants a token on every call, and
tokens expire: an OIDC sidecar, a Vault agent or a projected service-account
token rewrites a file before they do. ``temporal.api_key_file`` names that file;
the worker reads it at start and, watching it by content, hands each new token to
the client the worker runs on now (``client.api_key = ...`` updates the
``authorization`` header of every later call, including the worker's polls).
Clients made later by the certificate reload hook copy the current key. The token
is registered with the log redactor and never logged.

The same pieces serve the Temporal Cloud Operations API client (``cloud.api_key_file``,
``keyward.cloud.ops``): anything with a settable ``api_key`` (``temporalio.client.Client``,
``CloudOperationsClient``) can be kept fresh, and the setting and the log lines name
whichever file it is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final, Protocol

from keyward.connect.watch import ContentWatcher
from keyward.errors import ConfigError
from keyward.log import get_logger
from keyward.secrets import REGISTRY

_log = get_logger("keyward.connect.api_key")

TEMPORAL_SETTING: Final = "temporal.api_key_file"


class HoldsApiKey(Protocol):
    """A client whose ``api_key`` can be replaced while it runs (the SDK's clients)."""

    api_key: str | None


def read_api_key(path: Path, *, setting: str = TEMPORAL_SETTING) -> str:
    """The token in ``path`` (surrounding whitespace dropped), registered as a secret.
    Problems are ConfigErrors naming ``setting``."""
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(setting, f"cannot read {path}: {error}") from None
    if not token:
        raise ConfigError(setting, f"{path} is empty")
    REGISTRY.add(token)
    return token


class ApiKeyReloader:
    """Sets a new API key on ``current_client()`` whenever the file's content changes.

    An empty or unreadable file is refused with an error line and the current key
    stays: a token being rewritten is retried at the next change. ``label`` starts the
    log lines ("temporal api key reloaded"), ``setting`` names the file in errors.
    """

    def __init__(self, current_client: Callable[[], HoldsApiKey], path: Path, *,
                 interval: float, setting: str = TEMPORAL_SETTING,
                 label: str = "temporal api key") -> None:
        self._client = current_client
        self._path = path
        self._setting = setting
        self._label = label
        self.reloads = 0
        self.failures = 0
        self._watcher = ContentWatcher([path], self._reload, interval_seconds=interval)

    def start(self) -> None:
        self._watcher.start()

    async def stop(self) -> None:
        await self._watcher.stop()

    async def check_now(self) -> bool:
        """Read the file if its content changed; True if a new key was set."""
        return await self._watcher.check_now()

    async def _reload(self) -> bool:
        try:
            token = read_api_key(self._path, setting=self._setting)
        except ConfigError as error:
            self.failures += 1
            _log.error(f"{self._label} refused; keeping the current one", error=str(error))
            return False
        self._client().api_key = token
        self.reloads += 1
        _log.info(f"{self._label} reloaded", file=str(self._path), reloads=self.reloads)
        return True
