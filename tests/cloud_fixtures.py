"""Fixtures shared by the tests that talk to Temporal Cloud (tests/cloud, the codec
server's Cloud roles): a Cloud Ops API emulator per test, seeded with the sample account,
and keyward's client for it: the real ``CloudOperationsClient`` underneath, the API key in
a file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keyward.cloud.ops import CloudOps
from tests.emulators.cloud_ops import (
    DEFAULT_API_KEY,
    CloudOpsEmulator,
    RunningCloudOps,
    seed_sample_account,
    serve,
)
from tests.tls_material import CertificateAuthority


@pytest.fixture(scope="session")
def client_ca() -> CertificateAuthority:
    """The CA the sample namespaces accept client certificates from."""
    return CertificateAuthority.create("keyward cloud test client CA")


@pytest.fixture
def emulator(client_ca: CertificateAuthority) -> CloudOpsEmulator:
    emulator = CloudOpsEmulator(operation_delay=0.2, check_duration=0.02)
    seed_sample_account(emulator, ca_pem=client_ca.cert_pem())
    return emulator


@pytest.fixture
async def cloud_ops(emulator: CloudOpsEmulator) -> AsyncIterator[RunningCloudOps]:
    async with serve(emulator) as running:
        yield running


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "cloud-api-key"
    path.write_text(DEFAULT_API_KEY + "\n")
    return path


@pytest.fixture
async def ops(cloud_ops: RunningCloudOps, key_file: Path) -> CloudOps:
    return await CloudOps.connect(cloud_ops.settings(key_file))
