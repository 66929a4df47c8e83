"""When an old Transit key version may stop decrypting: Vault's ``min_decryption_version``.

Raising the floor is what makes rotation worth something: a retired version can
no longer decrypt anything, so a leaked copy of it stops mattering. But Temporal
keeps encrypted payloads for a long time. A workflow's history lives until
``retention`` after the workflow *closes*, a running workflow may hold inputs
written years ago, and the codec's envelope data keys made under a version keep
encrypting for up to their max age after the version was replaced. Retiring a
version too early makes those histories unreadable, forever. So version ``v``
(replaced by ``v+1`` at ``c(v+1)``) is retired only when both

1. ``now - c(v+1) >= retention + buffer``: any workflow that closed while ``v``
   was active has been deleted, with a buffer for Temporal's deletion lag; and
2. the oldest execution the namespace still holds (running or closed) started at
   or after ``c(v+1) + encryption_grace``: no execution that still exists was
   alive while ``v`` (or a data key under it) was encrypting; and
3. no payload still present is encrypted under ``v`` or older: ``v`` is below
   ``oldest_version_in_use``, the lowest version that the start events of the
   executions still present and the schedules actually carry. Times alone are not
   enough: every retry attempt and cron run starts with a copy of the first run's
   input, so a chain whose runs all started after the rotation can still carry
   payloads under the old version.

The floor climbs only over consecutive retirable versions from the current
floor, because ``min_decryption_version`` cuts off everything below it: one
version that must stay keeps every newer one too.

A pure function of its arguments (no clock, no I/O, stdlib only) because a
Temporal workflow calls it and must replay to the same decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from keyward.errors import KeywardError
from keyward.policy.cadence import format_interval, format_rounded_down


class RetentionError(KeywardError, ValueError):
    """An input to the decryption-floor decision is malformed; the message names it."""


@dataclass(frozen=True)
class FloorDecision:
    """Where ``min_decryption_version`` should be, and a sentence saying why."""

    current_floor: int
    #: Equal to ``current_floor`` when nothing can be retired.
    new_floor: int
    #: Versions newly below the floor: ``range(current_floor, new_floor)``.
    retired: tuple[int, ...]
    #: One line for the Web UI: what was retired and why, or what is kept and what it waits for.
    reason: str


def decryption_floor(*, version_created: Mapping[int, datetime], latest_version: int,
                     current_floor: int, now: datetime, retention: timedelta,
                     buffer: timedelta, encryption_grace: timedelta,
                     oldest_execution_start: datetime | None,
                     oldest_version_in_use: int | None,
                     version_in_use_by: str | None = None) -> FloorDecision:
    """Decide how far ``min_decryption_version`` may rise at ``now``.

    ``version_created`` needs every version from ``current_floor`` to
    ``latest_version``: that is what Vault's key read returns (it omits versions
    below the floor). ``oldest_execution_start`` is the start time of the oldest
    execution, running or closed, the namespace still holds; ``None`` when it
    holds none. The latest version is never retired: it is the one encrypting.

    ``oldest_version_in_use`` is the lowest version (at or above ``current_floor``) that a
    payload still present is encrypted under, ``None`` when none is; the floor never
    passes it, and ``version_in_use_by`` (which execution or schedule carries it) goes
    into the reason. It is required, not defaulted: forgetting it would retire versions.
    """
    needed = _validate(version_created=version_created, latest_version=latest_version,
                       current_floor=current_floor, now=now, retention=retention,
                       buffer=buffer, encryption_grace=encryption_grace,
                       oldest_execution_start=oldest_execution_start,
                       oldest_version_in_use=oldest_version_in_use)
    needed_text = _needed_text(retention, buffer)

    new_floor = current_floor
    waits: list[str] = []
    while new_floor < latest_version:
        waits = _waits(new_floor, version_created[new_floor + 1], now=now, needed=needed,
                       needed_text=needed_text, encryption_grace=encryption_grace,
                       oldest_execution_start=oldest_execution_start,
                       in_use=_in_use_text(new_floor, oldest_version_in_use,
                                           version_in_use_by))
        if waits:
            break
        new_floor += 1

    if waits:
        kept = f"v{new_floor} kept: " + "; ".join(waits)
    else:
        kept = f"v{new_floor} kept: it is the latest version"
    retired = tuple(range(current_floor, new_floor))
    if not retired:
        return FloorDecision(current_floor, new_floor, retired, kept)

    takeover = version_created[new_floor]
    active = format_rounded_down(now - takeover)
    if oldest_execution_start is None:
        executions = "the namespace holds no executions"
    else:
        grace = _grace_text(encryption_grace)
        executions = (f"the oldest execution started {_timestamp(oldest_execution_start)}, "
                      f"not before v{new_floor} took over{grace}")
    names = f"v{retired[0]}" if len(retired) == 1 else f"v{retired[0]} to v{retired[-1]}"
    reason = (f"retired {names} (floor {current_floor} → {new_floor}): v{new_floor} active for "
              f"{active}, at least {needed_text}, and {executions}; {kept}")
    return FloorDecision(current_floor, new_floor, retired, reason)


def _waits(version: int, successor_created: datetime, *, now: datetime, needed: timedelta,
           needed_text: str, encryption_grace: timedelta,
           oldest_execution_start: datetime | None, in_use: str | None) -> list[str]:
    """What ``version`` still waits for; empty when it may be retired."""
    successor = version + 1
    waits: list[str] = [in_use] if in_use is not None else []
    # Differences of datetimes, not sums with durations: a sum could overflow datetime.
    active = now - successor_created
    if active < timedelta(0):
        waits.append(f"v{successor} is dated in the future "
                     f"({_timestamp(successor_created)}), needs {needed_text}")
    elif active < needed:
        waits.append(f"v{successor} active for {format_rounded_down(active)}, "
                     f"needs {needed_text}")
    if oldest_execution_start is not None:
        since_takeover = oldest_execution_start - successor_created
        started = f"an execution started {_timestamp(oldest_execution_start)}"
        if since_takeover < timedelta(0):
            waits.append(f"{started}, before v{successor} took over")
        elif since_takeover < encryption_grace:
            waits.append(f"{started}, within the {format_interval(encryption_grace)} "
                         f"encryption grace after v{successor} took over")
    return waits


def _in_use_text(version: int, oldest_version_in_use: int | None,
                 version_in_use_by: str | None) -> str | None:
    """Why ``version`` must stay because a payload still carries it (None: none does)."""
    if oldest_version_in_use is None or version < oldest_version_in_use:
        return None
    holder = f" ({version_in_use_by})" if version_in_use_by else ""
    if oldest_version_in_use == version:
        return f"a payload still present is encrypted under v{version}{holder}"
    # Below the floor already: that payload is unreadable, but the caller asked to keep
    # it, and keeping is the safe side.
    return (f"a payload still present is encrypted under v{oldest_version_in_use}, "
            f"below the floor{holder}")


def _validate(*, version_created: Mapping[int, datetime], latest_version: int,
              current_floor: int, now: datetime, retention: timedelta, buffer: timedelta,
              encryption_grace: timedelta, oldest_execution_start: datetime | None,
              oldest_version_in_use: int | None) -> timedelta:
    """Reject inputs that cannot describe a real key; returns ``retention + buffer``."""
    if oldest_version_in_use is not None and (
            isinstance(oldest_version_in_use, bool) or not isinstance(oldest_version_in_use, int)
            or oldest_version_in_use < 1):
        raise RetentionError(f"oldest_version_in_use must be a version (at least 1) or None, "
                             f"got {oldest_version_in_use!r}")
    if current_floor < 1:
        raise RetentionError(f"current_floor must be at least 1, got {current_floor}")
    if current_floor > latest_version:
        raise RetentionError(f"current_floor ({current_floor}) must not exceed latest_version "
                             f"({latest_version})")
    for name, duration in (("retention", retention), ("buffer", buffer),
                           ("encryption_grace", encryption_grace)):
        if duration < timedelta(0):
            raise RetentionError(f"{name} must not be negative, got {duration}")
    _require_aware("now", now)
    if oldest_execution_start is not None:
        _require_aware("oldest_execution_start", oldest_execution_start)
    missing = [v for v in range(current_floor, latest_version + 1) if v not in version_created]
    if missing:
        shown = ", ".join(f"v{v}" for v in missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise RetentionError(f"version_created lacks {shown}: it needs every version from "
                             f"current_floor {current_floor} to latest_version {latest_version}")
    for version, created in version_created.items():
        _require_aware(f"version_created[{version}]", created)
    try:
        return retention + buffer
    except OverflowError:
        raise RetentionError(f"retention + buffer is too long to represent "
                             f"({retention} + {buffer})") from None


def _require_aware(name: str, moment: datetime) -> None:
    # A naive datetime is ambiguous, and comparing it with an aware one raises
    # TypeError deep inside the decision; refuse it up front with its name.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise RetentionError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")


def _needed_text(retention: timedelta, buffer: timedelta) -> str:
    total = format_interval(retention + buffer)
    if buffer == timedelta(0):
        return f"{total} ({format_interval(retention)} retention)"
    return f"{total} ({format_interval(retention)} retention + {format_interval(buffer)} buffer)"


def _grace_text(encryption_grace: timedelta) -> str:
    if encryption_grace == timedelta(0):
        return ""
    return f" + {format_interval(encryption_grace)} encryption grace"


def _timestamp(moment: datetime) -> str:
    """UTC to the minute, as the Web UI shows times: ``2026-01-01T00:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
