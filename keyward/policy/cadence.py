"""How often a Vault Transit key must rotate so no key version exceeds its AES-GCM budget.

Transit encrypts with AES-GCM and random 96-bit nonces. NIST SP 800-38D (section
8.3) allows such a key at most 2^32 invocations: beyond that the chance of two
messages sharing a nonce, which exposes the authentication key, exceeds 2^-32.
Each Transit key version is a separate AES key, so a rotation starts a fresh
count. Transit does not count encryptions per version, so the schedule is
derived from the expected rate, with a safety factor because rates are estimates
and traffic comes in bursts; the usage ledger rotates earlier if the measured
count gets there first.

Everything here is a pure function of its arguments (no clock, no I/O, stdlib
only) because Temporal workflows call it and must replay to the same answer.
Arithmetic that decides the interval is exact (:class:`fractions.Fraction`):
a float rounding up by a microsecond must not let an interval exceed the budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Final, Literal

from keyward.errors import KeywardError

#: NIST SP 800-38D: invocations of one AES-GCM key with random 96-bit IVs.
NIST_GCM_INVOCATION_LIMIT: Final = 2**32
#: Vault rejects an ``auto_rotate_period`` shorter than this.
VAULT_MIN_ROTATION: Final = timedelta(hours=1)
#: Intervals a person recognises at a glance; a computed bound is rounded down to one.
HUMAN_CADENCES: Final[tuple[timedelta, ...]] = (
    *(timedelta(hours=h) for h in (1, 2, 3, 4, 6, 8, 12)),
    *(timedelta(days=d) for d in (1, 2, 3, 7, 14, 30, 60, 90, 180, 365)),
)

LimitedBy = Literal["budget", "max_age", "vault_minimum"]

_US_PER_DAY: Final = 86_400 * 10**6
_UNITS: Final[tuple[tuple[str, int], ...]] = (
    ("day", _US_PER_DAY),
    ("hour", 3_600 * 10**6),
    ("minute", 60 * 10**6),
    ("second", 10**6),
)
#: Largest duration a timedelta holds, in microseconds; longer bounds saturate here.
_MAX_TIMEDELTA_US: Final = timedelta.max // timedelta(microseconds=1)
#: Durations beyond this many days are shown as "over ..." rather than as 300 digits.
_MAX_SHOWN_DAYS: Final = 10**15


class CadenceError(KeywardError, ValueError):
    """An input to the cadence calculation is out of range; the message names it.

    A ``ValueError`` so callers validating numbers can catch it as such, and a
    :class:`KeywardError` so entry points print it as one line.
    """


@dataclass(frozen=True)
class Cadence:
    """The rotation interval for one Transit key, with the numbers that led to it.

    The intermediate values are kept so a workflow can show a person *why* the key
    rotates this often, not only how often.
    """

    #: What the rotation schedule uses.
    interval: timedelta
    #: 2^32 / rate: when NIST's limit would be reached, without any safety factor.
    nist_bound: timedelta
    #: Encryptions one key version may perform: floor(2^32 * safety_factor).
    budget: int
    #: budget / rate, rounded down to a microsecond.
    budget_interval: timedelta
    #: Which rule chose ``interval``.
    limited_by: LimitedBy
    #: One line for the Web UI, from the rate to the interval.
    explanation: str


def version_budget(safety_factor: float) -> int:
    """Encryptions one key version may perform: ``floor(2^32 * safety_factor)``.

    The factor leaves headroom for a rate that was underestimated and for
    encryptions between the ledger's reports; Vault itself uses 0.9 for its
    barrier key. Rejects factors that would allow more than NIST does or nothing.
    """
    if not 0 < safety_factor <= 1:  # also rejects NaN, for which every comparison is False
        raise CadenceError(f"safety_factor must be greater than 0 and at most 1, "
                           f"got {safety_factor!r}")
    # Multiplying by a power of two is exact in binary floating point.
    budget = math.floor(NIST_GCM_INVOCATION_LIMIT * safety_factor)
    if budget < 1:
        raise CadenceError(f"safety_factor {safety_factor!r} leaves no encryption per key "
                           f"version (budget floor(2^32 * {safety_factor!r}) = 0)")
    return budget


def rotation_cadence(encryptions_per_day: float, *, safety_factor: float = 0.5,
                     max_key_age: timedelta = timedelta(days=90)) -> Cadence:
    """How often to rotate a key that performs ``encryptions_per_day`` encryptions.

    The interval is the longest human cadence during which the expected number of
    encryptions stays within the version budget, shortened to ``max_key_age``
    (keys should not live forever even when idle) and lengthened to Vault's
    one-hour minimum (the usage ledger covers rates that exhaust a budget sooner).
    """
    if not math.isfinite(encryptions_per_day) or encryptions_per_day <= 0:
        raise CadenceError(f"encryptions_per_day must be a finite number greater than 0, "
                           f"got {encryptions_per_day!r}")
    budget = version_budget(safety_factor)
    if max_key_age < VAULT_MIN_ROTATION:
        raise CadenceError(f"max_key_age must be at least {format_interval(VAULT_MIN_ROTATION)} "
                           f"(Vault's minimum rotation period), got {max_key_age}")

    rate = Fraction(encryptions_per_day)
    nist_us = NIST_GCM_INVOCATION_LIMIT * _US_PER_DAY / rate
    budget_us = budget * _US_PER_DAY / rate
    # Whole microseconds, rounded down: an interval c (whole microseconds) fits the
    # budget exactly when c <= floor(budget_us), so comparing against the stored
    # field gives the same answer as the exact bound.
    budget_interval = _saturated(math.floor(budget_us))

    fitting = [c for c in HUMAN_CADENCES if c <= budget_interval]
    limited_by: LimitedBy
    if not fitting:
        interval, limited_by = VAULT_MIN_ROTATION, "vault_minimum"
    elif max_key_age < fitting[-1]:
        interval, limited_by = max_key_age, "max_age"
    else:
        interval, limited_by = fitting[-1], "budget"

    suffix = {
        "budget": "",
        "max_age": " (max age)",
        "vault_minimum": " (Vault's minimum; the usage ledger rotates sooner when the budget "
                         "runs out)",
    }[limited_by]
    explanation = (f"{_format_rate(encryptions_per_day)}/day → NIST bound {_rounded_down(nist_us)}"
                   f" → budget {_rounded_down(budget_us)} at safety factor {safety_factor:g}"
                   f" → rotate every {format_interval(interval)}{suffix}")
    return Cadence(interval=interval, nist_bound=_saturated(math.floor(nist_us)), budget=budget,
                   budget_interval=budget_interval, limited_by=limited_by,
                   explanation=explanation)


def format_interval(interval: timedelta) -> str:
    """An exact duration in the largest unit that divides it: "90 days", "36 hours".

    Exact rather than rounded because this is what the schedule will do; a
    ``max_key_age`` of 36 hours must not read as "1 day".
    """
    us = interval // timedelta(microseconds=1)
    if us < 0:
        raise CadenceError(f"interval must not be negative, got {interval}")
    if us == 0:
        return "0 seconds"
    for name, size in _UNITS:
        if us % size == 0:
            return _count(us // size, name)
    whole, fraction = divmod(us, 10**6)
    return f"{whole:,}.{fraction:06d}".rstrip("0") + " seconds"


def format_rounded_down(duration: timedelta) -> str:
    """A measured duration in its largest whole unit, rounded down: "107 days", "3 hours".

    Rounded down so a bound or an elapsed time is never overstated to a reader.
    """
    us = duration // timedelta(microseconds=1)
    if us < 0:
        raise CadenceError(f"duration must not be negative, got {duration}")
    return _rounded_down(Fraction(us))


def _rounded_down(us: Fraction) -> str:
    if us >= _MAX_SHOWN_DAYS * _US_PER_DAY:
        return f"over {_MAX_SHOWN_DAYS:,} days"
    for name, size in _UNITS:
        if us >= size:
            return _count(math.floor(us / size), name)
    return "0 seconds"


def _count(n: int, unit: str) -> str:
    return f"{n:,} {unit}" if n == 1 else f"{n:,} {unit}s"


def _format_rate(rate: float) -> str:
    """Whole numbers with separators; tiny or astronomical rates in short scientific form."""
    if 1 <= rate < 1e15:
        return f"{round(rate):,}"
    return f"{rate:.3g}"


def _saturated(us: int) -> timedelta:
    """A timedelta of ``us`` microseconds, or the largest one when it does not fit.

    Rates below about four a day put NIST's bound beyond what timedelta can hold;
    such a bound is effectively infinite and max_key_age decides.
    """
    return timedelta(microseconds=min(us, _MAX_TIMEDELTA_US))
