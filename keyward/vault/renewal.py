"""Keeping a Vault token alive in a long-running process.

The timing is a pure function (:func:`plan_refresh`) so it can be property
tested; :class:`TokenRenewer` is the thread that follows the plan. A thread,
not an asyncio task, because hvac is synchronous and the same client serves
plain ``def`` activities on the worker's thread pool.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final, Literal

import hvac

from keyward.log import get_logger
from keyward.vault.auth import TokenLease, VaultAuthMethod
from keyward.vault.errors import VaultError, VaultPermanentError, vault_errors

#: Refresh when this fraction of the TTL has passed (Vault Agent renews at about 2/3).
RENEW_AT_FRACTION: Final = 2 / 3
#: When renewal grants less than this share of the TTL we got at login, the
#: token is near its max TTL: log in again instead of renewing a dwindling lease.
RELOGIN_BELOW_FRACTION: Final = 1 / 3
MIN_DELAY_SECONDS: Final = 0.5
RETRY_DELAY_SECONDS: Final = 5.0

Action = Literal["renew", "relogin", "expire"]


@dataclass(frozen=True)
class RefreshPlan:
    action: Action
    after_seconds: float


def plan_refresh(lease: TokenLease, *, login_ttl: int, can_relogin: bool) -> RefreshPlan | None:
    """What to do about a token with ``lease``, and when. ``None``: it never expires.

    ``expire`` means nothing can be done (a static, non-renewable token): the
    renewer wakes at the same point only to warn before Vault starts refusing.
    """
    if lease.ttl_seconds <= 0:
        return None
    after = max(MIN_DELAY_SECONDS, lease.ttl_seconds * RENEW_AT_FRACTION)
    after = min(after, float(lease.ttl_seconds))
    near_max_ttl = login_ttl > 0 and lease.ttl_seconds < login_ttl * RELOGIN_BELOW_FRACTION
    if lease.renewable and not (can_relogin and near_max_ttl):
        return RefreshPlan("renew", after)
    if can_relogin:
        return RefreshPlan("relogin", after)
    return RefreshPlan("expire", after)


class TokenRenewer:
    """Renews (or re-obtains) the client's token before its TTL runs out."""

    def __init__(self, client: hvac.Client, auth: VaultAuthMethod, lease: TokenLease) -> None:
        self._client = client
        self._auth = auth
        self._lease = lease
        self._login_ttl = lease.ttl_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._log = get_logger("keyward.vault", auth_method=auth.name)
        #: How many refreshes succeeded; for tests and metrics.
        self.refreshes = 0

    @property
    def lease(self) -> TokenLease:
        return self._lease

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vault-token-renewer",
                                            daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        while True:
            plan = plan_refresh(self._lease, login_ttl=self._login_ttl,
                                can_relogin=self._auth.can_relogin)
            if plan is None:
                self._log.debug("vault token does not expire; renewal not needed")
                return
            if self._stop.wait(plan.after_seconds):
                return
            self._refresh(plan)

    def _refresh(self, plan: RefreshPlan) -> None:
        try:
            if plan.action == "renew":
                self._lease = self._renew()
            elif plan.action == "relogin":
                self._lease = self._auth.login(self._client)
                self._login_ttl = self._lease.ttl_seconds
            else:
                remaining = self._lease.ttl_seconds - plan.after_seconds
                self._log.warning("vault token is not renewable and will expire",
                                  expires_in_seconds=round(remaining))
                self._lease = TokenLease(ttl_seconds=0, renewable=False)
                return
            self.refreshes += 1
            self._log.info("vault token refreshed", action=plan.action,
                           token_ttl=self._lease.ttl_seconds)
        except VaultPermanentError as exc:
            if plan.action == "renew" and self._auth.can_relogin:
                # Renewal refused (revoked, past max TTL): a fresh login is the way back.
                self._log.warning("vault token renewal refused; logging in again", error=str(exc))
                self._lease = TokenLease(ttl_seconds=1, renewable=False)
                return
            self._log.error("vault token refresh failed", action=plan.action, error=str(exc))
            self._lease = TokenLease(ttl_seconds=0, renewable=False)
        except VaultError as exc:
            self._log.warning("vault token refresh failed; will retry", action=plan.action,
                              error=str(exc), retry_in_seconds=RETRY_DELAY_SECONDS)
            remaining = max(1, int(self._lease.ttl_seconds - plan.after_seconds))
            # Try again soon, without letting the retry outlive the token.
            self._lease = TokenLease(
                ttl_seconds=max(1, min(remaining, int(RETRY_DELAY_SECONDS / RENEW_AT_FRACTION))),
                renewable=self._lease.renewable)

    def _renew(self) -> TokenLease:
        with vault_errors("token renew-self"):
            response = self._client.auth.token.renew_self()
        auth = response["auth"]
        return TokenLease(ttl_seconds=int(auth.get("lease_duration") or 0),
                          renewable=bool(auth.get("renewable")))
