"""The backstop rules at their edges: the factor's range, Vault's limits, and the words
``schedules apply`` prints for each decision."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any, cast

import pytest

from keyward.policy.backstop import (
    BACKSTOP_MODES,
    DEFAULT_BACKSTOP_FACTOR,
    VAULT_MAX_ROTATION,
    Backstop,
    check_backstop_factor,
    decide_period,
    vault_backstop,
)
from keyward.policy.cadence import Cadence, CadenceError, rotation_cadence

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)
#: 40M/day at the defaults: every 30 days (the README's worked example).
THIRTY_DAYS = rotation_cadence(40_000_000)


def cadence(interval: timedelta, nist_bound: timedelta = timedelta.max) -> Cadence:
    return Cadence(interval=interval, nist_bound=nist_bound, budget=2**31,
                   budget_interval=interval, limited_by="budget", explanation="test")


def test_the_modes_and_the_default_factor_are_these() -> None:
    """Three modes, reconcile first (the settings' default); factor 2."""
    assert BACKSTOP_MODES == ("reconcile", "keep-existing", "off")
    assert DEFAULT_BACKSTOP_FACTOR == 2.0
    assert vault_backstop(THIRTY_DAYS).period == 60 * DAY


def test_the_readme_example_backstop_explains_itself() -> None:
    """30 days x 2: Vault rotates after 60 days if keyward has not."""
    backstop = vault_backstop(THIRTY_DAYS)
    assert backstop == Backstop(
        period=60 * DAY, interval=30 * DAY, factor=2.0, limited_by="factor",
        explanation="Vault rotates the key after 60 days if keyward has not (2 x keyward's "
                    "interval of 30 days)", nist_warning=None)


@pytest.mark.parametrize("factor", [1.5, 1.0, 0.0, -2.0, float("nan"), float("inf")])
def test_a_factor_of_at_most_one_and_a_half_or_not_finite_is_refused(factor: float) -> None:
    """1.5 itself is refused: keyward's schedule lets a version reach 1.5 intervals."""
    with pytest.raises(CadenceError, match=r"finite number greater than 1\.5"):
        check_backstop_factor(factor)
    with pytest.raises(CadenceError, match=r"finite number greater than 1\.5"):
        vault_backstop(THIRTY_DAYS, factor=factor)


def test_a_factor_just_above_one_and_a_half_is_accepted() -> None:
    """The smallest float above 1.5 is a valid factor, returned as it is."""
    above = 1.5000000000000002
    assert check_backstop_factor(above) == above
    assert vault_backstop(cadence(2 * HOUR), factor=above).period == timedelta(seconds=10_801)


@pytest.mark.parametrize("interval", [timedelta(0), -HOUR])
def test_an_interval_of_zero_or_less_is_refused(interval: timedelta) -> None:
    with pytest.raises(CadenceError, match="interval must be greater than 0"):
        vault_backstop(cadence(interval))


def test_a_microsecond_interval_gets_vault_minimum() -> None:
    """Below Vault's hour (only a hand-built cadence has one), the backstop is the hour,
    and says so."""
    backstop = vault_backstop(cadence(timedelta(microseconds=1)))
    assert (backstop.period, backstop.limited_by) == (HOUR, "vault_minimum")
    assert backstop.explanation == (
        "Vault rotates the key after 1 hour if keyward has not (Vault's minimum; 2 x "
        "keyward's interval of 0.000001 seconds is shorter)")


def test_exactly_vault_minimum_is_the_factor_not_the_minimum() -> None:
    """30 minutes x 2 is exactly an hour, and so is anything that rounds up to it: the
    factor chose it. 3,599 seconds is Vault's minimum's."""
    half_second = timedelta(seconds=0.5)
    for interval in (timedelta(minutes=30), timedelta(minutes=30) - half_second + US):
        backstop = vault_backstop(cadence(interval))
        assert (backstop.period, backstop.limited_by) == (HOUR, "factor")
    just_under = vault_backstop(cadence(timedelta(minutes=30) - half_second))
    assert (just_under.period, just_under.limited_by) == (HOUR, "vault_minimum")


def test_a_period_that_is_not_whole_seconds_rounds_up() -> None:
    """A microsecond over a whole second is the next second."""
    backstop = vault_backstop(cadence(HOUR + timedelta(microseconds=1)))
    assert backstop.period == 2 * HOUR + timedelta(seconds=1)
    assert vault_backstop(cadence(HOUR)).period == 2 * HOUR


def test_a_backstop_longer_than_vault_can_hold_is_refused() -> None:
    """Vault keeps the period in a Go duration (int64 nanoseconds, about 292 years): the
    longest it holds is accepted, a second more is refused."""
    assert timedelta(seconds=(2**63 - 1) // 10**9) == VAULT_MAX_ROTATION
    half = timedelta(seconds=4_611_686_018)
    assert vault_backstop(cadence(half)).period == VAULT_MAX_ROTATION
    with pytest.raises(CadenceError, match=r"a backstop of 2 x 4,611,686,018.000001 seconds "
                                           r"is longer than Vault can hold \(106,751 days\)"):
        vault_backstop(cadence(half + timedelta(microseconds=1)))


def test_the_nist_warning_names_both_durations() -> None:
    """At safety factor 0.9 a 40M/day key rotates every 90 days; 180 days outlives NIST's
    107."""
    backstop = vault_backstop(rotation_cadence(40_000_000, safety_factor=0.9))
    assert backstop.period == 180 * DAY
    assert backstop.nist_warning == (
        "at the expected rate a version reaches NIST's 2^32 encryptions after 107 days, "
        "before the backstop of 180 days would rotate it (a backstop bounds a version's age, "
        "not its use: keyward's ledger does that)")


def test_a_backstop_exactly_at_the_nist_bound_is_not_warned_about() -> None:
    bound = vault_backstop(cadence(HOUR, nist_bound=2 * HOUR))
    assert bound.nist_warning is None
    over = vault_backstop(cadence(HOUR, nist_bound=2 * HOUR - timedelta(microseconds=1)))
    assert over.nist_warning is not None


BACKSTOP = vault_backstop(THIRTY_DAYS)
EXPLAINED = ("Vault rotates the key after 60 days if keyward has not (2 x keyward's interval "
             "of 30 days)")
BOTH = "both rotate it, on different cadences"


@pytest.mark.parametrize(("current", "mode", "change", "detail"), [
    (timedelta(0), "reconcile", "set", f"auto_rotate_period off → 60 days: {EXPLAINED}"),
    (timedelta(0), "keep-existing", "set", f"auto_rotate_period off → 60 days: {EXPLAINED}"),
    (timedelta(0), "off", "off", "auto_rotate_period off: left alone "
                                 "(rotation.vault_backstop = off)"),
    (60 * DAY, "reconcile", "unchanged", "auto_rotate_period 60 days (the backstop)"),
    (60 * DAY, "keep-existing", "unchanged", "auto_rotate_period 60 days (the backstop)"),
    (60 * DAY, "off", "off", "auto_rotate_period 60 days: left alone "
                             "(rotation.vault_backstop = off)"),
    (365 * DAY, "reconcile", "set", f"auto_rotate_period 365 days → 60 days: {EXPLAINED}"),
    (365 * DAY, "keep-existing", "kept", "auto_rotate_period 365 days: kept "
                                         "(rotation.vault_backstop = keep-existing; the "
                                         "backstop would be 60 days)"),
])
def test_each_decision_says_what_it_does(current: timedelta, mode: Any, change: str,
                                         detail: str) -> None:
    decision = decide_period(current, BACKSTOP, mode)
    assert (decision.change, decision.detail, decision.warnings) == (change, detail, ())


def test_a_period_shorter_than_keyward_interval_is_a_warning_and_reconciled() -> None:
    """Vault rotating every day while keyward plans 30 days: reported, then set."""
    decision = decide_period(DAY, BACKSTOP, "reconcile")
    assert (decision.change, decision.result) == ("set", 60 * DAY)
    assert decision.warnings == (
        "Vault rotates this key by itself every 1 day, and keyward every 30 days: both "
        "rotate it, on different cadences; now set to the backstop",)


@pytest.mark.parametrize("mode", ["keep-existing", "off"])
def test_a_period_shorter_than_keyward_interval_is_a_warning_when_left(mode: Any) -> None:
    decision = decide_period(DAY, BACKSTOP, mode)
    assert decision.result == DAY
    assert decision.warnings == (
        f"Vault rotates this key by itself every 1 day, and keyward every 30 days: {BOTH}",)


def test_45_days_is_still_both_rotating_and_46_is_not() -> None:
    """3/2 of 30 days is the edge: at 45 days Vault may rotate before keyward does."""
    assert decide_period(45 * DAY, BACKSTOP, "reconcile").warnings[0].endswith(
        f"{BOTH}; now set to the backstop")
    assert decide_period(46 * DAY, BACKSTOP, "reconcile").warnings == ()


def test_the_nist_warning_travels_with_the_backstop_in_vault() -> None:
    """Warned when Vault ends up with the backstop (set, unchanged, or already there with
    the backstop off), not when another period is kept."""
    risky = vault_backstop(rotation_cadence(40_000_000, safety_factor=0.9))
    assert risky.nist_warning is not None
    for current, mode in ((timedelta(0), "reconcile"), (risky.period, "reconcile"),
                          (risky.period, "off")):
        assert decide_period(current, risky, cast(Any, mode)).warnings == (risky.nist_warning,)
    assert decide_period(400 * DAY, risky, "keep-existing").warnings == ()
    assert decide_period(timedelta(0), risky, "off").warnings == ()


def test_an_unknown_mode_or_a_negative_period_is_refused() -> None:
    with pytest.raises(CadenceError, match="one of reconcile, keep-existing, off, got 'on'"):
        decide_period(timedelta(0), BACKSTOP, cast(Any, "on"))
    with pytest.raises(CadenceError, match="auto_rotate_period must not be negative"):
        decide_period(-timedelta(microseconds=1), BACKSTOP, "reconcile")


def test_decisions_and_backstops_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BACKSTOP.period = DAY  # type: ignore[misc]
    decision = decide_period(timedelta(0), BACKSTOP, "reconcile")
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.change = "off"  # type: ignore[misc]
