"""Fills a rotation request in from the worker's own settings.

``temporal workflow execute --type RotateTransitKey --input '{"key": "payments"}'``
names a key and nothing else; the mount, the namespaces whose payloads use the key,
the retention buffer and whether to raise the decryption floor live in the worker's
settings, which a workflow cannot read (no I/O). This activity reads them, so a
hand-started rotation behaves exactly like a scheduled one.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta

from temporalio import activity

from keyward.config import Settings
from workflows.rotate_key import RotateKeyInput


class RotationSettingsActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @activity.defn(name="ResolveRotationInput")
    def resolve(self, request: RotateKeyInput) -> RotateKeyInput:
        """The request with every setting-derived field taken from this worker's settings.

        What the caller chose stays: the key, the reason, ``from_version`` and
        ``min_version_age_seconds``; only the mount is taken from the settings (a
        request can still name another mount by setting ``settings_from`` to
        ``"input"`` and passing every field).
        """
        # Imported here: keyward.rotation.inputs imports the workflows package, which
        # imports the activities package (this module) for its activity types.
        from keyward.rotation.inputs import rotate_input  # noqa: PLC0415

        resolved = rotate_input(self._settings, request.key, reason=request.reason,
                                min_version_age=timedelta(
                                    seconds=request.min_version_age_seconds))
        return dataclasses.replace(resolved, from_version=request.from_version)
