"""How often a Transit key rotates: a pure function, checked over all inputs."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyward.policy.cadence import (
    HUMAN_CADENCES,
    NIST_GCM_INVOCATION_LIMIT,
    VAULT_MIN_ROTATION,
    CadenceError,
    format_interval,
    format_rounded_down,
    rotation_cadence,
    version_budget,
)

DAY = timedelta(days=1)
US = timedelta(microseconds=1)

# Subnormal to astronomical: the function must stay exact and total over all of them.
rates = st.floats(min_value=0, max_value=1e30, exclude_min=True, allow_nan=False,
                  allow_infinity=False)
realistic_rates = st.floats(min_value=1e-3, max_value=1e13)
safety_factors = st.floats(min_value=2**-30, max_value=1)
max_ages = st.timedeltas(min_value=VAULT_MIN_ROTATION, max_value=timedelta(days=3650))


def encryptions_during(interval: timedelta, rate: float) -> Fraction:
    """Exactly how many encryptions ``rate`` per day performs in ``interval``."""
    return Fraction(interval // US) * Fraction(rate) / (DAY // US)


@given(rate=rates, safety=safety_factors, max_age=max_ages)
def test_interval_stays_between_vault_minimum_and_max_age(rate: float, safety: float,
                                                          max_age: timedelta) -> None:
    """The interval is never shorter than Vault allows nor longer than max_key_age."""
    cadence = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    assert VAULT_MIN_ROTATION <= cadence.interval <= max(max_age, VAULT_MIN_ROTATION)


@given(rate=rates, safety=safety_factors, max_age=max_ages)
def test_one_interval_never_exceeds_the_budget(rate: float, safety: float,
                                               max_age: timedelta) -> None:
    """Unless Vault's minimum forces it, one interval's encryptions fit a version's budget."""
    cadence = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    assert cadence.budget == math.floor(NIST_GCM_INVOCATION_LIMIT * Fraction(safety))
    if cadence.limited_by != "vault_minimum":
        assert encryptions_during(cadence.interval, rate) <= cadence.budget


@given(low=rates, high=rates, safety=safety_factors, max_age=max_ages)
def test_busier_keys_never_rotate_less_often(low: float, high: float, safety: float,
                                             max_age: timedelta) -> None:
    """The interval is non-increasing in the rate."""
    low, high = sorted((low, high))
    slow = rotation_cadence(low, safety_factor=safety, max_key_age=max_age)
    fast = rotation_cadence(high, safety_factor=safety, max_key_age=max_age)
    assert fast.interval <= slow.interval


@given(rate=rates, small=safety_factors, large=safety_factors, max_age=max_ages)
def test_a_larger_safety_factor_never_rotates_more_often(rate: float, small: float,
                                                         large: float,
                                                         max_age: timedelta) -> None:
    """The interval is non-decreasing in the safety factor."""
    small, large = sorted((small, large))
    cautious = rotation_cadence(rate, safety_factor=small, max_key_age=max_age)
    relaxed = rotation_cadence(rate, safety_factor=large, max_key_age=max_age)
    assert cautious.interval <= relaxed.interval


@given(rate=rates, safety=safety_factors, max_age=max_ages)
def test_limited_by_names_the_rule_that_chose_the_interval(rate: float, safety: float,
                                                           max_age: timedelta) -> None:
    """limited_by agrees with the numbers: the budget's cadence, the cap, or the floor."""
    cadence = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    budget_us = Fraction(cadence.budget) * (DAY // US) / Fraction(rate)
    fitting = [c for c in HUMAN_CADENCES if c // US <= budget_us]
    if cadence.limited_by == "vault_minimum":
        assert not fitting
        assert cadence.interval == VAULT_MIN_ROTATION
        assert cadence.budget_interval < VAULT_MIN_ROTATION
    elif cadence.limited_by == "max_age":
        assert fitting
        assert cadence.interval == max_age < fitting[-1]
    else:
        assert fitting
        assert cadence.interval == fitting[-1] <= max_age
        assert cadence.interval <= cadence.budget_interval


@given(rate=rates, safety=safety_factors, max_age=max_ages)
def test_explanation_is_one_line_ending_in_the_interval(rate: float, safety: float,
                                                        max_age: timedelta) -> None:
    """The explanation is a single line that states the interval the schedule uses."""
    cadence = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    assert "\n" not in cadence.explanation
    assert f"rotate every {format_interval(cadence.interval)}" in cadence.explanation


@given(rate=realistic_rates, safety=safety_factors)
def test_nist_bound_and_budget_interval_are_exact_to_the_microsecond(rate: float,
                                                                     safety: float) -> None:
    """nist_bound and budget_interval are 2^32/rate and budget/rate, rounded down."""
    cadence = rotation_cadence(rate, safety_factor=safety)
    nist_us = Fraction(NIST_GCM_INVOCATION_LIMIT) * (DAY // US) / Fraction(rate)
    budget_us = Fraction(cadence.budget) * (DAY // US) / Fraction(rate)
    if nist_us < timedelta.max // US:
        assert cadence.nist_bound // US == math.floor(nist_us)
    if budget_us < timedelta.max // US:
        assert cadence.budget_interval // US == math.floor(budget_us)


def test_forty_million_a_day_at_the_default_safety_factor_rotates_monthly() -> None:
    """The seed's 40M/day: NIST allows 107 days, half of that is 53, so every 30 days."""
    cadence = rotation_cadence(40_000_000)
    assert cadence.interval == timedelta(days=30)
    assert cadence.budget == 2**31
    assert cadence.limited_by == "budget"
    assert cadence.nist_bound // DAY == 107
    assert cadence.budget_interval // DAY == 53
    assert cadence.explanation == ("40,000,000/day → NIST bound 107 days → budget 53 days "
                                   "at safety factor 0.5 → rotate every 30 days")


def test_forty_million_a_day_at_safety_factor_point_nine_rotates_every_ninety_days() -> None:
    """At 0.9 (Vault's barrier-key factor) the budget lasts 96 days, so every 90 days."""
    cadence = rotation_cadence(40_000_000, safety_factor=0.9)
    assert cadence.interval == timedelta(days=90)
    assert cadence.budget == 3_865_470_566
    # 90 days equals the default max age, but the budget chose it: the cap only
    # applies when it is shorter.
    assert cadence.limited_by == "budget"
    assert cadence.budget_interval // DAY == 96
    assert cadence.explanation == ("40,000,000/day → NIST bound 107 days → budget 96 days "
                                   "at safety factor 0.9 → rotate every 90 days")


def test_the_interval_is_rounded_down_to_a_human_cadence() -> None:
    """A budget lasting 13.9 days gives a weekly rotation, not 13 days."""
    rate = 2**31 / 13.9
    cadence = rotation_cadence(rate)
    assert cadence.budget_interval // DAY == 13
    assert cadence.interval == timedelta(days=7)


def test_a_quiet_key_is_capped_at_max_age() -> None:
    """A key used 1,000 times a day would last millennia; max_key_age rotates it anyway."""
    cadence = rotation_cadence(1_000)
    assert cadence.interval == timedelta(days=90)
    assert cadence.limited_by == "max_age"
    assert cadence.explanation.endswith("→ rotate every 90 days (max age)")


def test_max_age_need_not_be_a_human_cadence() -> None:
    """A 36-hour max_key_age is used as given."""
    cadence = rotation_cadence(1, max_key_age=timedelta(hours=36))
    assert cadence.interval == timedelta(hours=36)
    assert cadence.limited_by == "max_age"
    assert cadence.explanation.endswith("rotate every 36 hours (max age)")


def test_a_rate_too_small_for_timedelta_saturates_the_bounds() -> None:
    """Below ~4.3/day NIST's bound exceeds timedelta's range; the fields saturate, the text not."""
    cadence = rotation_cadence(1)
    assert cadence.nist_bound == timedelta.max
    assert cadence.explanation.startswith("1/day → NIST bound 4,294,967,296 days → budget "
                                          "2,147,483,648 days")


def test_a_torrent_is_floored_at_vaults_minimum() -> None:
    """At a trillion a day the budget lasts minutes; Vault cannot rotate faster than hourly."""
    cadence = rotation_cadence(1e12)
    assert cadence.interval == timedelta(hours=1)
    assert cadence.limited_by == "vault_minimum"
    assert cadence.explanation == (
        "1,000,000,000,000/day → NIST bound 6 minutes → budget 3 minutes at safety factor 0.5"
        " → rotate every 1 hour (Vault's minimum; the usage ledger rotates sooner when the "
        "budget runs out)")


def test_just_enough_budget_for_an_hour_rotates_hourly_by_budget() -> None:
    """When the budget lasts exactly one hour the budget, not the floor, chose the hour."""
    cadence = rotation_cadence(2**31 * 24)
    assert cadence.budget_interval == timedelta(hours=1)
    assert cadence.interval == timedelta(hours=1)
    assert cadence.limited_by == "budget"
    slightly_busier = rotation_cadence(2**31 * 24 * 1.000001)
    assert slightly_busier.limited_by == "vault_minimum"


@pytest.mark.parametrize("rate", [0, -1, -0.0, math.nan, math.inf, -math.inf])
def test_nonsense_rates_are_rejected(rate: float) -> None:
    """A rate that is not a finite positive number is refused, naming the input."""
    with pytest.raises(CadenceError, match="encryptions_per_day"):
        rotation_cadence(rate)


@pytest.mark.parametrize("safety", [0, -0.5, 1.000001, 2, math.nan, math.inf, 1e-12])
def test_nonsense_safety_factors_are_rejected(safety: float) -> None:
    """A safety factor outside (0, 1], or one leaving no encryptions at all, is refused."""
    with pytest.raises(CadenceError, match="safety_factor"):
        rotation_cadence(40_000_000, safety_factor=safety)
    with pytest.raises(CadenceError, match="safety_factor"):
        version_budget(safety)


@pytest.mark.parametrize("max_age", [timedelta(minutes=59), timedelta(0), timedelta(days=-1)])
def test_max_age_below_vaults_minimum_is_rejected(max_age: timedelta) -> None:
    """Vault cannot rotate more often than hourly, so a shorter max age is refused."""
    with pytest.raises(CadenceError, match="max_key_age"):
        rotation_cadence(40_000_000, max_key_age=max_age)


def test_cadence_error_is_a_value_error() -> None:
    """Callers that validate numbers can catch the refusal as a ValueError."""
    with pytest.raises(ValueError, match="encryptions_per_day"):
        rotation_cadence(0)


def test_version_budget_at_full_factor_is_nists_limit() -> None:
    """A safety factor of 1 allows exactly 2^32 encryptions; 0.9 matches Vault's barrier key."""
    assert version_budget(1) == 2**32
    assert version_budget(0.9) == 3_865_470_566
    assert version_budget(0.5) == 2**31


@pytest.mark.parametrize(("interval", "text"), [
    (timedelta(days=90), "90 days"),
    (timedelta(days=1), "1 day"),
    (timedelta(hours=12), "12 hours"),
    (timedelta(hours=1), "1 hour"),
    (timedelta(minutes=30), "30 minutes"),
    (timedelta(hours=36), "36 hours"),
    (timedelta(seconds=90), "90 seconds"),
    (timedelta(seconds=1, milliseconds=500), "1.5 seconds"),
    (timedelta(days=1000), "1,000 days"),
    (timedelta(0), "0 seconds"),
])
def test_format_interval_is_exact(interval: timedelta, text: str) -> None:
    """Intervals read in the largest unit that divides them exactly."""
    assert format_interval(interval) == text


@pytest.mark.parametrize(("duration", "text"), [
    (timedelta(days=107, hours=9), "107 days"),
    (timedelta(days=1, hours=23), "1 day"),
    (timedelta(hours=5, minutes=59), "5 hours"),
    (timedelta(seconds=59), "59 seconds"),
    (timedelta(microseconds=10), "0 seconds"),
])
def test_format_rounded_down_never_overstates(duration: timedelta, text: str) -> None:
    """Measured durations read in their largest whole unit, rounded down."""
    assert format_rounded_down(duration) == text


def test_formatting_a_negative_duration_is_refused() -> None:
    """A negative duration is a caller's bug, not something to print."""
    with pytest.raises(CadenceError, match="interval"):
        format_interval(timedelta(seconds=-1))
    with pytest.raises(CadenceError, match="duration"):
        format_rounded_down(timedelta(seconds=-1))
