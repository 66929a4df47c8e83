"""The gateway lets in only clients with a valid certificate from the local CA."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.client import Client

from keyward.pki.types import IssuedCertificate
from keyward_devstack.mtls_gateway import MtlsGateway
from tests.gateway.conftest import GatewayPki
from tests.support import assert_eventually

CONNECT_TIMEOUT = 15.0


async def _assert_connect_refused(gateway: MtlsGateway, pki: GatewayPki,
                                  client: IssuedCertificate | None) -> None:
    with pytest.raises(RuntimeError):
        await asyncio.wait_for(Client.connect(gateway.address, tls=pki.tls(client)),
                               timeout=CONNECT_TIMEOUT)

    async def rejected() -> None:
        assert gateway.stats.rejected >= 1
    await assert_eventually(rejected)
    assert gateway.stats.accepted == 0


async def test_client_without_certificate_is_refused(
        gateway: MtlsGateway, gateway_pki: GatewayPki) -> None:
    """A TLS client that presents no certificate cannot connect."""
    await _assert_connect_refused(gateway, gateway_pki, None)


async def test_certificate_from_another_ca_is_refused(
        gateway: MtlsGateway, gateway_pki: GatewayPki) -> None:
    """A well-formed client certificate signed by a CA other than the local one is refused."""
    await _assert_connect_refused(gateway, gateway_pki, gateway_pki.foreign_client)


async def test_expired_certificate_is_refused(
        gateway: MtlsGateway, gateway_pki: GatewayPki) -> None:
    """A client certificate from the right CA that has expired is refused."""
    await _assert_connect_refused(gateway, gateway_pki, gateway_pki.expired_client)


def _raw_handshake(port: int, pki: GatewayPki, client: IssuedCertificate,
                   directory: Path) -> bytes:
    """Handshake with Python's ssl and read once: under TLS 1.3 a client learns of its
    rejection only on the first read, after its side of the handshake has finished."""
    cert, key = directory / "client.crt", directory / "client.key"
    cert.write_bytes(client.certificate_pem)
    key.write_bytes(client.private_key_pem)
    context = ssl.create_default_context(cadata=pki.ca.ca_pem.decode())
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        try:
            return tls.recv(1)
        except (ssl.SSLError, ConnectionError):
            return b""


async def test_expired_certificate_is_rejected_by_verification_with_its_reason(
        gateway: MtlsGateway, gateway_pki: GatewayPki, tmp_path: Path) -> None:
    """The rejection is OpenSSL's chain verification saying "expired", and it is logged.

    The client sees its connection end (asyncio aborts a failed server handshake
    without flushing OpenSSL's alert), never a byte from Temporal.
    """
    with capture_logs() as logs:
        received = await asyncio.to_thread(_raw_handshake, gateway.port, gateway_pki,
                                           gateway_pki.expired_client, tmp_path)
        assert received == b""

        async def logged() -> None:
            assert any(entry["event"] == "client handshake rejected" for entry in logs)
        await assert_eventually(logged)
    [entry] = [entry for entry in logs if entry["event"] == "client handshake rejected"]
    assert "expired" in entry["reason"]
    assert gateway.stats.rejected == 1


async def test_accepted_handshake_logs_subject_and_serial_but_no_key(
        gateway: MtlsGateway, gateway_pki: GatewayPki) -> None:
    """An accepted client is logged by subject, serial and h2 ALPN; no key material."""
    with capture_logs() as logs:
        await Client.connect(gateway.address, tls=gateway_pki.tls(gateway_pki.good_client))
    [entry, *_] = [entry for entry in logs if entry["event"] == "client handshake accepted"]
    assert entry["subject"] == "CN=keyward-worker"
    assert int(entry["serial"], 16) > 0
    assert entry["alpn"] == "h2"
    assert "PRIVATE KEY" not in repr(logs)
