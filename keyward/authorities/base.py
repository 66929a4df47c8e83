"""What a CA rotation needs of the place a CA lives: :class:`CaBackend`.

A backend answers for one CA: which certificate is active, the successor this rotation
staged, switching issuance to it, and which configured leaves it signs. It never decides
*when*: publishing the bundles, refusing a switch the bundles are not ready for, and
withdrawing trust are the rotation service's (``keyward.services.authorities``), the same
for every backend.

Every method is idempotent, because a step may be retried or resumed by another worker
after a crash at any point: ``stage`` makes the successor once (a rerun finds the one it
made), ``switch`` may run again after it succeeded, and nothing ever deletes the old CA's
material (it is archived, or kept where it lives).
"""

from __future__ import annotations

from typing import Protocol

from cryptography import x509

from keyward.config import CertificateSettings
from keyward.contracts import failures
from keyward.errors import KeywardError


class CaRotationError(KeywardError):
    """A rotation step cannot be done (now, or with these settings)."""

    failure_type = failures.CA_ROTATION_REFUSED


class CaBackend(Protocol):
    """One CA where it lives. Synchronous, as the SDKs behind it (hvac, azure) are."""

    @property
    def where(self) -> str:
        """For messages: ``CA files /etc/pki/ca.crt``, ``Vault PKI mount pki``."""
        ...

    def active(self) -> x509.Certificate:
        """The CA that issues now (and that the leaves must chain to after the switch)."""
        ...

    def staged(self) -> x509.Certificate | None:
        """The successor this rotation made, until :meth:`settle`; None before :meth:`stage`.

        It may already be active: a switch whose bookkeeping did not finish is run again.
        """
        ...

    def stage(self, common_name: str) -> x509.Certificate:
        """Make the successor (subject ``common_name``), or return the one made already."""
        ...

    def switch(self) -> x509.Certificate:
        """Make the staged successor the issuing CA, keeping the old CA (archived or where
        it lives, never deleted). Idempotent; raises :class:`CaRotationError` with nothing
        staged or when issuance would not follow (a role pinned to another issuer)."""
        ...

    def settle(self) -> None:
        """Forget the staging once the switch is recorded (the successor stays active)."""
        ...

    def leaves(self) -> dict[str, CertificateSettings]:
        """The configured certificates this CA signs, by name, sorted."""
        ...
