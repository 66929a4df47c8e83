"""The ``RotateTransitKey`` workflow's input and result, and ``ResolveRotationInput``.

``temporal workflow execute --type RotateTransitKey --input '{"key": "payments"}'`` fills
:class:`RotateKeyInput` from JSON: the field names and defaults below are part of the
interface (and of every recorded history), so they do not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keyward.contracts.contract import ActivityContract, WorkflowContract


@dataclass(frozen=True)
class RotateKeyInput:
    key: str
    mount: str = "transit"
    #: Why: "schedule", "budget", "manual"... shown in the UI and the result.
    reason: str = "manual"
    #: The version this trigger wants to retire from use. If the key is already past it,
    #: the rotation for this trigger happened: skip. (The usage ledger sets it.)
    from_version: int | None = None
    #: Skip when the latest version is younger than this (schedules set half their
    #: interval, so a duplicate or catch-up firing does not rotate twice).
    min_version_age_seconds: int = 0
    raise_decryption_floor: bool = True
    #: Namespaces whose payloads use this key; empty: the workflow's own namespace.
    namespaces: list[str] = field(default_factory=list)
    retention_buffer_seconds: int = 86_400
    #: How long after a rotation the old version may still encrypt (envelope data-key age).
    encryption_grace_seconds: int = 900
    trim_archived_versions: bool = False
    #: Kept for old callers and running histories, no longer obeyed: mount, namespaces,
    #: floor, buffers, grace and trimming always come from the worker's settings, since an
    #: input that chose them could make payloads unreadable for good.
    settings_from: str = "worker"
    #: Set by the worker's converter: True only when this input arrived encrypted (written
    #: by someone holding keyward's Vault access or the codec server's write role). What
    #: the JSON says is ignored.
    authenticated: bool = False


@dataclass(frozen=True)
class RotateKeyResult:
    key: str
    reason: str
    rotated: bool
    old_version: int
    new_version: int
    rotated_at: datetime | None
    skipped_because: str | None
    decryption_floor: int
    floor_explanation: str


#: The request with every setting-derived field taken from the worker's own settings.
RESOLVE_ROTATION_INPUT = ActivityContract("ResolveRotationInput", RotateKeyInput,
                                          RotateKeyInput)

ROTATE_TRANSIT_KEY_WORKFLOW = WorkflowContract("RotateTransitKey", RotateKeyInput,
                                               RotateKeyResult)
