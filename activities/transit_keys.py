"""Activities that read and change Vault Transit keys.

Plain ``def`` methods: hvac is synchronous, so the worker runs these on its
thread pool, never on the event loop.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

import hvac
from temporalio import activity

from keyward.contracts import failures
from keyward.contracts.transit import (
    READ_TRANSIT_KEY,
    ROTATE_TRANSIT_KEY,
    SET_DECRYPTION_FLOOR,
    FloorRequest,
    ReadKeyInput,
    RotateRequest,
    TransitKeyInfo,
)
from keyward.errors import KeywardError
from keyward.metrics import KEY_LATEST_VERSION_CREATED
from keyward.temporal.failures import to_application_error
from keyward.vault.errors import VaultError, vault_errors
from keyward.vault.names import InvalidVaultName, check_key_name, check_mount


class TransitKeyActivities:
    """Holds the Vault client the activities share; registered as bound methods."""

    def __init__(self, vault: hvac.Client) -> None:
        self._vault = vault
        # Vault has no compare-and-swap on rotate: serialise read-then-rotate per key within
        # this worker. Across workers, per-trigger workflow ids keep triggers from racing.
        self._rotation_locks: defaultdict[tuple[str, str], threading.Lock] = \
            defaultdict(threading.Lock)

    @activity.defn(name=READ_TRANSIT_KEY.name)
    def read_transit_key(self, request: ReadKeyInput) -> TransitKeyInfo:
        return self._read(request.key, request.mount)

    @activity.defn(name=ROTATE_TRANSIT_KEY.name)
    def rotate_transit_key(self, request: RotateRequest) -> TransitKeyInfo:
        """Compare-and-rotate: rotate only if the latest version is still the expected one."""
        with self._rotation_locks[(request.mount, request.key)]:
            return self._rotate_if_current(request)

    def _rotate_if_current(self, request: RotateRequest) -> TransitKeyInfo:
        current = self._read(request.key, request.mount)
        if current.latest_version > request.expected_latest:
            activity.logger.info("key %s already rotated past v%d (now v%d); not rotating again",
                                 request.key, request.expected_latest, current.latest_version)
            return current
        self._call(f"rotate transit key {request.mount}/{request.key}",
                   lambda: self._vault.secrets.transit.rotate_key(name=request.key,
                                                                  mount_point=request.mount))
        return self._read(request.key, request.mount)

    @activity.defn(name=SET_DECRYPTION_FLOOR.name)
    def set_decryption_floor(self, request: FloorRequest) -> TransitKeyInfo:
        """Raise min_decryption_version (never lower it); optionally trim below it."""
        current = self._read(request.key, request.mount)
        floor = request.min_decryption_version
        if floor > current.latest_version:
            raise to_application_error(KeywardError(
                f"refusing floor v{floor} above latest v{current.latest_version} of "
                f"{request.key}", failure_type=failures.INVALID_FLOOR))
        if floor > current.min_decryption_version:
            self._call(f"raise decryption floor of {request.mount}/{request.key}",
                       lambda: self._vault.secrets.transit.update_key_configuration(
                           name=request.key, mount_point=request.mount,
                           min_decryption_version=floor))
        if request.trim and floor > current.min_available_version:
            # Vault's trim needs min_encryption_version set too; the latest version keeps it valid.
            self._call(f"trim {request.mount}/{request.key}", lambda: self._trim(request, floor))
        return self._read(request.key, request.mount)

    def _trim(self, request: FloorRequest, floor: int) -> None:
        current = self._read(request.key, request.mount)
        if current.min_encryption_version < floor:
            self._vault.secrets.transit.update_key_configuration(
                name=request.key, mount_point=request.mount,
                min_encryption_version=current.latest_version)
        self._vault.secrets.transit.trim_key(name=request.key, min_version=floor,
                                             mount_point=request.mount)

    @staticmethod
    def _names(key: str, mount: str) -> None:
        """Key and mount came from a workflow input: hold them to Vault's naming rule before
        hvac puts them into a URL (hvac quotes neither ``/`` nor ``..``)."""
        try:
            check_key_name(key)
            check_mount(mount)
        except InvalidVaultName as exc:
            raise to_application_error(exc) from None

    def _call(self, operation: str, call: Callable[[], object]) -> None:
        try:
            with vault_errors(operation):
                call()
        except VaultError as exc:
            raise to_application_error(exc) from exc

    def _read(self, key: str, mount: str) -> TransitKeyInfo:
        self._names(key, mount)  # every activity reads before it changes anything
        try:
            with vault_errors(f"read transit key {mount}/{key}"):
                data = self._vault.secrets.transit.read_key(name=key,
                                                            mount_point=mount)["data"]
        except VaultError as exc:
            raise to_application_error(exc) from exc
        created = {int(v): _unix(t) for v, t in data["keys"].items()}
        latest = int(data["latest_version"])
        if latest in created:
            KEY_LATEST_VERSION_CREATED.labels(key=key).set(created[latest])
        return TransitKeyInfo(
            name=key,
            type=str(data["type"]),
            latest_version=latest,
            min_decryption_version=int(data["min_decryption_version"]),
            min_encryption_version=int(data.get("min_encryption_version") or 0),
            min_available_version=int(data.get("min_available_version") or 0),
            auto_rotate_period_seconds=int(data.get("auto_rotate_period") or 0),
            version_created=created,
        )


def _unix(value: object) -> int:
    """Vault reports creation time as Unix seconds for symmetric keys."""
    if isinstance(value, int | float | str):
        return int(value)
    raise ValueError(f"unexpected key creation time {value!r}")
