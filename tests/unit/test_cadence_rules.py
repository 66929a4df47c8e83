"""Cadence rules at their edges: the human cadences, the budget's bounds, how durations
and rates are shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta
from fractions import Fraction

import pytest

from keyward.policy.cadence import (
    HUMAN_CADENCES,
    CadenceError,
    format_interval,
    format_rounded_down,
    rotation_cadence,
    version_budget,
)
from keyward.policy.cadence import _rounded_down as rounded_down

US_PER_DAY = 86_400 * 10**6


def test_the_human_cadences_are_exactly_these() -> None:
    """Computed bounds round down to 1, 2, 3, 4, 6, 8 or 12 hours, or 1, 2, 3, 7, 14, 30,
    60, 90, 180 or 365 days — nothing a person has to decode."""
    expected = (*(timedelta(hours=h) for h in (1, 2, 3, 4, 6, 8, 12)),
                *(timedelta(days=d) for d in (1, 2, 3, 7, 14, 30, 60, 90, 180, 365)))
    assert expected == HUMAN_CADENCES


@pytest.mark.parametrize("factor", [0.0, -0.5, 1.0000001, float("nan")])
def test_a_safety_factor_outside_0_to_1_is_refused_as_such(factor: float) -> None:
    """0, negatives, more than 1 and NaN are refused with the range in the message."""
    with pytest.raises(CadenceError, match="greater than 0 and at most 1"):
        version_budget(factor)


def test_the_smallest_budget_is_one_encryption() -> None:
    """A factor of 2^-32 leaves exactly one encryption per version: allowed; less is not."""
    assert version_budget(2**-32) == 1
    with pytest.raises(CadenceError, match="leaves no encryption"):
        version_budget(2**-33)


@pytest.mark.parametrize("format_duration", [format_interval, format_rounded_down])
def test_negative_durations_are_refused_to_the_microsecond(
        format_duration: Callable[[timedelta], str]) -> None:
    """One microsecond below zero is refused; zero reads '0 seconds'."""
    with pytest.raises(CadenceError, match="must not be negative"):
        format_duration(timedelta(microseconds=-1))
    assert format_duration(timedelta(0)) == "0 seconds"


def test_rounded_down_durations_reach_each_unit_exactly() -> None:
    """Exactly one second, hour or day is shown in that unit, a microsecond less is not."""
    assert format_rounded_down(timedelta(seconds=1)) == "1 second"
    assert format_rounded_down(timedelta(seconds=1) - timedelta(microseconds=1)) == "0 seconds"
    assert format_rounded_down(timedelta(hours=1)) == "1 hour"
    assert format_rounded_down(timedelta(days=1)) == "1 day"
    assert format_rounded_down(timedelta(days=1) - timedelta(microseconds=1)) == "23 hours"


def test_astronomical_bounds_read_over_10_to_the_15_days() -> None:
    """From 10^15 days on, a bound reads 'over 1,000,000,000,000,000 days'; below, in days."""
    limit = 10**15 * US_PER_DAY
    assert rounded_down(Fraction(limit)) == "over 1,000,000,000,000,000 days"
    assert rounded_down(Fraction(limit - 1)) == "999,999,999,999,999 days"
    assert "NIST bound over 1,000,000,000,000,000 days" in rotation_cadence(1e-10).explanation


@pytest.mark.parametrize(("rate", "shown"), [
    (0.5, "0.5"), (1.0, "1"), (1.5, "2"), (999_999_999_999_999.0, "999,999,999,999,999"),
    (1e15, "1e+15"), (3.25e-7, "3.25e-07"),
])
def test_rates_are_whole_numbers_from_1_to_below_10_to_the_15(rate: float, shown: str) -> None:
    """The explanation shows a rate in [1, 10^15) rounded with separators, others in short
    scientific form."""
    assert rotation_cadence(rate).explanation.startswith(f"{shown}/day → ")


def test_a_cadence_is_immutable() -> None:
    """A Cadence is a frozen value (workflows pass it around and replay it)."""
    cadence = rotation_cadence(1000.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cadence.interval = timedelta(0)  # type: ignore[misc]
