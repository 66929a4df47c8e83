"""The ``local-ca`` issuer: certificates signed by a CA whose key keyward holds itself.

For development stacks and for deployments that run their own small CA
(``starter.py pki bootstrap``). Everything the CA refuses is permanent — a bad
spec or an expired CA does not get better on retry — except an unreadable CA
file, which may be a volume that is not mounted yet.
"""

from __future__ import annotations

from pathlib import Path

from keyward.issuers.base import IssuerError
from keyward.pki.ca import CertificateAuthority, CertificateAuthorityError
from keyward.pki.keys import PrivateKeyError
from keyward.pki.types import CertificateSpec, IssuedCertificate


class LocalCaIssuer:
    """Implements :class:`keyward.issuers.base.Issuer` with a :class:`CertificateAuthority`."""

    def __init__(self, ca: CertificateAuthority) -> None:
        self._ca = ca

    @property
    def name(self) -> str:
        return "local-ca"

    @property
    def ca(self) -> CertificateAuthority:
        """The CA, for flows that sign a CSR instead (Azure Key Vault's external CA)."""
        return self._ca

    @classmethod
    def from_files(cls, cert_path: Path, key_path: Path) -> LocalCaIssuer:
        """Load the CA from ``ca.crt``/``ca.key``-style files (PEM; the key unencrypted)."""
        try:
            return cls(CertificateAuthority.load(cert_path, key_path))
        except OSError as error:
            raise IssuerError(f"cannot read CA files {cert_path}, {key_path}: "
                              f"{error.strerror or error}", retryable=True) from error
        except (CertificateAuthorityError, PrivateKeyError) as error:
            raise IssuerError(f"unusable CA in {cert_path}, {key_path}: {error}",
                              retryable=False) from error

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        """A fresh key and certificate for ``spec``; non-retryable IssuerError if refused."""
        try:
            return self._ca.issue(spec)
        except (CertificateAuthorityError, PrivateKeyError) as error:
            raise IssuerError(f"local CA refused {spec.name!r}: {error}",
                              retryable=False) from error
