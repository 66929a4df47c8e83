"""Fills a rotation request in from the worker's own settings.

``temporal workflow execute --type RotateTransitKey --input '{"key": "payments"}'``
names a key and nothing else; the mount, the namespaces whose payloads use the key,
the retention buffer and whether to raise the decryption floor live in the worker's
settings, which a workflow cannot read (no I/O). This activity reads them, so a
hand-started rotation behaves exactly like a scheduled one.

It is also the trust boundary for those settings: ``RotateTransitKey`` calls it for every
input, and whatever the input said about them (``settings_from`` included) is replaced,
because an input is untrusted and these settings decide what becomes unreadable.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import activity

from keyward.config import Settings
from keyward.contracts.rotation import RESOLVE_ROTATION_INPUT, RotateKeyInput
from keyward.rotation.inputs import rotate_input


class RotationSettingsActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name=RESOLVE_ROTATION_INPUT.name)
    def resolve(self, request: RotateKeyInput) -> RotateKeyInput:
        """The request with every setting-derived field taken from this worker's settings.

        What the caller may choose stays: the key, the reason, ``from_version`` and
        ``min_version_age_seconds`` (each can only skip or trigger a rotation, never
        retire a version). The mount, the namespaces whose histories are checked,
        ``raise_decryption_floor``, the retention buffer, the encryption grace and
        ``trim_archived_versions`` are this worker's, whatever ``settings_from`` says.
        """
        resolved = rotate_input(self._settings, request.key, reason=request.reason,
                                min_version_age=timedelta(
                                    seconds=request.min_version_age_seconds))
        return dataclasses.replace(resolved, from_version=request.from_version)
