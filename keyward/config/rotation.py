"""The ``[rotation]`` section: when Transit keys rotate and when old versions stop decrypting.

The inputs of the rotation cadence (expected encryptions per key, the safety factor, the
maximum age), the usage ledger that starts a rotation early, and the decryption floor:
whether keyward raises ``min_decryption_version`` once Temporal holds no payload of a
version, how far it reads histories to know, and which namespaces use a key.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from keyward.config.section import settings_class
from keyward.config.values import (
    Flag,
    Fraction,
    KeyName,
    Number,
    Positive,
    PositiveInt,
    Strings,
    table,
)
from keyward.config_errors import problem
from keyward.policy.backstop import BackstopMode, check_backstop_factor
from keyward.policy.cadence import CadenceError


def _encryption_rate(rate: float) -> float:
    if not rate > 0:
        raise problem("expected encryptions per day must be greater than 0")
    return rate


def _backstop_factor(factor: float) -> float:
    try:
        return check_backstop_factor(factor)
    except CadenceError:
        raise problem(f"must be a finite number greater than 1.5: keyward's own schedule "
                      f"lets a version reach 1.5 intervals (got {factor!r})") from None


@settings_class("rotation")
class RotationSettings:
    """Transit key rotation: cadence inputs, the decryption floor and the usage ledger."""

    #: Transit key → expected encryptions per day (payloads in direct mode, data keys in
    #: envelope mode). Each key listed gets a rotation Schedule and a usage ledger.
    keys: Annotated[dict[KeyName, Annotated[Number, AfterValidator(_encryption_rate)]],
                    BeforeValidator(table)] = dataclasses.field(default_factory=dict)
    #: Share of NIST's 2^32 encryptions per key version that keyward lets a version use.
    safety_factor: Fraction = 0.5
    max_key_age_days: Positive = 90.0
    #: The ledger starts a rotation when a version has used this share of its budget.
    ledger_rotate_at: Fraction = 0.9
    ledger_report_seconds: Positive = 30.0
    #: Raise min_decryption_version once Temporal can no longer hold a version's payloads.
    raise_decryption_floor: Flag = True
    retention_buffer_hours: Positive = 24.0
    #: Also trim key versions below the floor from Vault (irreversible): off unless asked.
    trim_archived_versions: Flag = False
    catchup_window_minutes: Positive = 60.0
    #: What ``schedules apply`` does with each key's Vault ``auto_rotate_period``, the
    #: backstop that rotates a key while keyward cannot: ``reconcile`` sets it to
    #: ``vault_backstop_factor`` x the key's interval; ``keep-existing`` sets it only where
    #: no period is set; ``off`` leaves Vault alone. Every mode reports a period short
    #: enough that Vault and keyward both rotate the key.
    vault_backstop: BackstopMode = "reconcile"
    #: The backstop is this many times the key's rotation interval.
    vault_backstop_factor: Annotated[Number, AfterValidator(_backstop_factor)] = 2.0
    #: Before raising the floor, keyward reads the start event of every execution still
    #: present (retries and cron runs carry their first input). Past this many executions
    #: in one namespace it stops reading and keeps the floor where it is.
    history_scan_limit: PositiveInt = 100_000
    #: Transit key → namespaces that use it besides those ``codec.keys`` and
    #: ``codec.previous_keys`` name. Replaces the implicit "a namespace named like the
    #: key" (which blocks the floor for good when no such namespace exists): ``[]`` says
    #: there is none.
    namespaces: Annotated[dict[KeyName, Strings], BeforeValidator(table)] = \
        dataclasses.field(default_factory=dict)
