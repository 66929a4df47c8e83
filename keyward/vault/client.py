"""The Vault client factory: one place that turns settings into a logged-in hvac client.

Nothing in keyward reaches for a module-level client. Entry points build a
:class:`VaultSession`, hand its ``client`` to the activity classes and codec,
and close it on shutdown.
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import hvac

from keyward.config import VaultSettings
from keyward.errors import StartupError
from keyward.log import get_logger
from keyward.vault.auth import TokenLease, VaultAuthMethod, auth_from_settings
from keyward.vault.errors import VaultError, vault_errors
from keyward.vault.renewal import TokenRenewer


def build_hvac_client(settings: VaultSettings) -> hvac.Client:
    """An unauthenticated hvac client with TLS and timeouts from settings.

    ``VAULT_CACERT`` arrives here as ``settings.ca_cert``: requests then verifies
    Vault's certificate against that CA instead of the system store.
    """
    verify: bool | str = str(settings.ca_cert) if settings.ca_cert else True
    return hvac.Client(url=settings.address, verify=verify, timeout=settings.timeout_seconds,
                       namespace=settings.namespace)


class VaultSession:
    """A logged-in hvac client plus the thread that keeps its token alive."""

    def __init__(self, settings: VaultSettings, *, auth: VaultAuthMethod | None = None) -> None:
        self.settings = settings
        self.auth = auth or auth_from_settings(settings)
        self.client = build_hvac_client(settings)
        self._renewer: TokenRenewer | None = None
        self._log = get_logger("keyward.vault", vault_addr=settings.address,
                               auth_method=self.auth.name)

    @property
    def renewer(self) -> TokenRenewer | None:
        return self._renewer

    def connect(self, *, renew: bool = True) -> TokenLease:
        """Check Vault answers and is unsealed, log in, and start renewing the token."""
        with vault_errors("health check"):
            health = self.client.sys.read_health_status(method="GET", standby_ok=True,
                                                        sealed_code=200, uninit_code=200)
        if isinstance(health, dict) and health.get("sealed"):
            raise StartupError(f"Vault at {self.settings.address} is sealed")
        lease = self.auth.login(self.client)
        self._log.info("connected to vault", token_ttl=lease.ttl_seconds,
                       token_renewable=lease.renewable)
        if renew:
            self._renewer = TokenRenewer(self.client, self.auth, lease)
            self._renewer.start()
        return lease

    def close(self) -> None:
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer = None
        self.client.adapter.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def connect_vault(settings: VaultSettings, *, renew: bool = True) -> VaultSession:
    """Build and connect a session, turning failure into one clear startup error."""
    session = VaultSession(settings)
    try:
        session.connect(renew=renew)
    except VaultError as exc:
        session.close()
        raise StartupError(f"cannot use Vault at {settings.address}: {exc}") from exc
    return session
