"""When a certificate is renewed: checked over arbitrary lifetimes and clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyward.policy.renewal import (
    RenewalPolicyError,
    check_interval,
    jitter_share,
    renewal_decision,
)

START = datetime(2026, 1, 1, tzinfo=UTC)
lifetimes = st.timedeltas(min_value=timedelta(seconds=10), max_value=timedelta(days=800))
fractions = st.floats(min_value=0, max_value=1)
seeds = st.text(max_size=40)


@given(lifetime=lifetimes, at=fractions, seed=seeds)
def test_renews_inside_the_last_third_and_never_before_two_thirds_minus_jitter(
        lifetime: timedelta, at: float, seed: str) -> None:
    """Renewal happens no later than 2/3 of the lifetime and no earlier than 2/3 - 10% of 1/3."""
    now = START + lifetime * at
    decision = renewal_decision(not_before=START, not_after=START + lifetime, now=now, seed=seed)
    latest_point = START + lifetime * (2 / 3)
    earliest_point = latest_point - lifetime / 3 * 0.1
    assert earliest_point - timedelta(microseconds=2) <= decision.renew_at
    assert decision.renew_at <= latest_point + timedelta(microseconds=2)
    assert decision.renew == (now >= decision.renew_at)


@given(lifetime=lifetimes, seed=seeds, at=fractions)
def test_same_certificate_same_answer(lifetime: timedelta, seed: str, at: float) -> None:
    """Deterministic: the same inputs always give the same decision (replay-safe)."""
    kwargs = {"not_before": START, "not_after": START + lifetime, "now": START + lifetime * at,
              "seed": seed}
    assert renewal_decision(**kwargs) == renewal_decision(**kwargs)  # type: ignore[arg-type]


@given(lifetime=lifetimes, seed=seeds)
def test_expired_is_always_renewed_and_critical(lifetime: timedelta, seed: str) -> None:
    """Past not_after the answer is renew, critical."""
    decision = renewal_decision(not_before=START, not_after=START + lifetime,
                                now=START + lifetime + timedelta(seconds=1), seed=seed)
    assert decision.renew
    assert decision.critical
    assert decision.reason.startswith("expired")


@given(lifetime=lifetimes, before=st.timedeltas(min_value=timedelta(seconds=1),
                                                max_value=timedelta(days=1000)))
def test_explicit_renew_before_is_honoured(lifetime: timedelta, before: timedelta) -> None:
    """renew_before moves the point to not_after - renew_before (capped at the lifetime)."""
    decision = renewal_decision(not_before=START, not_after=START + lifetime, now=START,
                                renew_before=before, jitter_fraction=0)
    assert decision.renew_at == max(START, START + lifetime - min(before, lifetime))


def test_jitter_spreads_a_fleet() -> None:
    """Certificates issued together get different renewal points (no thundering herd)."""
    points = {renewal_decision(not_before=START, not_after=START + timedelta(days=90),
                               now=START, seed=f"serial-{i}").renew_at for i in range(50)}
    assert len(points) > 40
    assert all(0 <= jitter_share(f"{i}") < 1 for i in range(100))


def test_critical_below_threshold() -> None:
    """Less than a tenth of the lifetime left is critical."""
    lifetime = timedelta(days=10)
    late = renewal_decision(not_before=START, not_after=START + lifetime,
                            now=START + timedelta(days=9, hours=12))
    early = renewal_decision(not_before=START, not_after=START + lifetime,
                             now=START + timedelta(days=7))
    assert late.critical
    assert not early.critical


@pytest.mark.parametrize("kwargs", [
    {"not_before": START, "not_after": START, "now": START},
    {"not_before": START, "not_after": START + timedelta(days=1), "now": datetime(2026, 1, 1)},
    {"not_before": START, "not_after": START + timedelta(days=1), "now": START,
     "renew_before": timedelta(0)},
    {"not_before": START, "not_after": START + timedelta(days=1), "now": START,
     "jitter_fraction": 1.5},
])
def test_nonsense_is_rejected(kwargs: dict[str, object]) -> None:
    """Zero lifetime, naive clocks, empty windows and bad jitter raise a clear error."""
    with pytest.raises(RenewalPolicyError):
        renewal_decision(**kwargs)  # type: ignore[arg-type]


@given(lifetime=lifetimes)
def test_check_interval_fits_the_window(lifetime: timedelta) -> None:
    """The schedule checks at least four times per renewal window (bounded to [1 s, 1 day])."""
    interval = check_interval(lifetime)
    assert timedelta(seconds=1) <= interval <= timedelta(days=1)
    if lifetime / 3 / 4 >= timedelta(seconds=1):
        assert interval <= lifetime / 3 / 4 + timedelta(microseconds=1)
