"""Reading and changing Vault Transit keys: the operations behind the Transit-key activities,
``starter.py status`` and the backstop ``starter.py schedules apply`` sets.

Synchronous, as hvac is: callers on an event loop run them in a thread. Every failure is a
:class:`~keyward.errors.KeywardError` (a :class:`~keyward.vault.errors.VaultError`, an
:class:`~keyward.vault.names.InvalidVaultName`, or a refused floor); activities turn it into a
Temporal failure with ``to_application_error``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

import hvac

from keyward.contracts import failures
from keyward.contracts.transit import TransitKeyInfo
from keyward.errors import KeywardError
from keyward.log import get_logger
from keyward.metrics import KEY_LATEST_VERSION_CREATED
from keyward.policy.cadence import VAULT_MIN_ROTATION
from keyward.vault.errors import vault_errors
from keyward.vault.names import check_key_name, check_mount

_log = get_logger("keyward.services.transit_keys")


class TransitKeys:
    """The Transit keys one Vault client reaches."""

    def __init__(self, vault: hvac.Client) -> None:
        self._vault = vault
        # Vault has no compare-and-swap on rotate: serialise read-then-rotate per key within
        # this process. Across workers, per-trigger workflow ids keep triggers from racing.
        self._rotation_locks: defaultdict[tuple[str, str], threading.Lock] = \
            defaultdict(threading.Lock)

    def read(self, key: str, mount: str) -> TransitKeyInfo:
        """The key's versions and configuration (and the latest version's age as a metric)."""
        _check_names(key, mount)  # every operation reads before it changes anything
        with vault_errors(f"read transit key {mount}/{key}"):
            data = self._vault.secrets.transit.read_key(name=key, mount_point=mount)["data"]
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

    def rotate_if_current(self, key: str, mount: str, *, expected_latest: int) -> TransitKeyInfo:
        """Compare-and-rotate: rotate only if the latest version is still ``expected_latest``
        (a retried or duplicate trigger finds it rotated already and does nothing)."""
        with self._rotation_locks[(mount, key)]:
            current = self.read(key, mount)
            if current.latest_version > expected_latest:
                _log.info("key already rotated past the expected version; not rotating again",
                          key=key, expected=expected_latest, latest=current.latest_version)
                return current
            self._call(f"rotate transit key {mount}/{key}",
                       lambda: self._vault.secrets.transit.rotate_key(name=key,
                                                                      mount_point=mount))
            return self.read(key, mount)

    def raise_floor(self, key: str, mount: str, floor: int, *, trim: bool) -> TransitKeyInfo:
        """Raise ``min_decryption_version`` to ``floor`` (never lower it); with ``trim``,
        also trim the versions below it from Vault (irreversible)."""
        current = self.read(key, mount)
        if floor > current.latest_version:
            raise KeywardError(f"refusing floor v{floor} above latest v{current.latest_version} "
                               f"of {key}", failure_type=failures.INVALID_FLOOR)
        if floor > current.min_decryption_version:
            self._call(f"raise decryption floor of {mount}/{key}",
                       lambda: self._vault.secrets.transit.update_key_configuration(
                           name=key, mount_point=mount, min_decryption_version=floor))
        if trim and floor > current.min_available_version:
            self._call(f"trim {mount}/{key}", lambda: self._trim(key, mount, floor))
        return self.read(key, mount)

    def set_auto_rotate_period(self, key: str, mount: str,
                               period: timedelta) -> TransitKeyInfo:
        """Set the key's ``auto_rotate_period`` (Vault then rotates the key by itself once its
        latest version is older; ``0`` switches that off) and check Vault kept it.

        Only ``schedules apply`` calls this, with a period from the operator's settings: no
        workflow or activity input carries one.
        """
        _check_names(key, mount)  # the write comes before any read
        seconds = _period_seconds(period)
        self._call(f"set auto_rotate_period of {mount}/{key}",
                   lambda: self._vault.secrets.transit.update_key_configuration(
                       name=key, mount_point=mount, auto_rotate_period=f"{seconds}s"))
        after = self.read(key, mount)
        if after.auto_rotate_period_seconds != seconds:
            # Vault before 1.10 ignores the parameter it does not know.
            raise KeywardError(f"Vault reports auto_rotate_period "
                               f"{after.auto_rotate_period_seconds} s for {mount}/{key} after "
                               f"keyward set {seconds} s: does this Vault (1.10 or later) "
                               f"support automatic rotation?")
        return after

    def _trim(self, key: str, mount: str, floor: int) -> None:
        # Vault's trim needs min_encryption_version set too; the latest version keeps it valid.
        current = self.read(key, mount)
        if current.min_encryption_version < floor:
            self._vault.secrets.transit.update_key_configuration(
                name=key, mount_point=mount, min_encryption_version=current.latest_version)
        self._vault.secrets.transit.trim_key(name=key, min_version=floor, mount_point=mount)

    @staticmethod
    def _call(operation: str, call: Callable[[], object]) -> None:
        with vault_errors(operation):
            call()


def _check_names(key: str, mount: str) -> None:
    """Key and mount may come from a workflow input: hold them to Vault's naming rule before
    hvac puts them into a URL (hvac quotes neither ``/`` nor ``..``)."""
    check_key_name(key)
    check_mount(mount)


def _period_seconds(period: timedelta) -> int:
    """Whole seconds, ``0`` or at least Vault's minimum: what Vault accepts, checked before
    the request so a bad period is one clear line rather than Vault's 400."""
    seconds, rest = divmod(period, timedelta(seconds=1))
    if rest or seconds < 0 or 0 < seconds < VAULT_MIN_ROTATION.total_seconds():
        raise KeywardError(f"auto_rotate_period must be 0 (off) or whole seconds of at least "
                           f"an hour, got {period}")
    return int(seconds)


def _unix(value: object) -> int:
    """Vault reports creation time as Unix seconds for symmetric keys."""
    if isinstance(value, int | float | str):
        return int(value)
    raise ValueError(f"unexpected key creation time {value!r}")
