"""Rotating a local certificate authority: the steps behind ``RotateCertificateAuthority``.

Each step is idempotent and reads where the rotation stands from the CA's state directory,
so a step retried, or a worker killed and resumed, converges without repeating an effect:

- ``next.crt``/``next.key``: the staged successor (made once, reused by every rerun);
- ``previous.crt``: the CA the active one replaced, trusted until it may retire;
- ``switched_at``: when issuance moved to the successor (UTC, ISO 8601);
- ``owner``: the workflow run doing the rotation (a second one is refused);
- ``archive/<fingerprint>.crt|.key``: every replaced CA's material, never deleted.

What may withdraw trust is decided here from those files, the settings and the clock: the
old CA leaves the bundles only after the switch, once every leaf chains to the new CA, and
not before the longest leaf lifetime plus the grace has passed since the switch.

Synchronous (files and keys); activities run it on the worker's thread pool.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from keyward.config import CertificateSettings, LocalCaIssuerSettings, Settings
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
from keyward.pki.ca import CertificateAuthority, CertificateAuthorityError
from keyward.pki.install import atomic_write
from keyward.policy.ca_rotation import may_retire, retire_after
from keyward.stores.factory import store_for
from keyward.trust.base import TrustPoint, fingerprint
from keyward.trust.cloud import CloudNamespaceTrustPoint
from keyward.trust.files import FileTrustPoint

_NEXT_CERT, _NEXT_KEY = "next.crt", "next.key"
_PREVIOUS = "previous.crt"
_SWITCHED_AT = "switched_at"
_OWNER = "owner"
_ARCHIVE = "archive"


class CaRotationError(KeywardError):
    """A rotation step cannot be done (now, or with these settings)."""

    failure_type = failures.CA_ROTATION_REFUSED


@dataclass(frozen=True)
class Owner:
    """The workflow run a rotation belongs to."""

    workflow_id: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.workflow_id} (run {self.run_id})"


def summary_of(certificate: x509.Certificate) -> CaSummary:
    return CaSummary(fingerprint=fingerprint(certificate),
                     subject=certificate.subject.rfc4514_string(),
                     not_after=certificate.not_valid_after_utc)


class CaRotations:
    """The CAs of one settings file that keyward may rotate."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def settings_of(self, name: str) -> CertificateAuthoritySettings:
        ca = self._settings.certificate_authorities.get(name)
        if ca is None:
            known = ", ".join(sorted(self._settings.certificate_authorities)) or "none"
            raise KeywardError(f"no certificate authority named {name!r} in the settings "
                               f"(configured: {known})",
                               failure_type=failures.UNKNOWN_CERTIFICATE_AUTHORITY)
        return ca

    def leaves(self, name: str) -> dict[str, CertificateSettings]:
        """The certificates this CA signs: those whose local-ca issuer names its files."""
        ca = self.settings_of(name)
        wanted = (_resolved(ca.ca_cert), _resolved(ca.ca_key))
        return {cert_name: cert for cert_name, cert in sorted(self._settings.certificates.items())
                if isinstance(cert.issuer, LocalCaIssuerSettings)
                and (_resolved(cert.issuer.ca_cert), _resolved(cert.issuer.ca_key)) == wanted}

    # -- reading where a rotation stands -------------------------------------------------

    def plan(self, name: str) -> CaRotationPlan:
        ca = self.settings_of(name)
        state = _State(ca)
        leaves = self.leaves(name)
        staged = state.staged_certificate()
        previous = state.previous()
        return CaRotationPlan(
            name=name, active=summary_of(_active(ca).certificate), leaves=tuple(leaves),
            soak_seconds=ca.soak_seconds,
            retire_after_seconds=retire_after(
                [cert.lifetime_hours for cert in leaves.values()], ca.grace_hours),
            staged=summary_of(staged) if staged is not None else None,
            previous=summary_of(previous) if previous is not None else None,
            switched_at=state.switched_at())

    def owner(self, name: str) -> Owner | None:
        return _State(self.settings_of(name)).owner()

    # -- the steps ---------------------------------------------------------------------------

    def stage(self, name: str, owner: Owner) -> CaSummary:
        """Make the successor (once) and record ``owner`` as the rotation's run.

        The caller has checked that any other recorded owner is no longer running. A
        rotation already past its switch (an earlier run was cancelled) is taken over where
        it stands: the successor is the active CA, and nothing new is made.
        """
        ca = self.settings_of(name)
        state = _State(ca)
        state.set_owner(owner)
        staged = state.staged_certificate()
        if staged is not None:
            return summary_of(staged)
        if state.switched_at() is not None:
            return summary_of(_active(ca).certificate)
        active = _active(ca).certificate
        common_name = ca.common_name or _common_name(active)
        successor = CertificateAuthority.bootstrap(
            common_name, lifetime=timedelta(days=ca.lifetime_days), key_type=ca.key_type)
        successor.save(state.path(_NEXT_CERT), state.path(_NEXT_KEY))
        return summary_of(successor.certificate)

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
        state = _State(ca)
        active = _active(ca).certificate
        if phase == "final":
            self._check_may_retire(name, ca, state, now or datetime.now(UTC))
            retired = state.previous()
            add, remove = [active], [retired] if retired is not None else []
        else:
            other = state.staged_certificate() or state.previous()
            add, remove = [active] + ([other] if other is not None else []), []
        points = trust_points(ca, self._settings.cloud)
        changed = sum(point.edit(add=add, remove=remove) for point in points)
        if phase == "final":
            state.path(_PREVIOUS).unlink(missing_ok=True)
            state.clear_owner()
        return BundlePublished(fingerprints=tuple(fingerprint(c) for c in add),
                               trust_points=tuple(point.where for point in points),
                               changed=changed)

    def activate(self, name: str, *, now: datetime | None = None) -> CaSummary:
        """Switch issuance to the staged successor: archive the active CA, install the
        successor in its place. Refused until every trust bundle holds the successor."""
        ca = self.settings_of(name)
        state = _State(ca)
        staged = state.staged()
        if staged is None:
            if state.switched_at() is not None:
                return summary_of(_active(ca).certificate)  # done by an earlier attempt
            raise CaRotationError(f"certificate authority {name!r}: no successor is staged")
        successor = fingerprint(staged.certificate)
        missing = [point.where for point in trust_points(ca, self._settings.cloud)
                   if successor not in {fingerprint(c) for c in point.read()}]
        if missing:
            raise CaRotationError(
                f"certificate authority {name!r}: the successor is not yet in "
                f"{', '.join(missing)}; publish the overlap bundle first", retryable=True)
        if state.previous() is None:
            current = _active(ca)
            state.archive(current)
            atomic_write(state.path(_PREVIOUS), _pem(current.certificate), mode=0o644)
        staged.save(ca.ca_cert, ca.ca_key)
        if state.switched_at() is None:
            moment = (now or datetime.now(UTC)).isoformat()
            atomic_write(state.path(_SWITCHED_AT), moment.encode(), mode=0o644)
        state.path(_NEXT_CERT).unlink(missing_ok=True)
        state.path(_NEXT_KEY).unlink(missing_ok=True)
        return summary_of(staged.certificate)

    def verify_leaves(self, name: str) -> LeavesVerified:
        """Each leaf as installed now: does it chain to the active CA?"""
        ca = self.settings_of(name)
        active = _active(ca).certificate
        return LeavesVerified(checks=tuple(
            _check_leaf(leaf, cert, active) for leaf, cert in self.leaves(name).items()))

    def _check_may_retire(self, name: str, ca: CertificateAuthoritySettings, state: _State,
                          now: datetime) -> None:
        switched = state.switched_at()
        if switched is None or state.staged() is not None:
            raise CaRotationError(f"certificate authority {name!r}: issuance has not "
                                  "switched to the successor; the old CA stays trusted")
        wait = retire_after([c.lifetime_hours for c in self.leaves(name).values()],
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


class _State:
    """One CA's rotation state directory (see the module docstring)."""

    def __init__(self, ca: CertificateAuthoritySettings) -> None:
        self._ca = ca
        self.directory = ca.state_directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def staged_certificate(self) -> x509.Certificate | None:
        staged = self.staged()
        return staged.certificate if staged is not None else None

    def staged(self) -> CertificateAuthority | None:
        try:
            return CertificateAuthority.load(self.path(_NEXT_CERT), self.path(_NEXT_KEY))
        except FileNotFoundError:
            return None
        except CertificateAuthorityError:
            # A crash between the key's and the certificate's rename: make a new one.
            self.path(_NEXT_CERT).unlink(missing_ok=True)
            self.path(_NEXT_KEY).unlink(missing_ok=True)
            return None

    def previous(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificate(self.path(_PREVIOUS).read_bytes())
        except FileNotFoundError:
            return None

    def switched_at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.path(_SWITCHED_AT).read_text().strip())
        except FileNotFoundError:
            return None

    def owner(self) -> Owner | None:
        try:
            workflow_id, _, run_id = self.path(_OWNER).read_text().strip().partition("\n")
        except FileNotFoundError:
            return None
        return Owner(workflow_id, run_id)

    def set_owner(self, owner: Owner) -> None:
        atomic_write(self.path(_OWNER), f"{owner.workflow_id}\n{owner.run_id}".encode(),
                     mode=0o644)

    def clear_owner(self) -> None:
        self.path(_OWNER).unlink(missing_ok=True)
        self.path(_SWITCHED_AT).unlink(missing_ok=True)

    def archive(self, ca: CertificateAuthority) -> None:
        """Keep the replaced CA's certificate and key (0600), named by fingerprint."""
        directory = self.path(_ARCHIVE)
        name = fingerprint(ca.certificate)
        if not (directory / f"{name}.key").exists():
            ca.save(directory / f"{name}.crt", directory / f"{name}.key")
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)


def trust_points(ca: CertificateAuthoritySettings, cloud: CloudSettings) -> list[TrustPoint]:
    """Every trust point the CA's settings name: bundle files, Temporal Cloud namespaces."""
    points: list[TrustPoint] = [FileTrustPoint(path) for path in ca.trust_bundles]
    points += [CloudNamespaceTrustPoint(namespace, cloud)
               for namespace in ca.trust_cloud_namespaces]
    return points


def _active(ca: CertificateAuthoritySettings) -> CertificateAuthority:
    try:
        return CertificateAuthority.load(ca.ca_cert, ca.ca_key)
    except OSError as exc:
        raise CaRotationError(f"cannot read the CA files {ca.ca_cert}, {ca.ca_key}: "
                              f"{exc.strerror or exc}", retryable=True) from None
    except CertificateAuthorityError as exc:
        raise CaRotationError(f"unusable CA in {ca.ca_cert}, {ca.ca_key}: {exc}") from None


def _check_leaf(name: str, cert: CertificateSettings,
                active: x509.Certificate) -> LeafCheck:
    installed = store_for(name, cert).read()
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


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    value = names[0].value if names else "keyward CA"
    return value if isinstance(value, str) else value.decode()


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _resolved(path: Path) -> Path:
    return path.expanduser().resolve()

