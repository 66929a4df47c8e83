"""Vault's own rotation as a backstop: ``schedules apply`` reconciles each configured key's
``auto_rotate_period``.

For each key under ``rotation.keys``: read the key, decide with the pure policy
(:func:`keyward.policy.backstop.decide_period`, under ``rotation.vault_backstop``), write the
backstop when the decision says so, and report one :class:`BackstopChange`: the change, old
and new period, and warnings (Vault and keyward both rotating the key; a backstop that
outlives NIST's bound at the expected rate). A key Vault does not have yet is reported
``missing``; a Vault refusal is reported ``failed`` for that key and the others still run.

The period comes from the operator's settings (``rotation.*``) and nothing else; this runs
in ``starter.py``, never in a workflow or activity (see docs/trust-boundary.md).
Synchronous, as hvac is: callers on an event loop run it in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from keyward.config import Settings
from keyward.errors import KeywardError
from keyward.log import get_logger
from keyward.policy.backstop import Backstop, decide_period, vault_backstop
from keyward.rotation.inputs import cadence_for
from keyward.services.transit_keys import TransitKeys
from keyward.vault.errors import VaultNotFound

_log = get_logger("keyward.rotation.backstops")

BackstopOutcome = Literal["set", "unchanged", "kept", "off", "missing", "failed"]


@dataclass(frozen=True)
class BackstopChange:
    """What ``schedules apply`` found and did for one key's ``auto_rotate_period``."""

    key: str
    mount: str
    change: BackstopOutcome
    #: What Vault had before (0: off); None when the key could not be read.
    old_period_seconds: int | None
    #: What Vault has now; None when unknown (missing, or a failed read or write).
    new_period_seconds: int | None
    #: keyward's backstop for the key and the interval it derives from.
    backstop_seconds: int
    interval_seconds: int
    detail: str
    warnings: tuple[str, ...] = field(default=())


def backstop_for(settings: Settings, key: str, rate_per_day: float) -> Backstop:
    """The backstop of one configured key, from the worker's/operator's settings only."""
    return vault_backstop(cadence_for(settings, key, rate_per_day),
                          factor=settings.rotation.vault_backstop_factor)


def reconcile_backstops(transit: TransitKeys, settings: Settings) -> list[BackstopChange]:
    """One :class:`BackstopChange` per key under ``rotation.keys``, in key order."""
    return [_reconcile(transit, settings, key, rate)
            for key, rate in sorted(settings.rotation.keys.items())]


def _reconcile(transit: TransitKeys, settings: Settings, key: str,
               rate: float) -> BackstopChange:
    mount = settings.vault.transit_mount
    backstop = backstop_for(settings, key, rate)

    def report(change: BackstopOutcome, old: int | None, new: int | None, detail: str,
               warnings: tuple[str, ...] = ()) -> BackstopChange:
        return BackstopChange(key=key, mount=mount, change=change, old_period_seconds=old,
                              new_period_seconds=new, backstop_seconds=_seconds(backstop.period),
                              interval_seconds=_seconds(backstop.interval), detail=detail,
                              warnings=warnings)

    try:
        info = transit.read(key, mount)
    except VaultNotFound:
        return report("missing", None, None,
                      "Vault has no such key yet (its first encryption creates it): run "
                      "`schedules apply` again once it exists")
    except KeywardError as exc:
        return report("failed", None, None, f"cannot read the key: {exc}")
    old = info.auto_rotate_period_seconds
    decision = decide_period(timedelta(seconds=old), backstop, settings.rotation.vault_backstop)
    if decision.change != "set":
        return report(decision.change, old, old, decision.detail, decision.warnings)
    try:
        after = transit.set_auto_rotate_period(key, mount, decision.result)
    except KeywardError as exc:
        return report("failed", old, None, f"cannot set auto_rotate_period: {exc}",
                      decision.warnings)
    _log.info("Vault backstop set", key=key, mount=mount, old_seconds=old,
              new_seconds=after.auto_rotate_period_seconds)
    return report("set", old, after.auto_rotate_period_seconds, decision.detail,
                  decision.warnings)


def _seconds(period: timedelta) -> int:
    return period // timedelta(seconds=1)
