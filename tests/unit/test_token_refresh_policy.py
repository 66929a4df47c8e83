"""When and how a Vault token is refreshed: a pure function, checked over all inputs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keyward.vault.auth import TokenLease
from keyward.vault.renewal import RENEW_AT_FRACTION, plan_refresh

ttls = st.integers(min_value=1, max_value=10 * 365 * 86400)


@given(ttl=ttls, renewable=st.booleans(), can_relogin=st.booleans(), login_ttl=ttls)
def test_refresh_always_happens_before_expiry(ttl: int, renewable: bool, can_relogin: bool,
                                              login_ttl: int) -> None:
    """Whatever the lease, the refresh is planned strictly inside its TTL (or at it, for 1 s)."""
    plan = plan_refresh(TokenLease(ttl, renewable), login_ttl=login_ttl, can_relogin=can_relogin)
    assert plan is not None
    assert 0 < plan.after_seconds <= ttl
    if ttl >= 3:
        assert plan.after_seconds <= ttl * RENEW_AT_FRACTION + 0.5


@given(renewable=st.booleans(), can_relogin=st.booleans())
def test_non_expiring_tokens_need_nothing(renewable: bool, can_relogin: bool) -> None:
    """A token with TTL 0 (root, or no expiry) is never refreshed."""
    assert plan_refresh(TokenLease(0, renewable), login_ttl=0, can_relogin=can_relogin) is None


@given(ttl=ttls, login_ttl=ttls)
def test_static_token_that_cannot_renew_only_warns(ttl: int, login_ttl: int) -> None:
    """A non-renewable token with no way to log in again can only be warned about."""
    plan = plan_refresh(TokenLease(ttl, False), login_ttl=login_ttl, can_relogin=False)
    assert plan is not None
    assert plan.action == "expire"


@given(login_ttl=st.integers(min_value=30, max_value=86400))
def test_dwindling_lease_triggers_relogin(login_ttl: int) -> None:
    """Near the max TTL (renewal grants under a third of the login TTL) we log in afresh."""
    lease = TokenLease(login_ttl // 4, renewable=True)
    plan = plan_refresh(lease, login_ttl=login_ttl, can_relogin=True)
    assert plan is not None
    assert plan.action == "relogin"
    healthy = plan_refresh(TokenLease(login_ttl, True), login_ttl=login_ttl, can_relogin=True)
    assert healthy is not None
    assert healthy.action == "renew"
