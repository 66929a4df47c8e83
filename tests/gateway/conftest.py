"""Certificates made at test time, and a gateway in front of the session's Temporal server.

One module-wide CA signs the gateway's server pair and the good client pair; a
second CA and an already-expired certificate are the material that must be refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import install_pair
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward_devstack.mtls_gateway import GatewayConfig, MtlsGateway

SERVER_SPEC = CertificateSpec(name="gateway", common_name="localhost", dns_names=("localhost",),
                              ip_addresses=("127.0.0.1",), usage="server")
CLIENT_SPEC = CertificateSpec(name="worker", common_name="keyward-worker", usage="client",
                              lifetime=timedelta(hours=1))


@dataclass(frozen=True)
class GatewayPki:
    """Paths the gateway reads, and PEM pairs clients present."""

    ca: CertificateAuthority
    server_dir: Path
    client_ca: Path
    good_client: IssuedCertificate
    foreign_client: IssuedCertificate
    expired_client: IssuedCertificate

    def tls(self, client: IssuedCertificate | None) -> TLSConfig:
        """Client TLS trusting the gateway, presenting ``client`` (or no certificate)."""
        return TLSConfig(server_root_ca_cert=self.ca.ca_pem, domain="localhost",
                         client_cert=client.certificate_pem if client else None,
                         client_private_key=client.private_key_pem if client else None)


@pytest.fixture(scope="module")
def gateway_pki(tmp_path_factory: pytest.TempPathFactory) -> GatewayPki:
    now = datetime.now(UTC)
    # Born a day ago, so it can sign a certificate that expired an hour ago.
    ca = CertificateAuthority.bootstrap("keyward gateway test CA", now=now - timedelta(days=1))
    other_ca = CertificateAuthority.bootstrap("some other CA")
    directory = tmp_path_factory.mktemp("gateway-pki")
    server = ca.issue(SERVER_SPEC)
    install_pair(directory / "server", server)
    return GatewayPki(
        ca=ca, server_dir=directory / "server", client_ca=directory / "server" / "ca.crt",
        good_client=ca.issue(CLIENT_SPEC),
        foreign_client=other_ca.issue(CLIENT_SPEC),
        expired_client=ca.issue(CLIENT_SPEC, now=now - timedelta(hours=2)))


def gateway_config(pki: GatewayPki, env: WorkflowEnvironment, **overrides: object
                   ) -> GatewayConfig:
    host, _, port = env.client.service_client.config.target_host.rpartition(":")
    values: dict[str, object] = {
        "listen_host": "127.0.0.1", "listen_port": 0,
        "upstream_host": host, "upstream_port": int(port),
        "server_cert": pki.server_dir / "tls.crt", "server_key": pki.server_dir / "tls.key",
        "client_ca": pki.client_ca}
    values.update(overrides)
    return GatewayConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
async def gateway(gateway_pki: GatewayPki, temporal_env: WorkflowEnvironment
                  ) -> AsyncIterator[MtlsGateway]:
    """A gateway with the default (5 minute) max age, fresh per test so its stats are too."""
    running = MtlsGateway(gateway_config(gateway_pki, temporal_env))
    await running.start()
    try:
        yield running
    finally:
        await running.stop()
