"""The ``local`` backend: keyward's own CA files (``ca_cert``/``ca_key``).

In the state directory, beside the rotation's bookkeeping:

- ``next.crt``/``next.key``: the staged successor (made once, reused by every rerun);
- ``archive/<fingerprint>.crt|.key``: every replaced CA's material (0600), never deleted.

Switching writes the successor over the CA files, which is what every ``local-ca``
certificate naming those paths signs with from then on.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from keyward.authorities.base import CaRotationError
from keyward.authorities.state import RotationState
from keyward.config import CertificateSettings, LocalCaIssuerSettings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.pki.ca import CertificateAuthority, CertificateAuthorityError
from keyward.trust.base import fingerprint

_NEXT_CERT, _NEXT_KEY = "next.crt", "next.key"
_ARCHIVE = "archive"


class LocalCaBackend:
    """Implements :class:`keyward.authorities.base.CaBackend` for a CA kept in files."""

    def __init__(self, ca: CertificateAuthoritySettings,
                 certificates: dict[str, CertificateSettings]) -> None:
        self._ca = ca
        self._cert, self._key = ca.local_files
        self._certificates = certificates
        self._state = RotationState(ca.state_directory)

    @property
    def where(self) -> str:
        return f"CA files {self._cert}, {self._key}"

    def active(self) -> x509.Certificate:
        return self._active().certificate

    def staged(self) -> x509.Certificate | None:
        staged = self._staged()
        return staged.certificate if staged is not None else None

    def stage(self, common_name: str) -> x509.Certificate:
        staged = self._staged()
        if staged is not None:
            return staged.certificate
        successor = CertificateAuthority.bootstrap(
            common_name, lifetime=timedelta(days=self._ca.lifetime_days),
            key_type=self._ca.key_type)
        successor.save(self._state.path(_NEXT_CERT), self._state.path(_NEXT_KEY))
        return successor.certificate

    def switch(self) -> x509.Certificate:
        staged = self._staged()
        if staged is None:
            raise CaRotationError(f"{self.where}: no successor is staged")
        current = self._active()
        if fingerprint(current.certificate) != fingerprint(staged.certificate):
            self._archive(current)
        staged.save(self._cert, self._key)
        return staged.certificate

    def settle(self) -> None:
        self._state.path(_NEXT_CERT).unlink(missing_ok=True)
        self._state.path(_NEXT_KEY).unlink(missing_ok=True)

    def leaves(self) -> dict[str, CertificateSettings]:
        """Those whose local-ca issuer names this CA's files."""
        wanted = (_resolved(self._cert), _resolved(self._key))
        return {name: cert for name, cert in sorted(self._certificates.items())
                if isinstance(cert.issuer, LocalCaIssuerSettings)
                and (_resolved(cert.issuer.ca_cert), _resolved(cert.issuer.ca_key)) == wanted}

    def _active(self) -> CertificateAuthority:
        try:
            return CertificateAuthority.load(self._cert, self._key)
        except OSError as exc:
            raise CaRotationError(f"cannot read the CA files {self._cert}, {self._key}: "
                                  f"{exc.strerror or exc}", retryable=True) from None
        except CertificateAuthorityError as exc:
            raise CaRotationError(f"unusable CA in {self._cert}, {self._key}: {exc}") from None

    def _staged(self) -> CertificateAuthority | None:
        cert, key = self._state.path(_NEXT_CERT), self._state.path(_NEXT_KEY)
        try:
            return CertificateAuthority.load(cert, key)
        except FileNotFoundError:
            return None
        except CertificateAuthorityError:
            # A crash between the key's and the certificate's rename: make a new one.
            cert.unlink(missing_ok=True)
            key.unlink(missing_ok=True)
            return None

    def _archive(self, ca: CertificateAuthority) -> None:
        """Keep the replaced CA's certificate and key (0600), named by fingerprint."""
        directory = self._state.path(_ARCHIVE)
        name = fingerprint(ca.certificate)
        if not (directory / f"{name}.key").exists():
            ca.save(directory / f"{name}.crt", directory / f"{name}.key")
        with contextlib.suppress(OSError):
            os.chmod(directory, 0o700)


def _resolved(path: Path) -> Path:
    return path.expanduser().resolve()
