"""A CA rotation whose trust points include a Temporal Cloud namespace: the successor is
added to the namespace's accepted client CAs through the Cloud Ops API (the emulator, the
real CloudOperationsClient), the switch is refused until Cloud holds it, and only the
retired CA leaves at the end — a CA the rotation did not add stays."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from keyward.config import CertificateSettings, Settings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.errors import ConfigError, KeywardError
from keyward.issuers.factory import build_issuer
from keyward.pki.ca import CertificateAuthority
from keyward.services.authorities import CaRotations, Owner
from keyward.services.certificates import Certificates
from keyward.stores.factory import store_for
from keyward.trust.base import fingerprint
from tests.emulators.cloud_ops import (
    DEFAULT_API_KEY,
    ORDERS,
    CloudOpsEmulator,
    RunningCloudOps,
    seed_sample_account,
    serve_in_thread,
)


@pytest.fixture
def old_ca(tmp_path: Path) -> CertificateAuthority:
    ca = CertificateAuthority.bootstrap("cloud rotation CA", lifetime=timedelta(days=30))
    ca.save(tmp_path / "ca" / "ca.crt", tmp_path / "ca" / "ca.key")
    return ca


@pytest.fixture
def other_team() -> CertificateAuthority:
    return CertificateAuthority.bootstrap("another team's CA", lifetime=timedelta(days=30))


@pytest.fixture
def cloud(old_ca: CertificateAuthority,
          other_team: CertificateAuthority) -> Iterator[RunningCloudOps]:
    emulator = CloudOpsEmulator(operation_delay=0.05, check_duration=0.01)
    seed_sample_account(emulator, ca_pem=old_ca.ca_pem + other_team.ca_pem)
    with serve_in_thread(emulator) as running:
        yield running


def settings_for(tmp_path: Path, cloud: RunningCloudOps) -> Settings:
    key_file = tmp_path / "cloud-api-key"
    key_file.write_text(DEFAULT_API_KEY)
    ca_cert, ca_key = tmp_path / "ca" / "ca.crt", tmp_path / "ca" / "ca.key"
    return dataclasses.replace(
        Settings(), cloud=cloud.settings(key_file),
        certificates={"worker": CertificateSettings(
            common_name="worker", ca_cert=ca_cert, ca_key=ca_key,
            directory=tmp_path / "worker", lifetime_hours=1.0)},
        certificate_authorities={"local": CertificateAuthoritySettings(
            ca_cert=ca_cert, ca_key=ca_key, common_name="cloud rotation CA 2",
            trust_cloud_namespaces=(ORDERS,), soak_seconds=1, grace_hours=1)})


def accepted(cloud: RunningCloudOps) -> set[str]:
    raw = cloud.emulator.namespace(ORDERS).spec.mtls_auth.accepted_client_ca
    if b"-----BEGIN" not in raw:
        import base64  # noqa: PLC0415

        raw = base64.b64decode(raw)
    return {fingerprint(cert) for cert in x509.load_pem_x509_certificates(raw)}


def test_a_rotation_edits_the_namespace_and_keeps_what_it_did_not_add(
        tmp_path: Path, cloud: RunningCloudOps, old_ca: CertificateAuthority,
        other_team: CertificateAuthority) -> None:
    settings = settings_for(tmp_path, cloud)
    rotations = CaRotations(settings)
    certificates = Certificates(settings, build_issuer, store_for)
    certificates.issue_and_install("worker")
    old, theirs = fingerprint(old_ca.certificate), fingerprint(other_team.certificate)

    new = rotations.stage("local", Owner("test", "run")).fingerprint
    published = rotations.publish("local", "overlap")
    assert published.changed == 1
    assert published.trust_points == (f"Temporal Cloud namespace {ORDERS}",)
    assert accepted(cloud) == {old, theirs, new}
    assert rotations.publish("local", "overlap").changed == 0  # a rerun sends no update

    rotations.activate("local")
    certificates.issue_and_install("worker")  # the leaf, now from the new CA
    with pytest.raises(KeywardError, match="not before"):
        rotations.publish("local", "final")
    assert accepted(cloud) == {old, theirs, new}
    rotations.publish("local", "final", now=datetime.now(UTC) + timedelta(hours=3))
    assert accepted(cloud) == {theirs, new}


def test_issuance_does_not_switch_while_cloud_lacks_the_successor(
        tmp_path: Path, cloud: RunningCloudOps) -> None:
    """Another writer took the successor out of the namespace after it was published."""
    settings = settings_for(tmp_path, cloud)
    rotations = CaRotations(settings)
    staged = rotations.stage("local", Owner("test", "run"))
    rotations.publish("local", "overlap")
    old_bundle = cloud.emulator.namespace(ORDERS).spec.mtls_auth.accepted_client_ca

    def drop_successor(spec: object) -> None:
        pems = x509.load_pem_x509_certificates(old_bundle)
        from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

        spec.mtls_auth.accepted_client_ca = b"".join(  # type: ignore[attr-defined]
            c.public_bytes(serialization.Encoding.PEM) for c in pems
            if fingerprint(c) != staged.fingerprint)

    cloud.emulator.modify_namespace(ORDERS, drop_successor)
    with pytest.raises(KeywardError, match=f"not yet in Temporal Cloud namespace {ORDERS}"):
        rotations.activate("local")
    before = x509.load_pem_x509_certificate((tmp_path / "ca" / "ca.crt").read_bytes())
    assert fingerprint(before) != staged.fingerprint  # issuance did not move


def test_a_namespace_name_outside_clouds_rule_is_a_setting_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="trust_cloud_namespaces"):
        CertificateAuthoritySettings(ca_cert=tmp_path / "c", ca_key=tmp_path / "k",
                                     trust_cloud_namespaces=("../../namespaces/x",))
