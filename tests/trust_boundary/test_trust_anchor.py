"""A certificate can be pinned to a trust anchor of the operator's choosing.

Without a pin, a new certificate is checked against the CA that came back in the same
issuer response: a compromised or misconfigured issuer passes that check with a CA of
its own. The pin (``certificates.<name>.trust_anchor``) is the operator's, not the
issuer's; validation refuses a chain that does not reach it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.certificates import CertificateActivities
from keyward.config import Settings, load_settings
from keyward.contracts.certificates import CertificateRef
from keyward.errors import ConfigError
from keyward.issuers.factory import build_issuer
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import CertificateValidationError, validate_pair
from tests.pki.support import NOW, make_two_level_ca

SPEC = CertificateSpec(name="pinned", common_name="pinned-client", usage="client",
                       lifetime=timedelta(days=1))


@pytest.fixture(scope="module")
def pinned_ca() -> CertificateAuthority:
    return CertificateAuthority.bootstrap("operator's CA")


@pytest.fixture(scope="module")
def other_ca() -> CertificateAuthority:
    """Another CA, with the same name: only the signature tells them apart."""
    return CertificateAuthority.bootstrap("operator's CA")


def check(issued: IssuedCertificate, anchor: bytes | None) -> None:
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=datetime.now(UTC), spec=SPEC, trust_anchor=anchor)


def test_a_pair_from_another_ca_with_its_own_ca_is_refused_when_pinned(
        pinned_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    """A pair from another CA, delivered with that CA as its ca.crt, passes the issuer's own
    check but is refused when the certificate is pinned to the operator's CA."""
    foreign = other_ca.issue(SPEC)
    check(foreign, None)  # what validation accepted before: the issuer vouches for itself
    with pytest.raises(CertificateValidationError, match="pinned trust anchor"):
        check(foreign, pinned_ca.ca_pem)


def test_a_pair_from_the_pinned_ca_is_accepted(pinned_ca: CertificateAuthority) -> None:
    """The pinned CA's own pair validates."""
    check(pinned_ca.issue(SPEC), pinned_ca.ca_pem)


def test_a_foreign_ca_returned_beside_a_good_leaf_is_refused(
        pinned_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    """A leaf from the pinned CA delivered with a *foreign* CA bundle is refused: that bundle
    would be installed as the ca.crt the service checks its peers against."""
    good = pinned_ca.issue(SPEC)
    mixed = dataclasses.replace(good, ca_pem=pinned_ca.ca_pem + other_ca.ca_pem)
    with pytest.raises(CertificateValidationError, match="supplied by the issuer"):
        check(mixed, pinned_ca.ca_pem)


def test_an_unreadable_pin_is_a_problem_not_a_pass(pinned_ca: CertificateAuthority) -> None:
    """A pin that is not PEM refuses the pair (never: silently no pin)."""
    with pytest.raises(CertificateValidationError, match="trust anchor is not readable"):
        check(pinned_ca.issue(SPEC), b"not a certificate")


def settings_for(tmp_path: Path, issuing: CertificateAuthority,
                 pinned: CertificateAuthority) -> Settings:
    issuing.save(tmp_path / "issuer-ca.crt", tmp_path / "issuer-ca.key")
    (tmp_path / "pin.pem").write_bytes(pinned.ca_pem)
    (tmp_path / "keyward.toml").write_text(f"""
[certificates.pinned]
common_name = "pinned-client"
usage = "client"
lifetime_hours = 24
issuer = "local-ca"
ca_cert = "{tmp_path / 'issuer-ca.crt'}"
ca_key = "{tmp_path / 'issuer-ca.key'}"
install = "files"
directory = "{tmp_path / 'installed'}"
trust_anchor = "{tmp_path / 'pin.pem'}"
""")
    return load_settings(tmp_path / "keyward.toml", env={})


def test_renewal_from_an_issuer_outside_the_pin_is_not_installed(
        tmp_path: Path, pinned_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    """IssueAndInstallCertificate refuses (non-retryable CertificateInvalid) and installs
    nothing when the issuer's pair does not reach the pinned anchor."""
    settings = settings_for(tmp_path, other_ca, pinned_ca)
    activities = CertificateActivities(settings, build_issuer)
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(activities.issue_and_install, CertificateRef("pinned"))
    assert caught.value.type == "CertificateInvalid"
    assert caught.value.non_retryable
    assert "pinned trust anchor" in str(caught.value)
    assert read_installed(tmp_path / "installed") is None


def test_renewal_from_the_pinned_ca_is_installed(
        tmp_path: Path, pinned_ca: CertificateAuthority) -> None:
    """With issuer and pin in agreement the renewal installs as before."""
    settings = settings_for(tmp_path, pinned_ca, pinned_ca)
    activities = CertificateActivities(settings, build_issuer)
    ActivityEnvironment().run(activities.issue_and_install, CertificateRef("pinned"))
    assert read_installed(tmp_path / "installed") is not None


def test_an_installed_pair_outside_the_pin_is_reported_for_renewal(
        tmp_path: Path, pinned_ca: CertificateAuthority, other_ca: CertificateAuthority) -> None:
    """InspectCertificate reports a problem for an installed pair that does not reach the
    pin, so the workflow renews it from the configured issuer."""
    settings = settings_for(tmp_path, other_ca, other_ca)
    activities = CertificateActivities(settings, build_issuer)
    ActivityEnvironment().run(activities.issue_and_install, CertificateRef("pinned"))
    # The operator pins their own CA (the pin is read afresh on every check).
    (tmp_path / "pin.pem").write_bytes(pinned_ca.ca_pem)
    inspected = ActivityEnvironment().run(activities.inspect, CertificateRef("pinned"))
    assert inspected.present
    assert inspected.problem is not None
    assert "pinned trust anchor" in inspected.problem


def test_a_missing_trust_anchor_file_is_a_config_error(tmp_path: Path) -> None:
    """A trust_anchor that does not exist is refused at load, naming the setting."""
    (tmp_path / "keyward.toml").write_text(f"""
[certificates.x]
common_name = "x"
issuer = "vault-pki"
vault_pki_role = "r"
install = "files"
directory = "{tmp_path}"
trust_anchor = "{tmp_path / 'missing.pem'}"
""")
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "keyward.toml", env={})
    assert caught.value.setting == "certificates.x.trust_anchor"
    assert caught.value.problem == f"file not found: {tmp_path / 'missing.pem'}"


def test_pinning_the_root_accepts_a_leaf_of_its_intermediate() -> None:
    """A pin on the root accepts a leaf issued by an intermediate under it, whether the
    intermediate travels in the certificate chain or in the issuer's CA bundle (as Vault
    PKI returns it)."""
    root, intermediate = make_two_level_ca()
    issued = intermediate.issue(SPEC, now=NOW)
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=NOW, spec=SPEC, trust_anchor=root.ca_pem)
    leaf, middle = x509.load_pem_x509_certificates(issued.certificate_pem)
    bundle = middle.public_bytes(serialization.Encoding.PEM) + root.ca_pem
    validate_pair(leaf.public_bytes(serialization.Encoding.PEM), issued.private_key_pem,
                  ca_pem=bundle, now=NOW, spec=SPEC, trust_anchor=root.ca_pem)
    with pytest.raises(CertificateValidationError, match="pinned trust anchor"):
        validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                      now=NOW, spec=SPEC,
                      trust_anchor=CertificateAuthority.bootstrap("another root").ca_pem)
