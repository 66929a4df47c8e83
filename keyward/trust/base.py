"""The one interface every trust point implements, and the edit a rotation makes to one."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization


class TrustPoint(Protocol):
    """One CA bundle some process reads. Synchronous, as the rotation's steps are."""

    @property
    def where(self) -> str:
        """For results and errors: ``/etc/temporal/client-ca.pem``."""
        ...

    def read(self) -> list[x509.Certificate]:
        """The certificates the bundle holds now ([] when it does not exist yet)."""
        ...

    def edit(self, *, add: Sequence[x509.Certificate],
             remove: Sequence[x509.Certificate]) -> bool:
        """Add the CAs it lacks of ``add`` and take out those of ``remove``, leaving every
        other certificate; True when it changed. Whole or not at all (never half a
        bundle); a trust point with its own concurrency (a Cloud namespace) re-reads and
        re-applies on a conflict."""
        ...


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of the DER, lower-case hex: how CAs are named in results and archives."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def edited(held: Sequence[x509.Certificate], *, add: Sequence[x509.Certificate] = (),
           remove: Sequence[x509.Certificate] = ()) -> list[x509.Certificate]:
    """``held`` in its order without ``remove``, then each of ``add`` it lacked."""
    gone = {fingerprint(cert) for cert in remove}
    kept = [cert for cert in held if fingerprint(cert) not in gone]
    present = {fingerprint(cert) for cert in kept}
    for cert in add:
        if fingerprint(cert) not in present and fingerprint(cert) not in gone:
            kept.append(cert)
            present.add(fingerprint(cert))
    return kept
