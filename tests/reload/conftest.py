"""A test CA, a gateway in front of the session's Temporal server, and helpers to give a
worker a short-lived client certificate installed the way keyward installs them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from bench.ping_workflow import PingInput, PingOutput, PingWorkflow
from keyward.connect.reload import ClientTLSFiles
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import install_pair
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward_devstack.mtls_gateway import GatewayConfig, MtlsGateway

SERVER_SPEC = CertificateSpec(name="gateway", common_name="localhost", dns_names=("localhost",),
                              ip_addresses=("127.0.0.1",), usage="server")


def client_spec(lifetime: timedelta) -> CertificateSpec:
    return CertificateSpec(name="worker", common_name="keyward-worker", usage="client",
                           lifetime=lifetime)


@dataclass(frozen=True)
class ReloadPki:
    """The CA the gateway trusts for clients, and where its server pair is installed."""

    ca: CertificateAuthority
    server_dir: Path

    @property
    def ca_file(self) -> Path:
        return self.server_dir / "ca.crt"

    def install_client(self, directory: Path, lifetime: timedelta) -> IssuedCertificate:
        """Issue a client pair of ``lifetime`` and install it atomically into ``directory``."""
        issued = self.ca.issue(client_spec(lifetime))
        install_pair(directory, issued)
        return issued

    def files(self, directory: Path) -> ClientTLSFiles:
        return ClientTLSFiles(cert=directory / "tls.crt", key=directory / "tls.key",
                              ca=self.ca_file, server_name="localhost")

    def long_lived_tls(self) -> TLSConfig:
        """TLS for the load generator: its own certificate outlives every test."""
        issued = self.ca.issue(client_spec(timedelta(hours=1)))
        return TLSConfig(server_root_ca_cert=self.ca.ca_pem, domain="localhost",
                         client_cert=issued.certificate_pem,
                         client_private_key=issued.private_key_pem)


@pytest.fixture(scope="module")
def reload_pki(tmp_path_factory: pytest.TempPathFactory) -> ReloadPki:
    ca = CertificateAuthority.bootstrap("keyward reload test CA",
                                        now=datetime.now(UTC) - timedelta(days=1))
    server_dir = tmp_path_factory.mktemp("reload-pki") / "server"
    install_pair(server_dir, ca.issue(SERVER_SPEC))
    return ReloadPki(ca=ca, server_dir=server_dir)


@asynccontextmanager
async def running_gateway(pki: ReloadPki, env: WorkflowEnvironment,
                          max_connection_age: timedelta) -> AsyncIterator[MtlsGateway]:
    """A gateway to the session's dev server that closes connections at ``max_connection_age``."""
    host, _, port = env.client.service_client.config.target_host.rpartition(":")
    gateway = MtlsGateway(GatewayConfig(
        listen_host="127.0.0.1", listen_port=0, upstream_host=host, upstream_port=int(port),
        server_cert=pki.server_dir / "tls.crt", server_key=pki.server_dir / "tls.key",
        client_ca=pki.ca_file, max_connection_age=max_connection_age))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


async def ping(client: Client, task_queue: str, sequence: int,
               *, execution_timeout: timedelta = timedelta(seconds=30)) -> PingOutput:
    return await client.execute_workflow(
        PingWorkflow.run, PingInput(sequence), id=f"ping-{uuid.uuid4()}",
        task_queue=task_queue, execution_timeout=execution_timeout)
