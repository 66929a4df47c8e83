"""Vault's own rotation as a backstop for keyward's schedule: each key's ``auto_rotate_period``.

keyward rotates a Transit key from a Temporal Schedule, so while Temporal (or keyward's
worker) is unreachable nothing rotates. Vault Transit can rotate a key by itself: once a
key's latest version is older than its ``auto_rotate_period``, Vault's periodic check
(about hourly in real Vault) adds a version. Set to a *backstop*, that keeps keys rotating
through an outage of keyward without Vault ever competing with keyward's schedule.

**The backstop** is ``rotation.vault_backstop_factor`` (default 2) times the key's
interval, rounded *up* to whole seconds (Vault keeps the period in seconds; up, so it is
never shorter than the factor says) and never below Vault's one-hour minimum (Vault refuses
a shorter one). The factor must exceed 3/2, because that is the oldest keyward's own
schedule lets a version get: the schedule fires every interval, and a firing skips when
the latest version is younger than half an interval (a manual or ledger rotation just
happened), so the next firing after such a skip finds a version up to 3/2 intervals old.
A period longer than that means Vault rotates only when keyward has missed a firing. Every
rotation, keyward's or Vault's, restarts Vault's clock: Vault compares the *latest*
version's age with the period.

Why not the configured max key age: for an idle key the interval *is* the max age, and a
backstop equal to the interval would have Vault rotate alongside keyward.

At the expected rate, a version that lives the whole backstop performs ``factor x
interval x rate ≤ factor x budget`` encryptions, where the budget is ``2^32 x
safety_factor``: with the defaults (2 x 0.5) that is at most NIST's 2^32. A backstop that
would outlive NIST's bound at the expected rate is flagged so ``schedules apply`` can say
so: Vault counts nothing, so an age is all a backstop can be.

**Reconciling** a key's current period against the backstop (:func:`decide_period`) follows
``rotation.vault_backstop``: ``reconcile`` (the default) sets the backstop whenever the
period differs; ``keep-existing`` sets it only where no period is set and keeps any other
(an operator's, or keyward's own from before a cadence change); ``off`` never writes.
Whatever the mode, a period no longer than 3/2 intervals is reported: Vault and keyward
then both rotate the key, on different cadences.

Pure functions of their arguments (no clock, no I/O, stdlib only), like the rest of
:mod:`keyward.policy`; the arithmetic is exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Final, Literal, get_args

from keyward.policy.cadence import (
    VAULT_MIN_ROTATION,
    Cadence,
    CadenceError,
    format_interval,
    format_rounded_down,
)

#: The oldest, in intervals, keyward's own schedule lets a version get (see the module doc).
LONGEST_SCHEDULED_AGE: Final = Fraction(3, 2)
DEFAULT_BACKSTOP_FACTOR: Final = 2.0
#: Vault holds the period in a Go ``time.Duration``: 2^63 - 1 nanoseconds at most, which
#: is this many whole seconds (about 292 years).
VAULT_MAX_ROTATION: Final = timedelta(seconds=9_223_372_036)

BackstopMode = Literal["reconcile", "keep-existing", "off"]
BACKSTOP_MODES: Final[tuple[str, ...]] = get_args(BackstopMode)
BackstopLimit = Literal["factor", "vault_minimum"]
PeriodChange = Literal["set", "unchanged", "kept", "off"]

_US: Final = timedelta(microseconds=1)
_US_PER_SECOND: Final = 10**6
_MIN_SECONDS: Final = VAULT_MIN_ROTATION // timedelta(seconds=1)
_MAX_SECONDS: Final = VAULT_MAX_ROTATION // timedelta(seconds=1)


@dataclass(frozen=True)
class Backstop:
    """The ``auto_rotate_period`` one key should have, with the numbers behind it."""

    #: Whole seconds, at least Vault's minimum.
    period: timedelta
    #: keyward's own rotation interval for the key.
    interval: timedelta
    factor: float
    #: Which rule chose ``period``.
    limited_by: BackstopLimit
    #: One line: when Vault rotates, and why then.
    explanation: str
    #: Set when a version living ``period`` would pass NIST's bound at the expected rate.
    nist_warning: str | None


@dataclass(frozen=True)
class PeriodDecision:
    """What to do with one key's current ``auto_rotate_period``."""

    change: PeriodChange
    current: timedelta
    #: The key's period once the decision is carried out (``current`` unless ``set``).
    result: timedelta
    #: One line for the operator: old → new, or why it stays.
    detail: str
    #: Things the operator should know: Vault and keyward both rotating, NIST's bound.
    warnings: tuple[str, ...]


def check_backstop_factor(factor: float) -> float:
    """The factor, if it is a finite number greater than 3/2 (else :class:`CadenceError`)."""
    if not math.isfinite(factor) or not factor > LONGEST_SCHEDULED_AGE:
        raise CadenceError(f"the backstop factor must be a finite number greater than 1.5 "
                           f"(keyward's schedule lets a version reach 1.5 intervals), "
                           f"got {factor!r}")
    return factor


def vault_backstop(cadence: Cadence, *, factor: float = DEFAULT_BACKSTOP_FACTOR) -> Backstop:
    """The ``auto_rotate_period`` for a key that keyward rotates on ``cadence``."""
    check_backstop_factor(factor)
    interval = cadence.interval
    if interval <= timedelta(0):
        raise CadenceError(f"interval must be greater than 0, got {interval}")
    seconds = math.ceil(Fraction(interval // _US) * Fraction(factor) / _US_PER_SECOND)
    limited_by: BackstopLimit = "factor"
    if seconds < _MIN_SECONDS:
        seconds, limited_by = _MIN_SECONDS, "vault_minimum"
    if seconds > _MAX_SECONDS:
        raise CadenceError(f"a backstop of {factor:g} x {format_interval(interval)} is longer "
                           f"than Vault can hold ({format_rounded_down(VAULT_MAX_ROTATION)})")
    period = timedelta(seconds=seconds)
    times = f"{factor:g} x keyward's interval of {format_interval(interval)}"
    why = times if limited_by == "factor" else f"Vault's minimum; {times} is shorter"
    nist_warning = None
    if cadence.nist_bound < period:
        nist_warning = (f"at the expected rate a version reaches NIST's 2^32 encryptions after "
                        f"{format_rounded_down(cadence.nist_bound)}, before the backstop of "
                        f"{format_interval(period)} would rotate it (a backstop bounds a "
                        "version's age, not its use: keyward's ledger does that)")
    return Backstop(period=period, interval=interval, factor=factor, limited_by=limited_by,
                    explanation=f"Vault rotates the key after {format_interval(period)} if "
                                f"keyward has not ({why})",
                    nist_warning=nist_warning)


def rotates_with_keyward(period: timedelta, interval: timedelta) -> bool:
    """True when Vault's ``period`` is set and no longer than the oldest keyward's schedule
    lets a version get (3/2 ``interval``): Vault and keyward then both rotate the key."""
    return timedelta(0) < period and 2 * (period // _US) <= 3 * (interval // _US)


def decide_period(current: timedelta, backstop: Backstop, mode: BackstopMode) -> PeriodDecision:
    """What ``schedules apply`` does with a key whose ``auto_rotate_period`` is ``current``
    (``0``: Vault does not rotate it), under ``rotation.vault_backstop = mode``."""
    if mode not in BACKSTOP_MODES:
        raise CadenceError(f"the backstop mode must be one of {', '.join(BACKSTOP_MODES)}, "
                           f"got {mode!r}")
    if current < timedelta(0):
        raise CadenceError(f"auto_rotate_period must not be negative, got {current}")
    wanted = backstop.period
    change: PeriodChange
    if mode == "off":
        change = "off"
        detail = f"auto_rotate_period {_shown(current)}: left alone (rotation.vault_backstop = off)"
    elif current == wanted:
        change = "unchanged"
        detail = f"auto_rotate_period {_shown(current)} (the backstop)"
    elif mode == "keep-existing" and current:
        change = "kept"
        detail = (f"auto_rotate_period {_shown(current)}: kept (rotation.vault_backstop = "
                  f"keep-existing; the backstop would be {_shown(wanted)})")
    else:
        change = "set"
        detail = f"auto_rotate_period {_shown(current)} → {_shown(wanted)}: {backstop.explanation}"
    result = wanted if change == "set" else current
    warnings: list[str] = []
    if rotates_with_keyward(current, backstop.interval):
        after = "; now set to the backstop" if change == "set" else ""
        warnings.append(f"Vault rotates this key by itself every {_shown(current)}, and "
                        f"keyward every {format_interval(backstop.interval)}: both rotate it, "
                        f"on different cadences{after}")
    if result == wanted and backstop.nist_warning is not None:
        warnings.append(backstop.nist_warning)
    return PeriodDecision(change=change, current=current, result=result, detail=detail,
                          warnings=tuple(warnings))


def _shown(period: timedelta) -> str:
    return format_interval(period) if period else "off"
