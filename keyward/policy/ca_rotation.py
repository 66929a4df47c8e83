"""When an old CA may leave the trust bundles: pure functions, shared by the rotation
workflow (to sleep until then) and the activity that refuses to withdraw trust earlier.

A leaf signed by the old CA just before the switch lives its whole lifetime; the old CA
must stay trusted at least that long after the switch, plus a grace for clocks, slow
renewals and caches. With no leaf configured the grace alone applies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta


def retire_after(leaf_lifetime_hours: Iterable[float], grace_hours: float) -> float:
    """Seconds from the switch until the old CA may go: longest leaf lifetime + grace."""
    if grace_hours < 0:
        raise ValueError("grace_hours must not be negative")
    longest = max((hours for hours in leaf_lifetime_hours), default=0.0)
    return (longest + grace_hours) * 3600.0


def may_retire(switched_at: datetime, now: datetime, wait_seconds: float) -> bool:
    """True once ``wait_seconds`` have passed since the switch (not a moment before)."""
    return now >= switched_at + timedelta(seconds=wait_seconds)
