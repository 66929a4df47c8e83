"""Activities that read and change Vault Transit keys, adapting
:class:`keyward.services.transit_keys.TransitKeys` to Temporal.

Plain ``def`` methods: hvac is synchronous, so the worker runs these on its
thread pool, never on the event loop.
"""

from __future__ import annotations

import hvac
from temporalio import activity

from keyward.contracts.transit import (
    READ_TRANSIT_KEY,
    ROTATE_TRANSIT_KEY,
    SET_DECRYPTION_FLOOR,
    FloorRequest,
    ReadKeyInput,
    RotateRequest,
    TransitKeyInfo,
)
from keyward.services.transit_keys import TransitKeys
from keyward.temporal.failures import as_temporal_failure


class TransitKeyActivities:
    """Temporal's view of :class:`~keyward.services.transit_keys.TransitKeys`: each activity
    calls the service and turns a keyward error into the matching Temporal failure."""

    def __init__(self, vault: hvac.Client) -> None:
        self._keys = TransitKeys(vault)

    @activity.defn(name=READ_TRANSIT_KEY.name)
    def read_transit_key(self, request: ReadKeyInput) -> TransitKeyInfo:
        return as_temporal_failure(lambda: self._keys.read(request.key, request.mount))

    @activity.defn(name=ROTATE_TRANSIT_KEY.name)
    def rotate_transit_key(self, request: RotateRequest) -> TransitKeyInfo:
        """Compare-and-rotate: rotate only if the latest version is still the expected one."""
        return as_temporal_failure(lambda: self._keys.rotate_if_current(
            request.key, request.mount, expected_latest=request.expected_latest))

    @activity.defn(name=SET_DECRYPTION_FLOOR.name)
    def set_decryption_floor(self, request: FloorRequest) -> TransitKeyInfo:
        """Raise min_decryption_version (never lower it); optionally trim below it."""
        return as_temporal_failure(lambda: self._keys.raise_floor(
            request.key, request.mount, request.min_decryption_version, trim=request.trim))
