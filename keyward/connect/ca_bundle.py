"""Checking a CA bundle (the certificates a process trusts its peers with) before using it.

A bundle changes during a CA rotation: the old CA, then old + new, then the new one
alone. Whoever writes it may not write it atomically, and a bundle read halfway is
worse than a broken one: ``cryptography`` (and OpenSSL) silently drop a final block
that has no END line, so "old CA + half of the new one" reads as a valid bundle with
the old CA alone. :func:`check_ca_bundle` therefore insists that every ``BEGIN``
line has its ``END`` and that every block is a certificate, before it looks at the
certificates themselves. Text outside the blocks (the ``# Subject:`` comments of
distribution bundles) is allowed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature

from keyward.errors import KeywardError
from keyward.pki.ca import is_ca, utc

_BOUNDARY = re.compile(rb"^-----(BEGIN|END) ([A-Z0-9 ]+)-----\s*$", re.MULTILINE)


class CaBundleError(KeywardError):
    """The bundle must not be used; ``problems`` says every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("CA bundle refused: " + "; ".join(self.problems))


@dataclass(frozen=True)
class CaBundle:
    """A checked bundle: its bytes, and what a log line says about it."""

    pem: bytes
    #: Subject of each certificate, in file order.
    subjects: tuple[str, ...]
    #: The latest expiry among the certificates (the bundle is useless after it).
    not_after: datetime


def check_ca_bundle(pem: bytes, *, now: datetime) -> CaBundle:
    """``pem`` as a bundle of trust anchors, or :class:`CaBundleError` with every problem.

    Every block must be complete and a certificate; every certificate a CA
    (BasicConstraints CA:true, keyCertSign if KeyUsage is present) or self-signed (a
    pinned certificate, which OpenSSL, rustls and Go accept as its own anchor); and at
    least one of them valid at ``now``, or nothing could be verified with it.
    """
    problems = _framing_problems(pem)
    if problems:
        raise CaBundleError(problems)
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        raise CaBundleError(["not readable as PEM certificates"]) from None
    moment = utc(now)
    problems = [f"{certificate.subject.rfc4514_string()} is not a CA certificate (needs "
                "BasicConstraints CA:true, and keyCertSign if KeyUsage is present)"
                for certificate in certificates
                if not is_ca(certificate) and not _self_signed(certificate)]
    if not any(c.not_valid_before_utc <= moment <= c.not_valid_after_utc for c in certificates):
        problems.append(f"no certificate in the bundle is valid at {moment.isoformat()}")
    if problems:
        raise CaBundleError(problems)
    return CaBundle(pem=pem, subjects=tuple(c.subject.rfc4514_string() for c in certificates),
                    not_after=max(c.not_valid_after_utc for c in certificates))


def _framing_problems(pem: bytes) -> list[str]:
    """Unpaired or non-certificate blocks: a file written halfway, or the wrong file."""
    boundaries = [(match[1], match[2].decode()) for match in _BOUNDARY.finditer(pem)]
    if not boundaries:
        return ["no PEM certificate in the file (empty, or still being written)"]
    problems: list[str] = []
    open_label: str | None = None
    for kind, label in boundaries:
        if kind == b"BEGIN":
            if open_label is not None:
                problems.append(f"a {open_label} block has no END line")
            if label != "CERTIFICATE":
                problems.append(f"a {label} block is not a certificate")
            open_label = label
        else:
            if open_label != label:
                problems.append(f"END {label} without its BEGIN line")
            open_label = None
    if open_label is not None:
        problems.append(f"the last {open_label} block has no END line (file cut short, or "
                        "still being written)")
    return problems


def _self_signed(certificate: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(certificate)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
