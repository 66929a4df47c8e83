"""Certificate renewal end to end: real Temporal dev server, local CA, files installer."""

from __future__ import annotations

import base64
import concurrent.futures
import contextlib
import dataclasses
import socket
import ssl
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac
import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import Worker

from activities.certificates import CertificateActivities
from keyward.config import CertificateSettings, Settings, TemporalSettings
from keyward.contracts.certificates import RenewCertificateInput
from keyward.issuers.base import Issuer, IssuerError
from keyward.issuers.cert_manager import CertManagerIssuer
from keyward.issuers.factory import build_issuer, issuer_factory
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import summarize
from keyward.rotation.schedules import build_certificate_schedule
from tests.emulators.kube_api import FakeKubeApi, serve
from tests.support import assert_eventually
from workflows.renew_certificate import RenewCertificate


@pytest.fixture(scope="module")
def ca_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("ca")
    ca = CertificateAuthority.bootstrap("renewal test CA", lifetime=timedelta(days=30))
    ca.save(directory / "ca.crt", directory / "ca.key")
    return directory / "ca.crt", directory / "ca.key"


def settings_with(tmp_path: Path, ca_files: tuple[Path, Path], task_queue: str,
                  **overrides: object) -> Settings:
    values: dict[str, object] = {"common_name": "keyward-worker",
                                 "dns_names": ("keyward-worker",), "ca_cert": ca_files[0],
                                 "ca_key": ca_files[1], "directory": tmp_path / "worker",
                                 "lifetime_hours": 1.0}
    values.update(overrides)
    return dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                               certificates={"worker": CertificateSettings(**values)})  # type: ignore[arg-type]


@asynccontextmanager
async def renewal_worker(client: Client, settings: Settings,
                         issuer: Issuer | None = None) -> AsyncIterator[None]:
    activities = CertificateActivities(
        settings, (lambda _name, _cert: issuer) if issuer else build_issuer)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        async with Worker(client, task_queue=settings.temporal.task_queue,
                          workflows=[RenewCertificate],
                          activities=[activities.inspect, activities.issue_and_install,
                                      activities.verify],
                          activity_executor=pool, max_concurrent_activities=4):
            yield


async def renew(client: Client, settings: Settings, *, force: bool = False) -> object:
    return await client.execute_workflow(
        RenewCertificate.run, RenewCertificateInput("worker", force=force),
        id=f"renew-{uuid.uuid4()}", task_queue=settings.temporal.task_queue)


async def test_first_run_issues_then_idempotent_then_forced(
        temporal_client: Client, tmp_path: Path, ca_files: tuple[Path, Path],
        task_queue: str) -> None:
    """Nothing installed → issue; run again → nothing to do; force → a new serial."""
    settings = settings_with(tmp_path, ca_files, task_queue)
    async with renewal_worker(temporal_client, settings):
        first = await renew(temporal_client, settings)
        second = await renew(temporal_client, settings)
        forced = await renew(temporal_client, settings, force=True)
    assert first.renewed  # type: ignore[attr-defined]
    assert not second.renewed  # type: ignore[attr-defined]
    assert second.serial == first.serial  # type: ignore[attr-defined]
    assert "renewal due at" in second.reason  # type: ignore[attr-defined]
    assert forced.renewed  # type: ignore[attr-defined]
    assert forced.serial != first.serial  # type: ignore[attr-defined]
    installed = read_installed(tmp_path / "worker")
    assert installed is not None
    assert summarize(installed.certificate_pem).serial == forced.serial  # type: ignore[attr-defined]
    assert (tmp_path / "worker" / "tls.key").stat().st_mode & 0o777 == 0o600


class BadIssuer:
    """Issues a certificate for the wrong name: validation must stop it."""

    name = "bad-issuer"

    def __init__(self, ca: CertificateAuthority) -> None:
        self._ca = ca

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        return self._ca.issue(dataclasses.replace(spec, dns_names=("somebody-else",)))


async def test_invalid_certificate_is_never_installed(
        temporal_client: Client, tmp_path: Path, ca_files: tuple[Path, Path],
        task_queue: str) -> None:
    """A certificate that fails validation fails the run, non-retryably; the old pair stays."""
    settings = settings_with(tmp_path, ca_files, task_queue)
    async with renewal_worker(temporal_client, settings):
        good = await renew(temporal_client, settings)
    ca = CertificateAuthority.load(*ca_files)
    async with renewal_worker(temporal_client, settings, issuer=BadIssuer(ca)):
        with pytest.raises(WorkflowFailureError) as caught:
            await renew(temporal_client, settings, force=True)
    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "CertificateInvalid"
    assert cause.cause.non_retryable
    assert "NOT installed" in str(cause.cause)
    assert "keyward-worker" in str(cause.cause)
    installed = read_installed(tmp_path / "worker")
    assert installed is not None
    assert summarize(installed.certificate_pem).serial == good.serial  # type: ignore[attr-defined]


class FlakyIssuer:
    """Unreachable for the first attempts, then fine."""

    name = "flaky-issuer"

    def __init__(self, ca: CertificateAuthority, failures: int) -> None:
        self._ca = ca
        self.calls = 0
        self._failures = failures

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        self.calls += 1
        if self.calls <= self._failures:
            raise IssuerError("issuer unreachable (test)", retryable=True)
        return self._ca.issue(spec)


async def test_unreachable_issuer_is_retried(temporal_client: Client, tmp_path: Path,
                                             ca_files: tuple[Path, Path],
                                             task_queue: str) -> None:
    """Transient issuer failures are retried with backoff until issuing succeeds."""
    settings = settings_with(tmp_path, ca_files, task_queue)
    issuer = FlakyIssuer(CertificateAuthority.load(*ca_files), failures=2)
    async with renewal_worker(temporal_client, settings, issuer=issuer):
        result = await renew(temporal_client, settings)
    assert result.renewed  # type: ignore[attr-defined]
    assert issuer.calls == 3


async def test_schedule_renews_a_short_lived_certificate_before_expiry(
        temporal_client: Client, tmp_path: Path, ca_files: tuple[Path, Path],
        task_queue: str) -> None:
    """A 30 s certificate is replaced by its schedule before it expires."""
    settings = settings_with(tmp_path, ca_files, task_queue, lifetime_hours=30 / 3600)
    cert = settings.certificates["worker"]
    async with renewal_worker(temporal_client, settings):
        await renew(temporal_client, settings)
        installed = read_installed(tmp_path / "worker")
        assert installed is not None
        first = summarize(installed.certificate_pem)
        schedule, explanation = build_certificate_schedule(settings, "worker", cert)
        assert "check every" in explanation
        handle = await temporal_client.create_schedule(f"renew-test-{uuid.uuid4()}", schedule)
        try:
            async def replaced() -> None:
                now = read_installed(tmp_path / "worker")
                assert now is not None
                assert summarize(now.certificate_pem).serial != first.serial

            await assert_eventually(replaced, within=40, interval=0.5)
            assert datetime.now(UTC) < first.not_after  # replaced before it expired
        finally:
            await handle.delete()


async def test_cert_manager_renewal_into_a_kubernetes_secret(temporal_client: Client,
                                                              task_queue: str) -> None:
    """cert-manager issues, the kubernetes.io/tls Secret receives the pair, a rerun is a no-op."""
    fake = FakeKubeApi(controller_delay=0.05)
    cert = CertificateSettings(common_name="keyward-worker", dns_names=("keyward-worker",),
                               issuer="cert-manager", install="kubernetes-secret",
                               kubernetes_namespace="temporal", cert_manager_issuer="keyward-ca",
                               kubernetes_secret="keyward-worker-tls", lifetime_hours=24)
    settings = dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                                   certificates={"worker": cert})
    with serve(fake) as kube, kube.client() as api:
        activities = CertificateActivities(
            settings,
            lambda _n, c: CertManagerIssuer(api, namespace="temporal", issuer_name="keyward-ca",
                                            poll_interval=0.02, timeout=10),
            kube_client=lambda: api)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            async with Worker(temporal_client, task_queue=task_queue,
                              workflows=[RenewCertificate],
                              activities=[activities.inspect, activities.issue_and_install,
                                          activities.verify],
                              activity_executor=pool, max_concurrent_activities=4):
                first = await renew(temporal_client, settings)
                again = await renew(temporal_client, settings)
        stored = fake.secret("temporal", "keyward-worker-tls")
    assert first.renewed  # type: ignore[attr-defined]
    assert not again.renewed  # type: ignore[attr-defined]
    assert stored is not None
    assert stored["type"] == "kubernetes.io/tls"
    served = summarize(base64.b64decode(stored["data"]["tls.crt"]))
    assert served.serial == first.serial  # type: ignore[attr-defined]
    assert len(fake.created_certificate_requests) == 1


async def test_unusable_installed_pair_is_replaced(temporal_client: Client, tmp_path: Path,
                                                   ca_files: tuple[Path, Path],
                                                   task_queue: str) -> None:
    """A pair whose key does not match (or is garbage) is replaced at the next check."""
    settings = settings_with(tmp_path, ca_files, task_queue)
    async with renewal_worker(temporal_client, settings):
        first = await renew(temporal_client, settings)
        key = tmp_path / "worker" / "tls.key"
        key.resolve().chmod(0o600)
        other = CertificateAuthority.bootstrap("other").issue(
            CertificateSpec(name="x", common_name="x"))
        key.resolve().write_bytes(other.private_key_pem)  # corrupt the installed pair
        fixed = await renew(temporal_client, settings)
    assert fixed.renewed  # type: ignore[attr-defined]
    assert "unusable" in fixed.reason  # type: ignore[attr-defined]
    assert fixed.serial != first.serial  # type: ignore[attr-defined]


@contextlib.contextmanager
def mutual_tls_server(server_ca: CertificateAuthority,
                      trusted_client_ca: bytes) -> Iterator[int]:
    """A TLS server on a free port that requires client certificates from one CA."""
    issued = server_ca.issue(CertificateSpec(name="srv", common_name="localhost",
                                             dns_names=("localhost",),
                                             ip_addresses=("127.0.0.1",), usage="server"))
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "s.crt", Path(tmp) / "s.key"
        cert.write_bytes(issued.certificate_pem)
        key.write_bytes(issued.private_key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        context.load_verify_locations(cadata=trusted_client_ca.decode())
        context.verify_mode = ssl.CERT_REQUIRED
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.2)
        stop = threading.Event()

        def serve() -> None:
            while not stop.is_set():
                try:
                    raw, _ = listener.accept()
                except TimeoutError:
                    continue
                with contextlib.suppress(ssl.SSLError, OSError), \
                        context.wrap_socket(raw, server_side=True):
                    pass

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        try:
            yield listener.getsockname()[1]
        finally:
            stop.set()
            thread.join(timeout=5)
            listener.close()


async def test_verify_step_proves_the_client_certificate_is_accepted(
        temporal_client: Client, tmp_path: Path, ca_files: tuple[Path, Path],
        task_queue: str) -> None:
    """After installing, a real mutual-TLS handshake with verify_endpoint must succeed."""
    ca = CertificateAuthority.load(*ca_files)
    with mutual_tls_server(ca, ca.ca_pem) as port:
        settings = settings_with(tmp_path, ca_files, task_queue,
                                 verify_endpoint=f"127.0.0.1:{port}")
        async with renewal_worker(temporal_client, settings):
            result = await renew(temporal_client, settings)
    assert result.renewed  # type: ignore[attr-defined]
    assert "handshake with 127.0.0.1" in result.reason  # type: ignore[attr-defined]


async def test_verify_step_fails_when_the_endpoint_refuses_the_certificate(
        temporal_client: Client, tmp_path: Path, ca_files: tuple[Path, Path],
        task_queue: str) -> None:
    """An endpoint that trusts another CA makes the run fail at verification."""
    ca = CertificateAuthority.load(*ca_files)
    stranger = CertificateAuthority.bootstrap("another CA")
    with mutual_tls_server(ca, stranger.ca_pem) as port:
        settings = settings_with(tmp_path, ca_files, task_queue,
                                 verify_endpoint=f"127.0.0.1:{port}")
        async with renewal_worker(temporal_client, settings):
            with pytest.raises(WorkflowFailureError) as caught:
                await renew(temporal_client, settings)
    cause = caught.value.cause
    assert isinstance(cause, ActivityError)
    assert isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "VerifyFailed"


async def test_vault_pki_renewal(temporal_client: Client, vault_client: hvac.Client,
                                 tmp_path: Path, task_queue: str) -> None:
    """issuer = "vault-pki": the worker's Vault issues through pki/issue/<role>."""
    mount = f"pki-{uuid.uuid4().hex[:8]}"
    vault_client.sys.enable_secrets_engine("pki", path=mount)
    vault_client.secrets.pki.generate_root("internal", "keyward test root",
                                           extra_params={"key_type": "ec", "key_bits": 256},
                                           mount_point=mount)
    vault_client.secrets.pki.create_or_update_role(
        "worker", extra_params={"allow_any_name": True, "key_type": "ec", "key_bits": 256,
                                "server_flag": False, "client_flag": True, "max_ttl": "48h"},
        mount_point=mount)
    cert = CertificateSettings(common_name="keyward-worker", issuer="vault-pki",
                               vault_pki_mount=mount, vault_pki_role="worker",
                               directory=tmp_path / "worker", lifetime_hours=24)
    settings = dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                                   certificates={"worker": cert})
    activities = CertificateActivities(settings, issuer_factory(vault_client))
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        async with Worker(temporal_client, task_queue=task_queue, workflows=[RenewCertificate],
                          activities=[activities.inspect, activities.issue_and_install,
                                      activities.verify],
                          activity_executor=pool, max_concurrent_activities=4):
            result = await renew(temporal_client, settings)
    assert result.renewed  # type: ignore[attr-defined]
    installed = read_installed(tmp_path / "worker")
    assert installed is not None
    summary = summarize(installed.certificate_pem)
    assert summary.serial == result.serial  # type: ignore[attr-defined]
    assert summary.usages == ("client",)
    vault_client.sys.disable_secrets_engine(path=mount)
