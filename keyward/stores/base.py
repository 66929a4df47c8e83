"""The one interface every certificate store implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from keyward.pki.types import IssuedCertificate


class CertificateStore(Protocol):
    """Holds one certificate's installed pair. Synchronous, as the SDKs behind the stores
    are; the certificate activities run on the worker's thread pool.

    Both methods raise a :class:`keyward.errors.KeywardError` whose ``retryable`` says
    whether trying again may help, with failure type ``InspectFailed`` (reading) or
    ``InstallFailed`` (installing) and a message that names the certificate and the place.
    """

    @property
    def where(self) -> str:
        """The place, for logs and results (``/etc/keyward/tls``, ``secret ns/name``)."""
        ...

    def read(self) -> IssuedCertificate | None:
        """The pair installed now, or None when there is none (so the caller issues one)."""
        ...

    def install(self, issued: IssuedCertificate) -> str:
        """Install ``issued`` whole (never half a pair); return where it went, with the
        version the store gave it where it has one."""
        ...

    def key_files(self) -> tuple[Path, Path] | None:
        """The installed ``(certificate, key)`` files, where the store is files.

        A client-certificate handshake check uses them in place, so no copy of the key is
        made; stores that are not files answer None.
        """
        ...
