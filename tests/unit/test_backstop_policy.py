"""Vault's backstop period and what ``schedules apply`` does with a key's current one: pure
functions, checked over all inputs."""

from __future__ import annotations

import math
from datetime import timedelta
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from keyward.policy.backstop import (
    BACKSTOP_MODES,
    BackstopMode,
    decide_period,
    rotates_with_keyward,
    vault_backstop,
)
from keyward.policy.cadence import VAULT_MIN_ROTATION, Cadence, rotation_cadence

US = timedelta(microseconds=1)
SECOND = timedelta(seconds=1)

rates = st.floats(min_value=0, max_value=1e30, exclude_min=True, allow_nan=False,
                  allow_infinity=False)
safety_factors = st.floats(min_value=2**-30, max_value=1)
max_ages = st.timedeltas(min_value=VAULT_MIN_ROTATION, max_value=timedelta(days=3650))
factors = st.floats(min_value=1.5, max_value=100, exclude_min=True)
#: Any interval, Vault's minimum and below included (a hand-built Cadence may have one),
#: with factors small enough that every backstop fits what Vault holds.
intervals = st.timedeltas(min_value=US, max_value=timedelta(days=1000))
#: What Vault may report: off, or whole seconds from its minimum up.
periods = st.one_of(st.just(timedelta(0)),
                    st.integers(min_value=3600, max_value=10**10).map(
                        lambda s: timedelta(seconds=s)))
modes = st.sampled_from(BACKSTOP_MODES)


def cadence(interval: timedelta, nist_bound: timedelta = timedelta.max) -> Cadence:
    return Cadence(interval=interval, nist_bound=nist_bound, budget=2**31,
                   budget_interval=interval, limited_by="budget", explanation="test")


@given(rate=rates, safety=safety_factors, max_age=max_ages, factor=factors)
def test_the_backstop_is_longer_than_any_age_keyward_leaves_a_version(
        rate: float, safety: float, max_age: timedelta, factor: float) -> None:
    """For every cadence keyward computes, the backstop is longer than 3/2 of the interval
    (the oldest a version gets under keyward's own schedule), so Vault rotates only when
    keyward could not."""
    computed = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    backstop = vault_backstop(computed, factor=factor)
    assert 2 * (backstop.period // US) > 3 * (computed.interval // US)
    assert backstop.period > computed.interval
    assert not rotates_with_keyward(backstop.period, computed.interval)


@given(interval=intervals, factor=factors)
def test_the_backstop_is_the_factor_rounded_up_to_a_second_and_at_least_an_hour(
        interval: timedelta, factor: float) -> None:
    """Whole seconds; never shorter than factor x interval nor than Vault's minimum, and
    within a second of the larger of the two."""
    backstop = vault_backstop(cadence(interval), factor=factor)
    assert backstop.period % SECOND == timedelta(0)
    exact = Fraction(interval // US) * Fraction(factor)
    wanted = max(exact, Fraction(VAULT_MIN_ROTATION // US))
    assert wanted <= backstop.period // US < wanted + 10**6
    rounded = math.ceil(exact / 10**6)
    assert backstop.limited_by == ("vault_minimum" if rounded < 3600 else "factor")
    assert (backstop.interval, backstop.factor) == (interval, factor)


@given(shorter=intervals, longer=intervals, factor=factors)
def test_a_longer_interval_never_gets_a_shorter_backstop(shorter: timedelta, longer: timedelta,
                                                        factor: float) -> None:
    """Monotone in the interval."""
    shorter, longer = sorted((shorter, longer))
    assert vault_backstop(cadence(shorter), factor=factor).period <= \
        vault_backstop(cadence(longer), factor=factor).period


@given(interval=intervals, low=factors, high=factors)
def test_a_larger_factor_never_gets_a_shorter_backstop(interval: timedelta, low: float,
                                                      high: float) -> None:
    """Monotone in the factor."""
    low, high = sorted((low, high))
    assert vault_backstop(cadence(interval), factor=low).period <= \
        vault_backstop(cadence(interval), factor=high).period


@given(rate=rates, safety=safety_factors, max_age=max_ages, factor=factors)
def test_the_nist_warning_says_exactly_when_the_backstop_outlives_the_nist_bound(
        rate: float, safety: float, max_age: timedelta, factor: float) -> None:
    """A warning exactly when a version living the whole backstop would pass NIST's 2^32
    at the expected rate."""
    computed = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    backstop = vault_backstop(computed, factor=factor)
    assert (backstop.nist_warning is not None) == (backstop.period > computed.nist_bound)


@given(rate=rates, safety=st.floats(min_value=2**-30, max_value=0.5), max_age=max_ages,
       factor=st.floats(min_value=1.5, max_value=2, exclude_min=True))
def test_with_the_default_factors_the_backstop_stays_within_nist(
        rate: float, safety: float, max_age: timedelta, factor: float) -> None:
    """factor x safety factor ≤ 1 (the defaults are 2 x 0.5): a version living the whole
    backstop stays within NIST's 2^32 at the expected rate, unless Vault's one-hour minimum
    already forced the interval past the budget."""
    computed = rotation_cadence(rate, safety_factor=safety, max_key_age=max_age)
    if computed.limited_by == "vault_minimum":
        return
    backstop = vault_backstop(computed, factor=factor)
    # Rounding up to a second may pass a bound that is itself within a second.
    assert backstop.period - SECOND <= computed.nist_bound


@given(current=periods, interval=intervals, factor=factors, mode=modes)
def test_applying_twice_changes_nothing_the_second_time(current: timedelta, interval: timedelta,
                                                       factor: float, mode: BackstopMode) -> None:
    """What a decision leaves in Vault is, decided again, left as it is: apply is
    idempotent in every mode."""
    backstop = vault_backstop(cadence(interval), factor=factor)
    first = decide_period(current, backstop, mode)
    second = decide_period(first.result, backstop, mode)
    assert second.change != "set"
    assert second.result == first.result


@given(current=periods, interval=intervals, factor=factors, mode=modes)
def test_only_a_set_writes_and_a_set_writes_the_backstop(current: timedelta, interval: timedelta,
                                                        factor: float, mode: BackstopMode) -> None:
    """Every decision other than ``set`` leaves the period as it is; ``set`` writes exactly
    the backstop, and only when the period differs from it."""
    backstop = vault_backstop(cadence(interval), factor=factor)
    decision = decide_period(current, backstop, mode)
    assert decision.current == current
    if decision.change == "set":
        assert decision.result == backstop.period != current
    else:
        assert decision.result == current


@given(current=periods, interval=intervals, factor=factors)
def test_each_mode_does_what_its_name_says(current: timedelta, interval: timedelta,
                                           factor: float) -> None:
    """reconcile always ends at the backstop; keep-existing fills only an unset period;
    off never writes."""
    backstop = vault_backstop(cadence(interval), factor=factor)
    assert decide_period(current, backstop, "reconcile").result == backstop.period
    kept = decide_period(current, backstop, "keep-existing")
    assert kept.result == (current or backstop.period)
    assert decide_period(current, backstop, "off").change == "off"


@given(current=periods, interval=intervals, factor=factors, mode=modes)
def test_a_key_both_rotate_is_reported_in_every_mode(current: timedelta, interval: timedelta,
                                                     factor: float, mode: BackstopMode) -> None:
    """A period that is set and at most 3/2 of keyward's interval (shorter than the
    interval included) gets a warning, whatever the mode; a longer one or none does not."""
    backstop = vault_backstop(cadence(interval), factor=factor)
    decision = decide_period(current, backstop, mode)
    both = [w for w in decision.warnings if "both rotate it" in w]
    expected = bool(current) and Fraction(current // US) <= Fraction(3, 2) * (interval // US)
    assert bool(both) == expected
    if current and current < interval:
        assert both


@given(interval=intervals)
def test_rotates_with_keyward_is_3_halves_of_the_interval_to_the_microsecond(
        interval: timedelta) -> None:
    """The boundary is exact: 3/2 of the interval is 'both rotate', a microsecond more is
    not; an unset period never is."""
    limit = 3 * (interval // US)
    assert rotates_with_keyward(timedelta(microseconds=math.floor(limit / 2)), interval)
    assert not rotates_with_keyward(timedelta(microseconds=limit // 2 + 1), interval)
    assert not rotates_with_keyward(timedelta(0), interval)
