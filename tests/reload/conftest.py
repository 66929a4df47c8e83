"""A test CA, a gateway in front of the session's Temporal server, and helpers to give a
worker a short-lived client certificate installed the way keyward installs them."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from bench.ping_workflow import PingInput, PingOutput, PingWorkflow
from keyward.connect.reload import ClientTLSFiles
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import atomic_write, install_pair
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
    async with gateway_for(pki.server_dir, pki.ca_file, env, max_connection_age) as gateway:
        yield gateway


@asynccontextmanager
async def gateway_for(server_dir: Path, client_ca: Path, env: WorkflowEnvironment,
                      max_connection_age: timedelta, *,
                      reload_interval: float = 1.0) -> AsyncIterator[MtlsGateway]:
    """A gateway serving the pair installed in ``server_dir`` and requiring client
    certificates from ``client_ca``; both reloaded when they change."""
    host, _, port = env.client.service_client.config.target_host.rpartition(":")
    gateway = MtlsGateway(GatewayConfig(
        listen_host="127.0.0.1", listen_port=0, upstream_host=host, upstream_port=int(port),
        server_cert=server_dir / "tls.crt", server_key=server_dir / "tls.key",
        client_ca=client_ca, max_connection_age=max_connection_age,
        reload_interval=reload_interval))
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()


@dataclass(frozen=True)
class ServerCaRotation:
    """The gateway's *server* certificate moving from CA ``old`` to CA ``new``.

    Client certificates stay from ``old`` (the gateway's ``client_ca`` file), so only the
    CA the worker trusts the server with has to follow: ``server_ca`` is the worker's
    ``temporal.tls_server_ca``, published atomically as a rotation would.
    """

    old: CertificateAuthority
    new: CertificateAuthority
    directory: Path

    @property
    def server_dir(self) -> Path:
        return self.directory / "gateway"

    @property
    def client_ca(self) -> Path:
        return self.directory / "client-ca.pem"

    @property
    def server_ca(self) -> Path:
        return self.directory / "trust" / "server-ca.pem"

    def serve_from(self, ca: CertificateAuthority) -> None:
        """Install a gateway server pair issued by ``ca`` (the gateway reloads it)."""
        install_pair(self.server_dir, ca.issue(SERVER_SPEC))

    def publish_server_ca(self, *cas: CertificateAuthority) -> None:
        atomic_write(self.server_ca, b"".join(ca.ca_pem for ca in cas), mode=0o644)

    def install_client(self, directory: Path) -> None:
        install_pair(directory, self.old.issue(client_spec(timedelta(hours=1))))

    def files(self, directory: Path) -> ClientTLSFiles:
        return ClientTLSFiles(cert=directory / "tls.crt", key=directory / "tls.key",
                              ca=self.server_ca, server_name="localhost")

    def tls_trusting(self, *cas: CertificateAuthority) -> TLSConfig:
        """A client certificate the gateway accepts, trusting the server through ``cas``."""
        issued = self.old.issue(client_spec(timedelta(hours=1)))
        return TLSConfig(server_root_ca_cert=b"".join(ca.ca_pem for ca in cas),
                         domain="localhost", client_cert=issued.certificate_pem,
                         client_private_key=issued.private_key_pem)


@pytest.fixture
def server_ca_rotation(tmp_path: Path) -> ServerCaRotation:
    """A fresh old and new CA; the gateway serves from the old one, the worker trusts it."""
    start = datetime.now(UTC) - timedelta(days=1)
    rotation = ServerCaRotation(
        old=CertificateAuthority.bootstrap("keyward reload test CA (old)", now=start),
        new=CertificateAuthority.bootstrap("keyward reload test CA (new)", now=start),
        directory=tmp_path / "ca-rotation")
    atomic_write(rotation.client_ca, rotation.old.ca_pem, mode=0o644)
    rotation.serve_from(rotation.old)
    rotation.publish_server_ca(rotation.old)
    return rotation


async def ping(client: Client, task_queue: str, sequence: int,
               *, execution_timeout: timedelta = timedelta(seconds=30)) -> PingOutput:
    return await client.execute_workflow(
        PingWorkflow.run, PingInput(sequence), id=f"ping-{uuid.uuid4()}",
        task_queue=task_queue, execution_timeout=execution_timeout)


@dataclass
class Load:
    """Workflows started continuously by a client with its own long-lived certificate."""

    client: Client
    task_queue: str
    rate_per_second: float = 5
    completed_at: list[datetime] = field(default_factory=list)
    #: Seconds from start to result of each completed workflow.
    durations: list[float] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    async def _one(self, sequence: int) -> None:
        started = time.monotonic()
        try:
            await ping(self.client, self.task_queue, sequence)
        except Exception as error:  # noqa: BLE001 - every failure is what the test counts
            self.failures.append(error)
        else:
            self.completed_at.append(datetime.now(UTC))
            self.durations.append(time.monotonic() - started)

    async def run(self, until: float) -> None:
        sequence = 0
        while time.monotonic() < until:
            sequence += 1
            task = asyncio.create_task(self._one(sequence))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
            await asyncio.sleep(1 / self.rate_per_second)
        await asyncio.wait_for(asyncio.gather(*self._running), timeout=40)

    @property
    def started(self) -> int:
        return len(self.completed_at) + len(self.failures) + len(self._running)
