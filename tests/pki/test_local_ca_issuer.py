"""LocalCaIssuer: the Issuer protocol over the local CA, with retryability decided right."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyward.config import CertificateSettings, Settings
from keyward.issuers.base import Issuer, IssuerError
from keyward.issuers.factory import build_issuer
from keyward.issuers.local_ca import LocalCaIssuer
from keyward.pki.ca import CertificateAuthority
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from keyward.services.certificates import Certificates
from keyward.stores.factory import store_for

SPEC = CertificateSpec(name="worker", common_name="keyward-worker")


@pytest.fixture
def ca_files(tmp_path: Path) -> tuple[Path, Path]:
    ca = CertificateAuthority.bootstrap("issuer test CA")
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    return tmp_path / "ca.crt", tmp_path / "ca.key"


def test_issues_a_pair_that_validates(ca_files: tuple[Path, Path]) -> None:
    """from_files + issue gives a pair valid now against the CA file, with ca_pem set."""
    issuer: Issuer = LocalCaIssuer.from_files(*ca_files)
    assert issuer.name == "local-ca"
    issued = issuer.issue(SPEC)
    assert issued.ca_pem == ca_files[0].read_bytes()
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=datetime.now(UTC), spec=SPEC)


def test_missing_ca_files_are_retryable(tmp_path: Path) -> None:
    """A CA file that is not there (yet) may appear: retryable."""
    with pytest.raises(IssuerError, match="cannot read CA files") as caught:
        LocalCaIssuer.from_files(tmp_path / "ca.crt", tmp_path / "ca.key")
    assert caught.value.retryable


def test_a_mismatched_ca_key_is_not_retryable(ca_files: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    """Content that is wrong stays wrong: not retryable."""
    other = CertificateAuthority.bootstrap("other")
    other.save(tmp_path / "other.crt", tmp_path / "other.key")
    with pytest.raises(IssuerError, match="does not belong") as caught:
        LocalCaIssuer.from_files(ca_files[0], tmp_path / "other.key")
    assert not caught.value.retryable


def test_refused_specs_are_not_retryable(ca_files: tuple[Path, Path]) -> None:
    """A spec the CA refuses becomes a non-retryable IssuerError naming the spec."""
    issuer = LocalCaIssuer.from_files(*ca_files)
    bad = CertificateSpec(name="frontend", common_name="Temporal frontend", usage="server")
    with pytest.raises(IssuerError, match="local CA refused 'frontend'") as caught:
        issuer.issue(bad)
    assert not caught.value.retryable


def test_an_expired_ca_is_not_retryable() -> None:
    """An expired CA will not get younger."""
    expired = CertificateAuthority.bootstrap(
        "old", lifetime=timedelta(days=1), now=datetime.now(UTC) - timedelta(days=2))
    with pytest.raises(IssuerError, match="not valid at") as caught:
        LocalCaIssuer(expired).issue(SPEC)
    assert not caught.value.retryable


def test_the_settings_subject_is_issued_and_installed(ca_files: tuple[Path, Path],
                                                      tmp_path: Path) -> None:
    """organization, organizational_unit, country, state and locality in a certificate's
    settings reach the installed certificate's subject, and the pair inspects as healthy."""
    cert = CertificateSettings(common_name="keyward-worker", organization=["Acme, Inc.", "Labs"],
                               organizational_unit="Ops", country="de", state="Berlin",
                               locality="Berlin-Mitte", ca_cert=ca_files[0],
                               ca_key=ca_files[1], directory=tmp_path / "certs")
    certificates = Certificates(dataclasses.replace(Settings(), certificates={"worker": cert}),
                                build_issuer, store_for)

    renewed = certificates.issue_and_install("worker")

    assert renewed.subject == ("CN=keyward-worker,OU=Ops,O=Labs,O=Acme\\, Inc.,"
                               "L=Berlin-Mitte,ST=Berlin,C=DE")
    seen = certificates.inspect("worker")
    assert (seen.present, seen.problem, seen.serial) == (True, None, renewed.serial)
