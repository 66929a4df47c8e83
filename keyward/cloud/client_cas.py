"""A namespace's accepted client CAs as certificates: identity by DER, and what may be added.

Two bundles hold the same CA when they hold the same certificate, whatever the text around
it (line endings, comments, a base64 line length): so a CA is identified by the SHA-256 of
its DER encoding, its fingerprint, shown as ``openssl x509 -fingerprint -sha256`` prints it
(``AB:CD:…``) and accepted with or without colons, in either case.

What may be **added** is held to more than the client's own check (``encode_ca_bundle``:
PEM certificates, no private key): every certificate must be a CA (basicConstraints
``CA=true``) and unexpired, because a leaf in ``accepted_client_ca`` is at best useless and
an expired CA admits nobody. A PEM file given to **remove** by needs only be certificates:
whatever sits in the bundle (a stray leaf included) can be taken out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from keyward.contracts import failures
from keyward.contracts.cloud import AcceptedClientCA
from keyward.errors import KeywardError

_HEX_FINGERPRINT: Final = re.compile(r"[0-9a-f]{64}")
_PEM_CERTIFICATE: Final = "-----BEGIN CERTIFICATE-----"


class InvalidClientCA(KeywardError):
    """A CA given to add, or a PEM file given to remove by, is not what it must be."""

    failure_type = failures.INVALID_CLIENT_CA


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER encoding, ``AB:CD:…`` (as ``openssl x509 -fingerprint -sha256``)."""
    return ":".join(f"{byte:02X}" for byte in cert.fingerprint(hashes.SHA256()))


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint typed by a person (colons or not, any case, spaces around) in
    the ``AB:CD:…`` form; :class:`InvalidClientCA` when it is not 32 bytes of hex."""
    compact = re.sub(r"[\s:]", "", text).lower()
    if not _HEX_FINGERPRINT.fullmatch(compact):
        raise InvalidClientCA(
            f"{text.strip()!r} is not a SHA-256 fingerprint: expected 64 hex digits, with or "
            "without colons (as 'keyward cloud ca list' or "
            "'openssl x509 -noout -fingerprint -sha256' print it)")
    return ":".join(compact[i:i + 2] for i in range(0, 64, 2)).upper()


def is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def load_certificates(pem: str, *, what: str) -> list[x509.Certificate]:
    """The certificates in ``pem``, in order: PEM certificates only. A private key (of any
    kind), any other PEM block, or nothing at all is :class:`InvalidClientCA` naming
    ``what`` ("the CA file x.pem"); the key's text is never repeated."""
    if "PRIVATE KEY" in pem:
        raise InvalidClientCA(f"{what} holds a private key; give the CA certificate only "
                              "(nothing was sent)")
    blocks = re.findall(r"-----BEGIN ([A-Z0-9 ]+)-----", pem)
    others = sorted({block for block in blocks if block != "CERTIFICATE"})
    if others:
        raise InvalidClientCA(f"{what} holds {', '.join(others)} blocks; give PEM "
                              "certificates only")
    if _PEM_CERTIFICATE not in pem:
        raise InvalidClientCA(f"{what} holds no PEM certificate")
    try:
        return x509.load_pem_x509_certificates(pem.encode("ascii", errors="replace"))
    except ValueError:
        raise InvalidClientCA(f"{what} is not readable PEM certificates") from None


def load_cas_to_add(pem: str, *, what: str,
                    now: dt.datetime | None = None) -> list[x509.Certificate]:
    """The CA certificates in ``pem`` (see :func:`load_certificates`), each one a CA
    (basicConstraints CA=true) and not expired; duplicates within the file collapsed."""
    now = now or dt.datetime.now(dt.UTC)
    certs = _unique(load_certificates(pem, what=what))
    for cert in certs:
        name = cert.subject.rfc4514_string() or "(empty subject)"
        if not is_ca(cert):
            raise InvalidClientCA(
                f"{what}: {name} is not a CA certificate (no basicConstraints CA=true): a "
                "namespace accepts client certificates issued by a CA, so give the CA that "
                "issues them, not a leaf certificate")
        if cert.not_valid_after_utc <= now:
            raise InvalidClientCA(
                f"{what}: the CA {name} expired on "
                f"{cert.not_valid_after_utc.isoformat(timespec='seconds')}")
    return certs


def parse_bundle(pem: str) -> list[x509.Certificate]:
    """The certificates of a namespace's bundle as read from Cloud ("" → none)."""
    if not pem.strip():
        return []
    return load_certificates(pem, what="the namespace's accepted_client_ca bundle")


def bundle_pem(certs: Iterable[x509.Certificate]) -> str:
    """One PEM bundle of ``certs``, in order."""
    return "".join(cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
                   for cert in certs)


def describe(cert: x509.Certificate) -> AcceptedClientCA:
    return AcceptedClientCA(
        fingerprint_sha256=fingerprint(cert), subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(), serial=f"{cert.serial_number:x}",
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        is_ca=is_ca(cert), pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def _unique(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: set[str] = set()
    kept: list[x509.Certificate] = []
    for cert in certs:
        if (print_ := fingerprint(cert)) not in seen:
            seen.add(print_)
            kept.append(cert)
    return kept
