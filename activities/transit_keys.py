"""Activities that read and change Vault Transit keys.

Plain ``def`` methods: hvac is synchronous, so the worker runs these on its
thread pool, never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import hvac
from temporalio import activity

from keyward.temporal.failures import as_application_error
from keyward.vault.errors import VaultError, vault_errors


@dataclass(frozen=True)
class ReadKeyInput:
    key: str
    mount: str = "transit"


@dataclass(frozen=True)
class TransitKeyInfo:
    """The parts of ``GET transit/keys/:name`` keyward decides things with."""

    name: str
    type: str
    latest_version: int
    min_decryption_version: int
    min_encryption_version: int
    min_available_version: int
    auto_rotate_period_seconds: int
    #: version → creation time (Unix seconds)
    version_created: dict[int, int]


class TransitKeyActivities:
    """Holds the Vault client the activities share; registered as bound methods."""

    def __init__(self, vault: hvac.Client) -> None:
        self._vault = vault

    @activity.defn(name="ReadTransitKey")
    def read_transit_key(self, request: ReadKeyInput) -> TransitKeyInfo:
        try:
            with vault_errors(f"read transit key {request.mount}/{request.key}"):
                data = self._vault.secrets.transit.read_key(name=request.key,
                                                            mount_point=request.mount)["data"]
        except VaultError as exc:
            raise as_application_error(exc) from exc
        return TransitKeyInfo(
            name=request.key,
            type=str(data["type"]),
            latest_version=int(data["latest_version"]),
            min_decryption_version=int(data["min_decryption_version"]),
            min_encryption_version=int(data.get("min_encryption_version") or 0),
            min_available_version=int(data.get("min_available_version") or 0),
            auto_rotate_period_seconds=int(data.get("auto_rotate_period") or 0),
            version_created={int(v): _unix(t) for v, t in data["keys"].items()},
        )


def _unix(value: object) -> int:
    """Vault reports creation time as Unix seconds for symmetric keys."""
    if isinstance(value, int | float | str):
        return int(value)
    raise ValueError(f"unexpected key creation time {value!r}")
