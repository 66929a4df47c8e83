"""A CA rotation's bookkeeping, in the CA's state directory, the same for every backend.

- ``owner``: the workflow run doing the rotation (a second one is refused);
- ``switched_at``: when issuance moved to the successor (UTC, ISO 8601);
- ``previous.crt``: the CA the active one replaced, trusted until it may retire.

Why files, for a Vault PKI or Key Vault CA too: neither service has a place for "which run
owns this rotation" or "when did issuance switch" (a PKI issuer carries no free-form
metadata; a Key Vault tag is visible to, and editable by, whoever may read the
certificate), and the retire time must come from the moment keyward itself switched, not
from when the successor was made. One mechanism for all backends keeps the rules that
withdraw trust in one place (``keyward.services.authorities``), each file is replaced in
one rename (never half-written), and the CA's own service stays the truth for what it
holds (the active CA, the successor, the old material). The directory must be shared by
the worker replicas that may run a rotation's steps; a step that finds no record refuses
(it never withdraws trust on a missing file).

Backends keep their own files here as well (``keyward.authorities.local``: the staged
successor and the archive; the others: the successor's deterministic name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward.pki.install import atomic_write

_PREVIOUS = "previous.crt"
_SWITCHED_AT = "switched_at"
_OWNER = "owner"


@dataclass(frozen=True)
class Owner:
    """The workflow run a rotation belongs to."""

    workflow_id: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.workflow_id} (run {self.run_id})"


class RotationState:
    """One CA's rotation bookkeeping (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def read_text(self, name: str) -> str | None:
        """A backend's small record (``None`` when absent)."""
        try:
            return self.path(name).read_text().strip() or None
        except FileNotFoundError:
            return None

    def write_text(self, name: str, text: str) -> None:
        atomic_write(self.path(name), text.encode(), mode=0o644)

    def previous(self) -> x509.Certificate | None:
        try:
            return x509.load_pem_x509_certificate(self.path(_PREVIOUS).read_bytes())
        except FileNotFoundError:
            return None

    def set_previous(self, certificate: x509.Certificate) -> None:
        atomic_write(self.path(_PREVIOUS),
                     certificate.public_bytes(serialization.Encoding.PEM), mode=0o644)

    def forget_previous(self) -> None:
        self.path(_PREVIOUS).unlink(missing_ok=True)

    def switched_at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.path(_SWITCHED_AT).read_text().strip())
        except FileNotFoundError:
            return None

    def set_switched_at(self, moment: datetime) -> None:
        atomic_write(self.path(_SWITCHED_AT), moment.isoformat().encode(), mode=0o644)

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
