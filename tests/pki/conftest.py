"""CAs are built once per module: key generation dominates these tests' runtime."""

from __future__ import annotations

from datetime import timedelta

import pytest

from keyward.pki.ca import CertificateAuthority
from tests.pki.support import NOW


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.bootstrap("keyward test CA", now=NOW - timedelta(days=1))


@pytest.fixture(scope="module")
def other_ca() -> CertificateAuthority:
    """A second CA with the *same* name: only the signature tells the two apart."""
    return CertificateAuthority.bootstrap("keyward test CA", now=NOW - timedelta(days=1))
