"""CA rotation end to end: ``RotateCertificateAuthority`` on the real Temporal dev server,
the local CA, leaves installed as files, trust bundles as files, short soak and lifetimes.

Watched from outside while it runs: at every moment each installed leaf chains to a CA
every trust bundle holds (no live leaf is ever untrusted); at the end the bundles hold the
new CA alone and the old CA's key is archived.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.authorities import CaRotationActivities
from activities.certificates import CertificateActivities
from keyward.config import CertificateSettings, Settings, TemporalSettings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.contracts import failures
from keyward.contracts.authorities import BundleRequest, CaRef, CaRotationInput
from keyward.issuers.factory import build_issuer
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import read_installed
from keyward.services.authorities import CaRotations, fingerprint
from tests.e2e.ca_rotation_worker import rotation_worker as shared_rotation_worker
from tests.support import assert_eventually
from workflows.rotate_ca import RotateCertificateAuthority

LEAVES = ("worker", "frontend")
UNRELATED = CertificateAuthority.bootstrap("some other team's CA", lifetime=timedelta(days=30))
#: Leaves live 10.8 s, the grace is 1.8 s: the old CA may retire 12.6 s after the switch.
LIFETIME_HOURS = 0.003
GRACE_HOURS = 0.0005


@dataclasses.dataclass
class Layout:
    root: Path
    settings: Settings

    @property
    def ca(self) -> CertificateAuthoritySettings:
        return self.settings.certificate_authorities["local"]

    def bundles(self) -> list[set[str]]:
        """The CA fingerprints each trust bundle holds now (empty set: no file yet)."""
        found = []
        for path in self.ca.trust_bundles:
            try:
                found.append({fingerprint(c)
                              for c in x509.load_pem_x509_certificates(path.read_bytes())})
            except (FileNotFoundError, ValueError):
                found.append(set())
        return found

    def leaf_issuers(self) -> dict[str, str]:
        """Each installed leaf → the fingerprint of the CA (among all seen) that signed it."""
        issuers = {}
        for name in LEAVES:
            pair = read_installed(self.root / name)
            assert pair is not None
            leaf = x509.load_pem_x509_certificates(pair.certificate_pem)[0]
            issuers[name] = leaf.issuer.rfc4514_string()
        return issuers


@pytest.fixture
def layout(tmp_path: Path, task_queue: str) -> Layout:
    ca = CertificateAuthority.bootstrap("rotation test CA", lifetime=timedelta(days=30))
    ca.save(tmp_path / "ca" / "ca.crt", tmp_path / "ca" / "ca.key")
    certificates = {
        name: CertificateSettings(common_name=f"{name}.keyward.test",
                                  dns_names=(f"{name}.keyward.test",),
                                  usage="server" if name == "frontend" else "client",
                                  ca_cert=tmp_path / "ca" / "ca.crt",
                                  ca_key=tmp_path / "ca" / "ca.key",
                                  directory=tmp_path / name, lifetime_hours=LIFETIME_HOURS)
        for name in LEAVES}
    authority = CertificateAuthoritySettings(
        ca_cert=tmp_path / "ca" / "ca.crt", ca_key=tmp_path / "ca" / "ca.key",
        common_name="rotation test CA 2", lifetime_days=30,
        trust_bundles=(tmp_path / "server" / "client-ca.pem",
                       tmp_path / "worker-trust" / "server-ca.pem"),
        soak_seconds=2.0, grace_hours=GRACE_HOURS)
    settings = dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                                   certificates=certificates,
                                   certificate_authorities={"local": authority})
    for path in authority.trust_bundles:  # today's trust: the one CA
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(ca.ca_pem)
    # The worker's bundle also trusts a CA the rotation has nothing to do with.
    authority.trust_bundles[1].write_bytes(ca.ca_pem + UNRELATED.ca_pem)
    return Layout(tmp_path, settings)


@asynccontextmanager
async def rotation_worker(client: Client, settings: Settings) -> AsyncIterator[None]:
    async with shared_rotation_worker(client, settings,
                                      CertificateActivities(settings, build_issuer),
                                      CaRotationActivities(settings)):
        yield


async def start(client: Client, settings: Settings,
                workflow_id: str | None = None) -> WorkflowHandle[object, object]:
    return await client.start_workflow(
        RotateCertificateAuthority.run, CaRotationInput("local"),
        id=workflow_id or f"ca-rotation-{uuid.uuid4()}",
        task_queue=settings.temporal.task_queue,
        execution_timeout=timedelta(minutes=2))


async def until(condition: Callable[[], bool]) -> None:
    async def check() -> None:
        assert condition()

    await assert_eventually(check, within=30, interval=0.05)


def issue_leaves(layout: Layout) -> None:
    activities = CertificateActivities(layout.settings, build_issuer)
    environment = ActivityEnvironment()
    from keyward.contracts.certificates import CertificateRef  # noqa: PLC0415

    for name in LEAVES:
        environment.run(activities.issue_and_install, CertificateRef(name))


async def watch(layout: Layout, done: asyncio.Event, seen: list[tuple[set[str], ...]],
                untrusted: list[str]) -> None:
    """Every 20 ms: the bundles, and whether each leaf's issuer is in every bundle."""
    subjects: dict[str, str] = {}
    for ca_file in (layout.ca.ca_cert,):
        cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        subjects[cert.subject.rfc4514_string()] = fingerprint(cert)
    while not done.is_set():
        bundles = layout.bundles()
        if not seen or tuple(bundles) != seen[-1]:
            seen.append(tuple(bundles))
        active = x509.load_pem_x509_certificate(layout.ca.ca_cert.read_bytes())
        subjects.setdefault(active.subject.rfc4514_string(), fingerprint(active))
        for name, issuer in layout.leaf_issuers().items():
            signer = subjects.get(issuer)
            if signer is None or any(signer not in bundle for bundle in bundles):
                untrusted.append(f"{name} signed by {issuer} at {datetime.now(UTC)}")
        await asyncio.sleep(0.02)


async def test_a_rotation_never_leaves_a_live_leaf_untrusted(temporal_client: Client,
                                                            layout: Layout) -> None:
    issue_leaves(layout)
    old = fingerprint(x509.load_pem_x509_certificate(layout.ca.ca_cert.read_bytes()))
    done = asyncio.Event()
    seen: list[tuple[set[str], ...]] = []
    untrusted: list[str] = []
    watcher = asyncio.ensure_future(watch(layout, done, seen, untrusted))
    try:
        async with rotation_worker(temporal_client, layout.settings):
            handle = await start(temporal_client, layout.settings)
            result = await handle.result()
    finally:
        done.set()
        await watcher
    assert untrusted == []
    new = fingerprint(x509.load_pem_x509_certificate(layout.ca.ca_cert.read_bytes()))
    assert (result.old, result.new) == (old, new)  # type: ignore[attr-defined]
    assert old != new
    assert set(result.leaves_renewed) == set(LEAVES)  # type: ignore[attr-defined]
    # The bundles went old → old + new → new, each step in every bundle.
    states = [bundles[0] for bundles in seen]
    assert states[0] == {old}
    assert {old, new} in states
    assert states[-1] == {new}
    other_team = fingerprint(UNRELATED.certificate)
    assert all(other_team in bundles[1] for bundles in seen)  # never touched
    assert seen[-1][1] == {new, other_team}
    # The old CA's key is archived, never deleted; the staging is gone.
    archive = layout.ca.state_directory / "archive"
    assert (archive / f"{old}.key").stat().st_mode & 0o077 == 0
    assert not (layout.ca.state_directory / "next.key").exists()
    assert not (layout.ca.state_directory / "previous.crt").exists()
    issuers = set(layout.leaf_issuers().values())
    assert issuers == {"CN=rotation test CA 2"}
    description = await handle.describe()
    assert description.status is not None


async def test_a_second_run_is_refused_with_the_running_ones_id(temporal_client: Client,
                                                                layout: Layout) -> None:
    issue_leaves(layout)
    async with rotation_worker(temporal_client, layout.settings):
        first = await start(temporal_client, layout.settings, "ca-rotation-first-" +
                            uuid.uuid4().hex[:6])
        await asyncio.sleep(1.0)  # first is soaking
        second = await start(temporal_client, layout.settings)
        with pytest.raises(WorkflowFailureError) as refused:
            await second.result()
        cause = refused.value.cause
        assert isinstance(cause, ActivityError)
        assert isinstance(cause.cause, ApplicationError)
        assert cause.cause.type == failures.CA_ROTATION_IN_PROGRESS
        assert first.id in str(cause.cause)
        await first.result()


async def test_a_worker_killed_mid_rotation_resumes_without_repeating(
        temporal_client: Client, layout: Layout) -> None:
    """Stopped while soaking, and again right after the switch: a new worker finishes the
    same run; one successor, one archived CA, the leaves on the new CA."""
    issue_leaves(layout)
    async with rotation_worker(temporal_client, layout.settings):
        handle = await start(temporal_client, layout.settings)
        await until(lambda: len(layout.bundles()[0]) == 2)  # the overlap is out: soaking
    staged = layout.bundles()[0]
    async with rotation_worker(temporal_client, layout.settings):
        await until((layout.ca.state_directory / "switched_at").exists)
    assert layout.bundles()[0] == staged  # the same successor: nothing made twice
    async with rotation_worker(temporal_client, layout.settings):
        result = await handle.result()
    assert {result.new} < staged  # type: ignore[attr-defined]
    assert len(list((layout.ca.state_directory / "archive").glob("*.key"))) == 1
    assert set(layout.leaf_issuers().values()) == {"CN=rotation test CA 2"}


async def test_withdrawing_trust_early_is_refused_whatever_the_caller(layout: Layout) -> None:
    """The last step called directly (as a crafted workflow could): before the switch, and
    after it but before the retire time, it is refused and every bundle keeps both CAs."""
    issue_leaves(layout)
    rotations = CaRotations(layout.settings)
    from keyward.services.authorities import Owner  # noqa: PLC0415

    old = fingerprint(x509.load_pem_x509_certificate(layout.ca.ca_cert.read_bytes()))
    new = rotations.stage("local", Owner("test", "run")).fingerprint
    rotations.publish("local", "overlap")
    environment = ActivityEnvironment()
    activities = CaRotationActivities(layout.settings)
    with pytest.raises(ApplicationError) as before_switch:
        await environment.run(activities.publish, BundleRequest("local", "final"))
    assert before_switch.value.type == failures.CA_ROTATION_REFUSED
    assert "has not switched" in str(before_switch.value)
    layout.ca.trust_bundles[0].write_bytes(layout.ca.ca_cert.read_bytes())  # lost the successor
    with pytest.raises(ApplicationError) as unpublished:
        await environment.run(activities.activate, CaRef("local"))
    assert "not yet in" in str(unpublished.value)
    assert not unpublished.value.non_retryable
    rotations.publish("local", "overlap")
    rotations.activate("local")
    with pytest.raises(ApplicationError) as too_early:
        await environment.run(activities.publish, BundleRequest("local", "final"))
    assert "not before" in str(too_early.value)
    assert not too_early.value.non_retryable  # retried: trust stays until then
    assert all({old, new} <= bundle for bundle in layout.bundles())
    later = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(Exception, match="do not chain to the new CA"):
        rotations.publish("local", "final", now=later)  # the leaves are still old-CA ones
    assert all({old, new} <= bundle for bundle in layout.bundles())
