"""The renewal decision at its edges: the default third, the jitter, the critical tenth,
the exact instants, the reason's units and how often a schedule checks."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from keyward.policy.renewal import (
    DEFAULT_CRITICAL_FRACTION,
    DEFAULT_JITTER_FRACTION,
    DEFAULT_RENEW_FRACTION,
    RenewalPolicyError,
    check_interval,
    jitter_share,
    renewal_decision,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
LIFE = timedelta(days=90)
END = START + LIFE



def test_the_defaults_are_a_third_a_tenth_and_a_tenth() -> None:
    """cert-manager's last third, a jitter of up to 10 % of it, critical below 10 % left."""
    assert (DEFAULT_RENEW_FRACTION, DEFAULT_JITTER_FRACTION, DEFAULT_CRITICAL_FRACTION) == (
        1 / 3, 0.1, 0.1)


def test_the_jitter_share_is_the_seeds_sha256() -> None:
    """The share is the first 8 bytes of SHA-256(seed) over 2^64: stable across processes."""
    assert jitter_share("") == 0.8894159948913374
    assert jitter_share("serial-1") == 0.7302447349333399


def test_by_default_renewal_is_due_a_third_before_the_end_minus_jitter() -> None:
    """Without renew_before, the window is a third of the lifetime; the seed's jitter moves
    the point earlier by up to a tenth of the window."""
    decision = renewal_decision(not_before=START, not_after=END, now=START, seed="serial-1")
    window = LIFE / 3
    assert decision.renew_at == END - window - window * (0.1 * jitter_share("serial-1"))
    unjittered = renewal_decision(not_before=START, not_after=END, now=START,
                                  jitter_fraction=0)
    assert unjittered.renew_at == END - window


def test_renewal_is_due_at_the_renewal_instant_exactly() -> None:
    """At renew_at the answer is renew; a microsecond earlier it is not."""
    renew_at = END - LIFE / 3
    assert renewal_decision(not_before=START, not_after=END, now=renew_at,
                            jitter_fraction=0).renew
    early = renewal_decision(not_before=START, not_after=END,
                             now=renew_at - timedelta(microseconds=1), jitter_fraction=0)
    assert not early.renew
    assert "renewal due at" in early.reason


def test_at_not_after_the_certificate_counts_as_expired() -> None:
    """At not_after exactly, the decision is renew, critical, and says it expired."""
    decision = renewal_decision(not_before=START, not_after=END, now=END)
    assert (decision.renew, decision.critical) == (True, True)
    assert decision.reason == "expired 0s ago: renewing"


def test_critical_at_a_tenth_left_exactly() -> None:
    """Exactly a tenth of the lifetime left is critical; a second more is not. An explicit
    critical_below replaces the tenth."""
    at_tenth = renewal_decision(not_before=START, not_after=END, now=END - LIFE / 10)
    assert at_tenth.critical
    before = renewal_decision(not_before=START, not_after=END,
                              now=END - LIFE / 10 - timedelta(seconds=1))
    assert not before.critical
    explicit = renewal_decision(not_before=START, not_after=END, now=END - timedelta(days=20),
                                critical_below=timedelta(days=30))
    assert explicit.critical


def test_a_window_longer_than_the_lifetime_renews_from_the_start() -> None:
    """renew_before beyond the lifetime is capped: renewal is due from not_before on."""
    decision = renewal_decision(not_before=START, not_after=END, now=START,
                                renew_before=LIFE * 2)
    assert decision.renew_at == START
    assert decision.renew


@pytest.mark.parametrize("jitter", [0.0, 0.999])
def test_jitter_fractions_from_0_to_below_1_are_accepted(jitter: float) -> None:
    """The jitter fraction may be 0 and anything below 1."""
    renewal_decision(not_before=START, not_after=END, now=START, jitter_fraction=jitter)


@pytest.mark.parametrize("jitter", [1.0, -0.01])
def test_jitter_fractions_outside_0_to_1_are_refused(jitter: float) -> None:
    """1 and negative jitter fractions are refused."""
    with pytest.raises(RenewalPolicyError, match="jitter_fraction"):
        renewal_decision(not_before=START, not_after=END, now=START, jitter_fraction=jitter)


@pytest.mark.parametrize("field", ["not_before", "not_after", "now"])
def test_every_time_must_be_aware(field: str) -> None:
    """Each of not_before, not_after and now must be timezone-aware."""
    times = {"not_before": START, "not_after": END, "now": START}
    times[field] = times[field].replace(tzinfo=None)
    with pytest.raises(RenewalPolicyError, match="timezone-aware"):
        renewal_decision(**times)  # type: ignore[arg-type]


def test_a_certificate_ending_before_it_starts_is_refused() -> None:
    """A negative or zero lifetime is refused as such, and a negative renew_before too."""
    with pytest.raises(RenewalPolicyError, match="before it starts"):
        renewal_decision(not_before=END, not_after=START, now=START)
    with pytest.raises(RenewalPolicyError, match="before it starts"):
        renewal_decision(not_before=START, not_after=START, now=START)
    with pytest.raises(RenewalPolicyError, match="renew_before must be positive"):
        renewal_decision(not_before=START, not_after=END, now=START,
                         renew_before=-timedelta(seconds=1))


@pytest.mark.parametrize(("left", "shown"), [
    (timedelta(days=1), "1d 0h"), (timedelta(days=2, hours=5, minutes=3), "2d 5h"),
    (timedelta(hours=1), "1h 0m"), (timedelta(hours=3, minutes=7, seconds=9), "3h 7m"),
    (timedelta(minutes=1), "1m 0s"), (timedelta(minutes=4, seconds=2), "4m 2s"),
    (timedelta(seconds=59), "59s"),
    (timedelta(days=2) - timedelta(seconds=1), "1d 23h"), (timedelta(days=1, hours=1), "1d 1h"),
    (timedelta(days=1) - timedelta(seconds=1), "23h 59m"),
    (timedelta(hours=2) - timedelta(seconds=1), "1h 59m"), (timedelta(hours=1, minutes=1), "1h 1m"),
    (timedelta(hours=1) - timedelta(seconds=1), "59m 59s"),
    (timedelta(minutes=2) - timedelta(seconds=1), "1m 59s"),
])
def test_the_reason_shows_the_time_left_in_its_two_largest_units(left: timedelta,
                                                                 shown: str) -> None:
    """Time left reads as days and hours, hours and minutes, minutes and seconds, or
    seconds, switching unit at exactly one day, hour and minute."""
    decision = renewal_decision(not_before=START, not_after=END, now=END - left)
    assert decision.reason.startswith(f"{shown} left, inside the renewal window (renew at ")


def test_a_decision_not_due_says_when() -> None:
    """A decision before the window says how much is left and when renewal is due."""
    decision = renewal_decision(not_before=START, not_after=END, now=START, jitter_fraction=0)
    assert decision.reason == "90d 0h left; renewal due at 2026-03-02T00:00:00+00:00"
    with pytest.raises(dataclasses.FrozenInstanceError):
        decision.renew = True  # type: ignore[misc]


@pytest.mark.parametrize(("lifetime", "renew_before", "interval"), [
    (timedelta(days=90), None, timedelta(days=1)),
    (timedelta(hours=12), None, timedelta(hours=1)),
    (timedelta(seconds=6), None, timedelta(seconds=1)),
    (timedelta(days=90), timedelta(hours=8), timedelta(hours=2)),
])
def test_checks_come_four_times_per_window_between_a_second_and_a_day(
        lifetime: timedelta, renew_before: timedelta | None, interval: timedelta) -> None:
    """A quarter of the renewal window (a third of the lifetime unless given), at least one
    second and at most one day."""
    assert check_interval(lifetime, renew_before) == interval
