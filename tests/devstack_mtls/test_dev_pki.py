"""The local stack's PKI: made once, reused, and repaired at start when a pair cannot serve."""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keyward.config import FilesInstall, LocalCaIssuerSettings, Settings
from keyward.pki.install import install_pair, read_installed
from keyward.pki.validate import summarize, validate_pair
from keyward_devstack.mtls import (
    DEV_CERTIFICATE_AUTHORITY,
    DEV_CLIENT_CERTIFICATE,
    DEV_GATEWAY_CERTIFICATE,
    DevPki,
    ensure_dev_pki,
    settings_behind_gateway,
)

LIFETIME = timedelta(minutes=10)
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def serial(directory: Path) -> str:
    pair = read_installed(directory)
    assert pair is not None
    return summarize(pair.certificate_pem).serial


def test_first_start_creates_a_ca_and_pairs_that_chain_to_it(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    assert done == [f"created a local CA in {pki.directory}"]
    ca_pem = pki.ca_cert.read_bytes()
    for directory, usage in ((pki.server, "server"), (pki.client, "client")):
        pair = read_installed(directory)
        assert pair is not None
        summary = validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=ca_pem,
                                now=T0 + timedelta(minutes=1))
        assert summary.usages == (usage,)
    client = summarize(read_installed(pki.client).certificate_pem)  # type: ignore[union-attr]
    assert client.not_after == T0 + LIFETIME
    assert client.subject == f"CN={DEV_CLIENT_CERTIFICATE}"
    server = summarize(read_installed(pki.server).certificate_pem)  # type: ignore[union-attr]
    assert set(server.dns_names) == {"localhost"}
    assert pki.ca_key.stat().st_mode & 0o077 == 0


def test_restart_within_the_lifetime_reuses_everything(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    before = (pki.ca_cert.read_bytes(), serial(pki.server), serial(pki.client))
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME,
                          now=T0 + timedelta(minutes=2))
    assert done == []
    assert (pki.ca_cert.read_bytes(), serial(pki.server), serial(pki.client)) == before


@pytest.mark.parametrize("later", [timedelta(minutes=7), timedelta(days=3)])
def test_client_pair_expired_or_due_is_reissued_from_the_same_ca(tmp_path: Path,
                                                                 later: timedelta) -> None:
    """A worker cannot run its renewal workflow with a certificate the gateway refuses."""
    pki = DevPki(tmp_path / "pki")
    year = timedelta(days=365)  # a gateway pair that outlives the wait
    ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, server_lifetime=year,
                   now=T0)
    ca, server, client = pki.ca_cert.read_bytes(), serial(pki.server), serial(pki.client)
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME,
                          server_lifetime=year, now=T0 + later)
    assert len(done) == 1
    assert "fresh worker client certificate" in done[0]
    assert pki.ca_cert.read_bytes() == ca
    assert serial(pki.server) == server
    assert serial(pki.client) != client
    pair = read_installed(pki.client)
    assert pair is not None
    validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=ca,
                  now=T0 + later + timedelta(seconds=1))


def test_client_pair_from_another_ca_is_replaced(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    other = DevPki(tmp_path / "other")
    ensure_dev_pki(other, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    foreign = read_installed(other.client)  # someone installed another stack's pair
    assert foreign is not None
    install_pair(pki.client, foreign)
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    assert any("fresh worker client certificate" in line for line in done)
    pair = read_installed(pki.client)
    assert pair is not None
    validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=pki.ca_cert.read_bytes(),
                  now=T0)


def test_settings_point_the_worker_at_the_client_pair_and_add_its_certificate(
        tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    settings = settings_behind_gateway(Settings(), pki, "127.0.0.1:7443", LIFETIME)
    assert settings.temporal.tls_cert == pki.client / "tls.crt"
    assert settings.temporal.tls_key == pki.client / "tls.key"
    # Every process trusts the bundle, not ca.crt (which a CA rotation replaces).
    assert settings.temporal.tls_server_ca == pki.bundle
    assert settings.temporal.tls_client_ca == pki.bundle
    assert settings.temporal.tls_server_name == "localhost"
    cert = settings.certificates[DEV_CLIENT_CERTIFICATE]
    assert cert.issuer == LocalCaIssuerSettings(ca_cert=pki.ca_cert, ca_key=pki.ca_key)
    assert cert.install == FilesInstall(directory=pki.client)
    assert cert.usage == "client"
    assert cert.lifetime_hours * 3600 == LIFETIME.total_seconds()
    assert cert.verify_endpoint == "127.0.0.1:7443"


def test_the_server_pair_serves_and_requires_the_client_pair(tmp_path: Path) -> None:
    """The pairs work together in a real handshake (what the gateway and worker do)."""
    pki = DevPki(tmp_path / "pki")
    ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.verify_mode = ssl.CERT_REQUIRED
    server.load_cert_chain(pki.server / "tls.crt", pki.server / "tls.key")
    server.load_verify_locations(pki.ca_cert)
    client = ssl.create_default_context(cafile=pki.ca_cert)
    client.load_cert_chain(pki.client / "tls.crt", pki.client / "tls.key")
    client_in, server_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    server_in, client_out = ssl.MemoryBIO(), ssl.MemoryBIO()
    c = client.wrap_bio(client_in, client_out, server_hostname="localhost")
    s = server.wrap_bio(server_in, server_out, server_side=True)
    for _ in range(10):
        for side in (c, s):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
        server_in.write(client_out.read())
        client_in.write(server_out.read())
    peer = s.getpeercert()
    assert peer is not None
    assert peer["subject"] == ((("commonName", DEV_CLIENT_CERTIFICATE),),)



def test_the_bundle_is_made_from_the_ca_and_kept_holding_it(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    assert pki.bundle.read_bytes() == pki.ca_cert.read_bytes()
    pki.bundle.unlink()  # a state dir from before the bundle existed
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    assert done == [f"added the local CA to the trust bundle {pki.bundle}"]
    assert pki.bundle.read_bytes() == pki.ca_cert.read_bytes()
    # A rotation's old + new bundle is left as it is (the active CA is in it).
    other = DevPki(tmp_path / "other")
    ensure_dev_pki(other, host="127.0.0.1", client_lifetime=LIFETIME, now=T0)
    overlap = pki.ca_cert.read_bytes() + other.ca_cert.read_bytes()
    pki.bundle.write_bytes(overlap)
    assert ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, now=T0) == []
    assert pki.bundle.read_bytes() == overlap


def test_a_short_lived_gateway_pair_is_reissued_in_its_last_third(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    hour = timedelta(hours=1)
    ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=LIFETIME, server_lifetime=hour,
                   now=T0)
    server = summarize(read_installed(pki.server).certificate_pem)  # type: ignore[union-attr]
    assert server.not_after == T0 + hour
    later = T0 + timedelta(minutes=30)  # two thirds left: kept (the client is due, though)
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=hour, server_lifetime=hour,
                          now=later)
    assert not any("gateway" in line for line in done)
    done = ensure_dev_pki(pki, host="127.0.0.1", client_lifetime=hour, server_lifetime=hour,
                          now=T0 + timedelta(minutes=45))
    assert "re-issued the gateway's server certificate" in done


def test_settings_add_the_gateway_certificate_and_the_rotatable_ca(tmp_path: Path) -> None:
    pki = DevPki(tmp_path / "pki")
    base = Settings()
    settings = settings_behind_gateway(base, pki, "127.0.0.1:7443", LIFETIME)
    gateway = settings.certificates[DEV_GATEWAY_CERTIFICATE]
    assert gateway.usage == "server"
    assert gateway.issuer == LocalCaIssuerSettings(ca_cert=pki.ca_cert, ca_key=pki.ca_key)
    assert gateway.install == FilesInstall(directory=pki.server)
    assert set(gateway.dns_names) == {"localhost"}
    assert gateway.ip_addresses == (base.devstack.host,)
    assert gateway.lifetime_hours * 60 == pytest.approx(base.devstack.gateway_certificate_minutes)
    ca = settings.certificate_authorities[DEV_CERTIFICATE_AUTHORITY]
    assert (ca.ca_cert, ca.ca_key) == (pki.ca_cert, pki.ca_key)
    assert ca.trust_bundles == (pki.bundle,)
    assert ca.soak_seconds == base.devstack.ca_rotation_soak_seconds
    assert ca.grace_hours * 3600 == pytest.approx(base.devstack.ca_rotation_grace_seconds)
