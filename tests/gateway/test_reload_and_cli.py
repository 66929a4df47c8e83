"""The gateway reloads its own TLS material by content, and runs standalone."""

from __future__ import annotations

import asyncio
import signal
import socket
import ssl
import sys
from pathlib import Path

from cryptography import x509
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from keyward.pki.install import install_pair
from keyward.pki.types import IssuedCertificate
from keyward_devstack.mtls_gateway import MtlsGateway
from keyward_devstack.processes import free_port
from tests.gateway.conftest import SERVER_SPEC, GatewayPki, gateway_config
from tests.support import assert_eventually, wait_until


def _served_serial(port: int, pki: GatewayPki, directory: Path) -> int:
    """Serial of the certificate the gateway presents to a (valid) client right now."""
    cert, key = directory / "client.crt", directory / "client.key"
    cert.write_bytes(pki.good_client.certificate_pem)
    key.write_bytes(pki.good_client.private_key_pem)
    context = ssl.create_default_context(cadata=pki.ca.ca_pem.decode())
    context.load_cert_chain(cert, key)
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(issued: IssuedCertificate) -> int:
    return x509.load_pem_x509_certificate(issued.certificate_pem).serial_number


async def test_new_server_pair_is_served_and_a_broken_one_refused(
        gateway_pki: GatewayPki, temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """A renewed server pair is picked up by content; a mismatched pair is refused and
    the previous one keeps serving."""
    server_dir = tmp_path / "server"
    first = gateway_pki.ca.issue(SERVER_SPEC)
    install_pair(server_dir, first)
    gateway = MtlsGateway(gateway_config(
        gateway_pki, temporal_env, server_cert=server_dir / "tls.crt",
        server_key=server_dir / "tls.key", reload_interval=0.1))
    await gateway.start()
    try:
        serial = await asyncio.to_thread(_served_serial, gateway.port, gateway_pki, tmp_path)
        assert serial == _serial(first)

        renewed = gateway_pki.ca.issue(SERVER_SPEC)
        install_pair(server_dir, renewed)

        async def serves_renewed() -> None:
            served = await asyncio.to_thread(_served_serial, gateway.port, gateway_pki,
                                             tmp_path)
            assert served == _serial(renewed)
        await assert_eventually(serves_renewed, within=5)

        other = gateway_pki.ca.issue(SERVER_SPEC)
        install_pair(server_dir, IssuedCertificate(
            certificate_pem=other.certificate_pem, private_key_pem=first.private_key_pem,
            ca_pem=other.ca_pem))

        async def refused() -> None:
            assert gateway.stats.failed_reloads == 1
        await assert_eventually(refused, within=5)
        await serves_renewed()
    finally:
        await gateway.stop()


async def test_standalone_gateway_serves_and_stops_cleanly_on_sigterm(
        gateway_pki: GatewayPki, temporal_env: WorkflowEnvironment) -> None:
    """``python -m keyward_devstack.mtls_gateway`` proxies for a Temporal client and
    exits 0 on SIGTERM."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "keyward_devstack.mtls_gateway", "--listen-port", str(port),
        "--upstream", temporal_env.client.service_client.config.target_host,
        "--cert", str(gateway_pki.server_dir / "tls.crt"),
        "--key", str(gateway_pki.server_dir / "tls.key"),
        "--client-ca", str(gateway_pki.client_ca),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                return False
            return True
        await asyncio.to_thread(wait_until, listening, within=15, what="gateway to listen")
        client = await Client.connect(f"127.0.0.1:{port}",
                                      tls=gateway_pki.tls(gateway_pki.good_client))
        await client.count_workflows()
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, output.decode()
    text = output.decode()
    assert "client handshake accepted" in text
    assert "mtls gateway stopped" in text
    assert "PRIVATE KEY" not in text
