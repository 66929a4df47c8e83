"""Rotating a certificate authority: the steps behind ``RotateCertificateAuthority``.

The rules are here, the same for every backend; where the CA lives (keyward's files, a
Vault PKI mount, Azure Key Vault) is a :class:`~keyward.authorities.base.CaBackend`, and
the rotation's bookkeeping is :class:`~keyward.authorities.state.RotationState` (why it is
files for every backend: that module's docstring).

Each step is idempotent and reads where the rotation stands from the backend and the state
directory, so a step retried, or a worker killed and resumed, converges without repeating
an effect. What may withdraw trust is decided here from that state, the settings and the
clock: the old CA leaves the bundles only after the switch, once every leaf chains to the
new CA, and not before the longest leaf lifetime plus the grace has passed since the
switch. The old CA's material is never deleted (archived, or kept where it lives).

Synchronous (files, keys, hvac, the Azure SDK); activities run it on the worker's threads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from keyward.authorities.base import CaBackend, CaRotationError
from keyward.authorities.factory import backend_for
from keyward.authorities.state import Owner, RotationState
from keyward.config import CertificateSettings, Settings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.config.cloud import CloudSettings
from keyward.contracts import failures
from keyward.contracts.authorities import (
    BundlePhase,
    BundlePublished,
    CaRotationPlan,
    CaSummary,
    LeafCheck,
    LeavesVerified,
)
from keyward.errors import KeywardError
from keyward.policy.ca_rotation import may_retire, retire_after
from keyward.stores.base import CertificateStore
from keyward.stores.factory import store_for
from keyward.trust.base import TrustPoint, fingerprint
from keyward.trust.cloud import CloudNamespaceTrustPoint
from keyward.trust.files import FileTrustPoint

__all__ = ["CaRotationError", "CaRotations", "Owner", "fingerprint", "summary_of",
           "trust_points"]

StoreFactory = Callable[[str, CertificateSettings], CertificateStore]


def summary_of(certificate: x509.Certificate) -> CaSummary:
    return CaSummary(fingerprint=fingerprint(certificate),
                     subject=certificate.subject.rfc4514_string(),
                     not_after=certificate.not_valid_after_utc)


class CaRotations:
    """The CAs of one settings file that keyward may rotate.

    ``vault`` is the worker's hvac client (for ``vault-pki`` CAs); ``azure_options`` the
    Key Vault ``credential``/``client_kwargs`` (for ``azure-keyvault`` CAs and leaves
    installed in Key Vault) and the CA backend's ``polling_interval``; ``stores`` reads
    installed leaves (default: the stores their settings name).
    """

    def __init__(self, settings: Settings, *, vault: Any | None = None,
                 azure_options: dict[str, Any] | None = None,
                 stores: StoreFactory | None = None) -> None:
        self._settings = settings
        self._vault = vault
        self._azure_options = azure_options
        # The stores take the credential and client options, not a backend's polling.
        store_options = {key: value for key, value in (azure_options or {}).items()
                         if key in ("credential", "client_kwargs")}
        self._stores: StoreFactory = stores or (
            lambda name, cert: store_for(name, cert, azure_options=store_options))

    def settings_of(self, name: str) -> CertificateAuthoritySettings:
        ca = self._settings.certificate_authorities.get(name)
        if ca is None:
            known = ", ".join(sorted(self._settings.certificate_authorities)) or "none"
            raise KeywardError(f"no certificate authority named {name!r} in the settings "
                               f"(configured: {known})",
                               failure_type=failures.UNKNOWN_CERTIFICATE_AUTHORITY)
        return ca

    def backend(self, name: str) -> CaBackend:
        """Where CA ``name`` lives (its settings say which backend)."""
        return backend_for(name, self.settings_of(name), self._settings.certificates,
                           vault=self._vault, azure_options=self._azure_options)

    def leaves(self, name: str) -> dict[str, CertificateSettings]:
        """The certificates this CA signs (each backend says which)."""
        return self.backend(name).leaves()

    # -- reading where a rotation stands -------------------------------------------------

    def plan(self, name: str) -> CaRotationPlan:
        ca = self.settings_of(name)
        backend = self.backend(name)
        state = RotationState(ca.state_directory)
        leaves = backend.leaves()
        staged = backend.staged()
        previous = state.previous()
        return CaRotationPlan(
            name=name, active=summary_of(backend.active()), leaves=tuple(leaves),
            soak_seconds=ca.soak_seconds,
            retire_after_seconds=retire_after(
                [cert.lifetime_hours for cert in leaves.values()], ca.grace_hours),
            staged=summary_of(staged) if staged is not None else None,
            previous=summary_of(previous) if previous is not None else None,
            switched_at=state.switched_at())

    def owner(self, name: str) -> Owner | None:
        return RotationState(self.settings_of(name).state_directory).owner()

    # -- the steps ---------------------------------------------------------------------------

    def stage(self, name: str, owner: Owner) -> CaSummary:
        """Make the successor (once) and record ``owner`` as the rotation's run.

        The caller has checked that any other recorded owner is no longer running. A
        rotation already past its switch (an earlier run was cancelled) is taken over where
        it stands: the successor is the active CA, and nothing new is made.
        """
        ca = self.settings_of(name)
        backend = self.backend(name)
        state = RotationState(ca.state_directory)
        state.set_owner(owner)
        staged = backend.staged()
        if staged is not None:
            return summary_of(staged)
        active = backend.active()
        if state.switched_at() is not None:
            return summary_of(active)
        return summary_of(backend.stage(ca.common_name or _common_name(active)))

    def publish(self, name: str, phase: BundlePhase, *,
                now: datetime | None = None) -> BundlePublished:
        """Edit every trust point's bundle; certificates the rotation did not put there stay.

        ``overlap``: add the active CA and the other CA of the rotation (the staged
        successor before the switch, the replaced one after it). ``final``: take the
        replaced CA out, refused (retryably: trust stays as it is) unless the switch
        happened, the retire time has passed and every leaf chains to the active CA; then
        the replaced CA's certificate leaves the state (its archive stays).
        """
        ca = self.settings_of(name)
        backend = self.backend(name)
        state = RotationState(ca.state_directory)
        active = backend.active()
        if phase == "final":
            self._check_may_retire(name, ca, backend, state, now or datetime.now(UTC))
            retired = state.previous()
            add, remove = [active], [retired] if retired is not None else []
        else:
            other = backend.staged() or state.previous()
            add, remove = [active] + ([other] if other is not None else []), []
        points = trust_points(ca, self._settings.cloud)
        changed = sum(point.edit(add=add, remove=remove) for point in points)
        if phase == "final":
            state.forget_previous()
            state.clear_owner()
        return BundlePublished(fingerprints=tuple(fingerprint(c) for c in add),
                               trust_points=tuple(point.where for point in points),
                               changed=changed)

    def activate(self, name: str, *, now: datetime | None = None) -> CaSummary:
        """Switch issuance to the staged successor, keeping the old CA (archived, or where
        it lives). Refused until every trust bundle holds the successor."""
        ca = self.settings_of(name)
        backend = self.backend(name)
        state = RotationState(ca.state_directory)
        staged = backend.staged()
        if staged is None:
            if state.switched_at() is not None:
                return summary_of(backend.active())  # done by an earlier attempt
            raise CaRotationError(f"certificate authority {name!r}: no successor is staged")
        successor = fingerprint(staged)
        missing = [point.where for point in trust_points(ca, self._settings.cloud)
                   if successor not in {fingerprint(c) for c in point.read()}]
        if missing:
            raise CaRotationError(
                f"certificate authority {name!r}: the successor is not yet in "
                f"{', '.join(missing)}; publish the overlap bundle first", retryable=True)
        if state.previous() is None:
            current = backend.active()
            if fingerprint(current) != successor:
                state.set_previous(current)
        switched = backend.switch()
        # The switch is recorded after it happened (the retire time counts from a moment
        # no old-CA leaf can be issued after), and the staging forgotten only then.
        if state.switched_at() is None:
            state.set_switched_at(now or datetime.now(UTC))
        backend.settle()
        return summary_of(switched)

    def verify_leaves(self, name: str) -> LeavesVerified:
        """Each leaf as installed now: does it chain to the active CA?"""
        backend = self.backend(name)
        active = backend.active()
        return LeavesVerified(checks=tuple(
            self._check_leaf(leaf, cert, active) for leaf, cert in backend.leaves().items()))

    def _check_may_retire(self, name: str, ca: CertificateAuthoritySettings,
                          backend: CaBackend, state: RotationState, now: datetime) -> None:
        switched = state.switched_at()
        if switched is None or backend.staged() is not None:
            raise CaRotationError(f"certificate authority {name!r}: issuance has not "
                                  "switched to the successor; the old CA stays trusted")
        wait = retire_after([c.lifetime_hours for c in backend.leaves().values()],
                            ca.grace_hours)
        if not may_retire(switched, now, wait):
            raise CaRotationError(
                f"certificate authority {name!r}: the old CA may leave the bundles at "
                f"{(switched + timedelta(seconds=wait)).isoformat()}, not before",
                retryable=True)
        stale = [check.certificate for check in self.verify_leaves(name).checks
                 if not check.chains_to_active]
        if stale:
            raise CaRotationError(
                f"certificate authority {name!r}: {', '.join(stale)} do not chain to the new "
                "CA yet; the old CA stays trusted", retryable=True)

    def _check_leaf(self, name: str, cert: CertificateSettings,
                    active: x509.Certificate) -> LeafCheck:
        installed = self._stores(name, cert).read()
        if installed is None:
            return LeafCheck(name, None, False, "nothing installed")
        leaf = x509.load_pem_x509_certificates(installed.certificate_pem)[0]
        serial = format(leaf.serial_number, "x")
        try:
            leaf.verify_directly_issued_by(active)
        except (ValueError, TypeError, InvalidSignature) as exc:
            return LeafCheck(name, serial, False,
                             f"issued by {leaf.issuer.rfc4514_string()}, not the active CA "
                             f"({type(exc).__name__})")
        return LeafCheck(name, serial, True, "chains to the active CA")


def trust_points(ca: CertificateAuthoritySettings, cloud: CloudSettings) -> list[TrustPoint]:
    """Every trust point the CA's settings name: bundle files, Temporal Cloud namespaces."""
    points: list[TrustPoint] = [FileTrustPoint(path) for path in ca.trust_bundles]
    points += [CloudNamespaceTrustPoint(namespace, cloud)
               for namespace in ca.trust_cloud_namespaces]
    return points


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = names[0].value if names else "keyward CA"
    return value if isinstance(value, str) else value.decode()
