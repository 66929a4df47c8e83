"""When a certificate should be renewed: a pure function, property-tested.

cert-manager's default: renew when a third of the lifetime remains (at 2/3 of it).
A fleet of workers whose certificates were issued together would then all renew
in the same minute, so the renewal point is moved earlier by a deterministic
jitter (a share of the renewal window derived from the certificate's serial):
the same certificate always gets the same answer, across retries and replays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from keyward.errors import KeywardError

DEFAULT_RENEW_FRACTION: Final = 1 / 3
DEFAULT_JITTER_FRACTION: Final = 0.1
#: Below this share of the lifetime left, every run logs an error and counts a metric.
DEFAULT_CRITICAL_FRACTION: Final = 0.1


class RenewalPolicyError(KeywardError, ValueError):
    """Nonsense input (a certificate that ends before it starts, a negative window)."""


@dataclass(frozen=True)
class RenewalDecision:
    renew: bool
    renew_at: datetime
    remaining: timedelta
    critical: bool
    reason: str


def jitter_share(seed: str) -> float:
    """A stable number in [0, 1) from a seed (the certificate's serial)."""
    digest = hashlib.sha256(seed.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def renewal_decision(*, not_before: datetime, not_after: datetime, now: datetime,
                     renew_before: timedelta | None = None, seed: str = "",
                     jitter_fraction: float = DEFAULT_JITTER_FRACTION,
                     critical_below: timedelta | None = None) -> RenewalDecision:
    """Whether to renew a certificate valid from ``not_before`` to ``not_after`` at ``now``."""
    for value in (not_before, not_after, now):
        if value.tzinfo is None:
            raise RenewalPolicyError("certificate times must be timezone-aware")
    lifetime = not_after - not_before
    if lifetime <= timedelta(0):
        raise RenewalPolicyError(f"certificate ends ({not_after}) before it starts "
                                 f"({not_before})")
    if not 0 <= jitter_fraction < 1:
        raise RenewalPolicyError("jitter_fraction must be in [0, 1)")
    window = renew_before if renew_before is not None else lifetime * DEFAULT_RENEW_FRACTION
    if window <= timedelta(0):
        raise RenewalPolicyError("renew_before must be positive")
    window = min(window, lifetime)
    critical = critical_below if critical_below is not None \
        else lifetime * DEFAULT_CRITICAL_FRACTION
    renew_at = not_after - window - window * (jitter_fraction * jitter_share(seed))
    renew_at = max(renew_at, not_before)
    remaining = not_after - now
    is_critical = remaining <= critical
    if now >= not_after:
        return RenewalDecision(True, renew_at, remaining, True,
                               f"expired {_short(-remaining)} ago: renewing")
    if now >= renew_at:
        return RenewalDecision(True, renew_at, remaining, is_critical,
                               f"{_short(remaining)} left, inside the renewal window "
                               f"(renew at {renew_at.isoformat(timespec='seconds')}): renewing")
    return RenewalDecision(False, renew_at, remaining, is_critical,
                           f"{_short(remaining)} left; renewal due at "
                           f"{renew_at.isoformat(timespec='seconds')}")


def check_interval(lifetime: timedelta, renew_before: timedelta | None = None) -> timedelta:
    """How often a schedule should check: four times per renewal window, at most daily."""
    window = renew_before if renew_before is not None else lifetime * DEFAULT_RENEW_FRACTION
    return max(timedelta(seconds=1), min(window / 4, timedelta(days=1)))


def _short(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    if seconds >= 86_400:
        return f"{seconds // 86_400}d {seconds % 86_400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60}s"
    return f"{seconds}s"
