"""A CA bundle in a PEM file (a server's ``clientCaFiles``, the worker's
``temporal.tls_server_ca``, the codec server's ``tls_client_ca``), replaced in one rename."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward.errors import KeywardError
from keyward.pki.install import atomic_write
from keyward.trust.base import edited, fingerprint


class FileTrustPoint:
    def __init__(self, path: Path) -> None:
        self._path = path

    @property
    def where(self) -> str:
        return str(self._path)

    def read(self) -> list[x509.Certificate]:
        try:
            data = self._path.read_bytes()
        except FileNotFoundError:
            return []
        if not data.strip():
            return []
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            # Not ours to repair: an operator's file keyward cannot read is left alone.
            raise KeywardError(f"trust bundle {self._path} is not PEM certificates; "
                               "refusing to rewrite it") from None

    def edit(self, *, add: Sequence[x509.Certificate],
             remove: Sequence[x509.Certificate]) -> bool:
        held = self.read()
        wanted = edited(held, add=add, remove=remove)
        if [fingerprint(c) for c in wanted] == [fingerprint(c) for c in held]:
            return False
        atomic_write(self._path, b"".join(
            cert.public_bytes(serialization.Encoding.PEM) for cert in wanted), mode=0o644)
        return True
