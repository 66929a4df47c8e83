"""The decryption floor's rules at their edges: an execution started at the takeover
instant, a payload below the floor, the inputs that describe no real key."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, tzinfo

import pytest

from keyward.policy.retention import FloorDecision, RetentionError, decryption_floor

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def floor(**changes: object) -> FloorDecision:
    arguments: dict[str, object] = {
        "version_created": {1: T0, 2: T0 + DAY, 3: T0 + 2 * DAY}, "latest_version": 3,
        "current_floor": 1, "now": T0 + 100 * DAY, "retention": 30 * DAY,
        "buffer": timedelta(0), "encryption_grace": timedelta(0),
        "oldest_execution_start": None, "oldest_version_in_use": None}
    arguments.update(changes)
    return decryption_floor(**arguments)  # type: ignore[arg-type]


def test_an_execution_started_at_the_takeover_instant_does_not_hold_the_version() -> None:
    """An execution that started exactly when v2 took over (no grace) never saw v1."""
    decision = floor(latest_version=2, version_created={1: T0, 2: T0 + DAY},
                     oldest_execution_start=T0 + DAY)
    assert decision.retired == (1,)
    earlier = floor(latest_version=2, version_created={1: T0, 2: T0 + DAY},
                    oldest_execution_start=T0 + DAY - timedelta(microseconds=1))
    assert earlier.retired == ()
    assert "before v2 took over" in earlier.reason


def test_a_payload_below_the_floor_keeps_the_floor_and_says_so() -> None:
    """A caller reporting a payload under a version already below the floor keeps the
    floor where it is (the safe side), and the reason names that version and its holder."""
    decision = floor(current_floor=2, version_created={2: T0 + DAY, 3: T0 + 2 * DAY},
                     oldest_version_in_use=1, version_in_use_by="workflow w1")
    assert decision.new_floor == 2
    assert ("a payload still present is encrypted under v1, below the floor (workflow w1)"
            in decision.reason)


def test_several_retired_versions_are_named_as_a_range() -> None:
    """Retiring v1 and v2 reads 'retired v1 to v2'; the decision is a frozen value."""
    decision = floor()
    assert decision.reason.startswith("retired v1 to v2 (floor 1 → 3)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.new_floor = 9  # type: ignore[misc]


def test_a_floor_below_1_is_refused() -> None:
    """Key versions start at 1: a current floor of 0 describes no Vault key."""
    with pytest.raises(RetentionError, match="current_floor must be at least 1, got 0"):
        floor(current_floor=0, version_created={0: T0, 1: T0, 2: T0 + DAY, 3: T0 + 2 * DAY})


@pytest.mark.parametrize(("missing", "shown"), [
    (10, "v1, v2, v3, v4, v5, v6, v7, v8, v9, v10:"),
    (11, "v1, v2, v3, v4, v5, v6, v7, v8, v9, v10, ...:"),
])
def test_missing_versions_are_listed_up_to_ten(missing: int, shown: str) -> None:
    """The error lists at most ten missing versions, then '...'."""
    latest = missing + 1
    with pytest.raises(RetentionError) as raised:
        floor(latest_version=latest, version_created={latest: T0})
    assert f"version_created lacks {shown} it needs every version" in str(raised.value)


class NoOffset(tzinfo):
    """A tzinfo that does not know its offset: as ambiguous as a naive datetime."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None


@pytest.mark.parametrize("moment", [datetime(2026, 4, 1), datetime(2026, 4, 1, tzinfo=NoOffset())])
def test_times_without_a_known_offset_are_refused(moment: datetime) -> None:
    """A naive ``now``, or one whose tzinfo gives no offset, is refused by name."""
    with pytest.raises(RetentionError, match="now must be timezone-aware"):
        floor(now=moment)
