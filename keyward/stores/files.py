"""Certificates installed as files (``tls.crt``, ``tls.key``, ``ca.crt``) in a directory,
with the atomic Kubernetes-style layout of :mod:`keyward.pki.install`."""

from __future__ import annotations

from pathlib import Path

from keyward.contracts import failures
from keyward.pki.install import InstallError, install_pair, read_installed
from keyward.pki.types import IssuedCertificate


class FilesStore:
    """One certificate's directory."""

    def __init__(self, name: str, directory: Path) -> None:
        self._name = name
        self._directory = directory

    @property
    def where(self) -> str:
        return str(self._directory)

    def read(self) -> IssuedCertificate | None:
        return read_installed(self._directory)

    def install(self, issued: IssuedCertificate) -> str:
        try:
            install_pair(self._directory, issued)
        except InstallError as exc:
            # A directory in the way or bad names: an operator fixes it, a retry does not.
            raise InstallError(f"installing {self._name!r} into {self._directory} failed: "
                               f"{exc}", failure_type=failures.INSTALL_FAILED) from exc
        return str(self._directory)

    def key_files(self) -> tuple[Path, Path]:
        return self._directory / "tls.crt", self._directory / "tls.key"
