"""Vault Transit keys: reading, rotating and raising the decryption floor, and the
``InspectTransitKey`` workflow."""

from __future__ import annotations

from dataclasses import dataclass

from keyward.contracts.contract import ActivityContract, WorkflowContract


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


@dataclass(frozen=True)
class RotateRequest:
    key: str
    mount: str
    #: The latest version the workflow saw. The activity rotates only if Vault still has
    #: it, so a retried attempt whose first rotation succeeded does not rotate twice.
    expected_latest: int


@dataclass(frozen=True)
class FloorRequest:
    key: str
    mount: str
    min_decryption_version: int
    #: Also remove versions below the floor from Vault (min_available_version). Irreversible.
    trim: bool = False


READ_TRANSIT_KEY = ActivityContract("ReadTransitKey", ReadKeyInput, TransitKeyInfo)
#: Compare-and-rotate (shares its Temporal name with the workflow: different kinds of type).
ROTATE_TRANSIT_KEY = ActivityContract("RotateTransitKey", RotateRequest, TransitKeyInfo)
SET_DECRYPTION_FLOOR = ActivityContract("SetDecryptionFloor", FloorRequest, TransitKeyInfo)

INSPECT_TRANSIT_KEY_WORKFLOW = WorkflowContract("InspectTransitKey", ReadKeyInput,
                                                TransitKeyInfo)
