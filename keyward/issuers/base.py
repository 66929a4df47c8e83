"""The one interface every certificate issuer implements."""

from __future__ import annotations

from typing import Protocol

from keyward.contracts import failures
from keyward.errors import KeywardError
from keyward.pki.types import CertificateSpec, IssuedCertificate


class IssuerError(KeywardError):
    """Issuing failed. ``retryable`` (always said by the raiser) tells the activity
    whether to let Temporal retry."""

    failure_type = failures.ISSUER_ERROR

    def __init__(self, message: str, *, retryable: bool,
                 failure_type: str | None = None) -> None:
        super().__init__(message, retryable=retryable, failure_type=failure_type)


class Issuer(Protocol):
    """Issues a certificate (and its key) for a spec. Synchronous: the SDKs behind the
    issuers (hvac, azure, kubernetes) are, so renewal activities run on the thread pool."""

    @property
    def name(self) -> str: ...

    def issue(self, spec: CertificateSpec) -> IssuedCertificate: ...
