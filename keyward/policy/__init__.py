"""Rotation policy as pure functions: how often to rotate, and when old versions may go.

Temporal workflows call these directly, so the package imports only the standard
library (and keyward's exception base) and never reads the clock: ``now`` is an
argument, which keeps every decision replayable.
"""

from keyward.policy.cadence import (
    HUMAN_CADENCES,
    NIST_GCM_INVOCATION_LIMIT,
    VAULT_MIN_ROTATION,
    Cadence,
    CadenceError,
    format_interval,
    format_rounded_down,
    rotation_cadence,
    version_budget,
)
from keyward.policy.retention import FloorDecision, RetentionError, decryption_floor

__all__ = [
    "HUMAN_CADENCES",
    "NIST_GCM_INVOCATION_LIMIT",
    "VAULT_MIN_ROTATION",
    "Cadence",
    "CadenceError",
    "FloorDecision",
    "RetentionError",
    "decryption_floor",
    "format_interval",
    "format_rounded_down",
    "rotation_cadence",
    "version_budget",
]
