"""A renewal that must not be used is refused, and the worker keeps its current client."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.ping_workflow import PingOutput, PingWorkflow
from keyward.connect.reload import ClientCertificateReloader, tls_config
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import install_pair
from keyward.pki.types import IssuedCertificate
from tests.reload.conftest import ReloadPki, client_spec, ping, running_gateway


async def test_foreign_mismatched_and_expired_pairs_are_refused_and_work_continues(
        reload_pki: ReloadPki, temporal_env: WorkflowEnvironment, task_queue: str,
        tmp_path: Path) -> None:
    """Pairs from another CA, with a key that does not match, or already expired are each
    refused once with an error log; the worker keeps running on its old client, and the
    next good pair is still taken."""
    worker_dir = tmp_path / "worker-cert"
    reload_pki.install_client(worker_dir, timedelta(minutes=5))
    files = reload_pki.files(worker_dir)
    spec = client_spec(timedelta(minutes=5))
    good = reload_pki.ca.issue(spec)
    broken = {
        "other CA": CertificateAuthority.bootstrap("some other CA").issue(spec),
        "mismatched key": IssuedCertificate(certificate_pem=good.certificate_pem,
                                            private_key_pem=reload_pki.ca.issue(spec)
                                            .private_key_pem, ca_pem=good.ca_pem),
        "expired": reload_pki.ca.issue(spec, now=datetime.now(UTC) - timedelta(hours=1)),
    }
    expected_problem = {"other CA": "does not chain", "mismatched key": "does not match",
                        "expired": "expired"}
    async with running_gateway(reload_pki, temporal_env, timedelta(minutes=5)) as gateway:
        client = await Client.connect(gateway.address, tls=tls_config(files))
        starter = await Client.connect(gateway.address, tls=reload_pki.long_lived_tls())
        async with Worker(client, task_queue=task_queue, workflows=[PingWorkflow]) as worker:
            reloader = ClientCertificateReloader(worker, client, files,
                                                 client_ca_for_validation=reload_pki.ca_file)
            for count, (name, pair) in enumerate(broken.items(), start=1):
                install_pair(worker_dir, pair)
                with capture_logs() as logs:
                    assert await reloader.check_now() is False
                    assert await reloader.check_now() is False  # reported once, not per poll
                [entry] = [e for e in logs if e["log_level"] == "error"]
                assert entry["event"].startswith("client certificate refused")
                assert any(expected_problem[name] in p for p in entry["problems"]), name
                assert reloader.failures == count
                assert reloader.swaps == 0
                assert worker.client is client
                assert await ping(starter, task_queue, count) == PingOutput(count)

            install_pair(worker_dir, good)
            assert await reloader.check_now() is True
            assert reloader.swaps == 1
            assert worker.client is reloader.client
            assert worker.client is not client
            assert await ping(starter, task_queue, 99) == PingOutput(99)
            with contextlib.suppress(asyncio.CancelledError):
                await reloader.stop()
