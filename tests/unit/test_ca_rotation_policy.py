"""When an old CA may retire (keyward/policy/ca_rotation.py): property tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyward.policy.ca_rotation import may_retire, retire_after

hours = st.floats(min_value=0.0, max_value=100_000.0, allow_nan=False)
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))


@given(st.lists(hours, min_size=1, max_size=20), hours)
def test_the_wait_covers_every_leaf_lifetime_plus_the_grace(lifetimes: list[float],
                                                            grace: float) -> None:
    wait = retire_after(lifetimes, grace)
    assert wait == pytest.approx((max(lifetimes) + grace) * 3600)
    assert all(wait >= lifetime * 3600 for lifetime in lifetimes)


@given(hours)
def test_without_leaves_the_grace_alone_applies(grace: float) -> None:
    assert retire_after([], grace) == pytest.approx(grace * 3600)


def test_a_negative_grace_is_refused() -> None:
    with pytest.raises(ValueError, match="grace_hours"):
        retire_after([1.0], -0.5)


@given(moments, st.floats(min_value=0, max_value=10**7, allow_nan=False))
def test_retiring_is_allowed_from_the_moment_the_wait_is_over(switched: datetime,
                                                              wait: float) -> None:
    end = switched + timedelta(seconds=wait)
    assert may_retire(switched, end, wait)
    assert may_retire(switched, end + timedelta(seconds=1), wait)
    assert not may_retire(switched, end - timedelta(seconds=1), wait)
