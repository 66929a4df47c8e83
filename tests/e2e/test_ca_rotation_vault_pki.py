"""CA rotation with ``backend = "vault-pki"``: the successor is a new issuer of a PKI mount
of the real dev Vault (through hvac), a root or an intermediate signed by a parent mount.

Each step on its own (stage found again on a rerun, the switch refused until every bundle
holds the successor, leaves renewed from the new issuer, the old CA leaving the bundles only
after the retire time, the old issuer never deleted), the refusals that keep issuance from
switching early, and one whole ``RotateCertificateAuthority`` run on the Temporal dev server
with short lifetimes, watched from outside for a moment in which a live leaf is untrusted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
import pytest
from cryptography import x509
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.authorities import CaRotationActivities
from activities.certificates import CertificateActivities
from keyward.authorities.state import Owner, RotationState
from keyward.authorities.vault_pki import NEXT_ISSUER
from keyward.config import CertificateSettings, Settings, TemporalSettings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.contracts import failures
from keyward.contracts.authorities import BundleRequest, CaRef, CaRotationInput
from keyward.errors import ConfigError, KeywardError
from keyward.issuers.factory import issuer_factory
from keyward.pki.install import read_installed
from keyward.services.authorities import CaRotations
from keyward.trust.base import fingerprint
from tests.conftest import VaultEndpoint
from tests.e2e.ca_rotation_worker import issue_leaves as issue_with
from tests.e2e.ca_rotation_worker import leaf_issuers as installed_issuers
from tests.e2e.ca_rotation_worker import rotation_worker as shared_rotation_worker
from tests.support import json_logs
from workflows.rotate_ca import RotateCertificateAuthority

LEAVES = ("worker", "frontend")
#: Leaves live 10.8 s, the grace is 1.8 s: the old CA may retire 12.6 s after the switch.
LIFETIME_HOURS = 0.003
GRACE_HOURS = 0.0005


@dataclasses.dataclass
class Pki:
    client: hvac.Client
    mount: str
    role: str
    root: tuple[str, ...] = ()  # the parent mount, for intermediates

    def issuers(self, mount: str | None = None) -> dict[str, dict[str, Any]]:
        listed = self.client.secrets.pki.list_issuers(mount_point=mount or self.mount)
        return dict(listed["data"]["key_info"])

    def default_issuer(self) -> str:
        config = self.client.read(f"{self.mount}/config/issuers")
        return str(config["data"]["default"])

    def certificate(self, issuer: str, mount: str | None = None) -> x509.Certificate:
        data = self.client.secrets.pki.read_issuer(issuer, mount_point=mount or self.mount)
        return x509.load_pem_x509_certificate(data["data"]["certificate"].encode())


def new_mount(client: hvac.Client, prefix: str = "pki") -> str:
    mount = f"{prefix}-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("pki", path=mount)
    return mount


def make_role(client: hvac.Client, mount: str, **params: Any) -> str:
    name = "leaves"
    client.secrets.pki.create_or_update_role(name, extra_params={
        "allowed_domains": "keyward.test", "allow_subdomains": True, "key_type": "ec",
        "key_bits": 256, **params}, mount_point=mount)
    return name


@pytest.fixture
def pki(vault_client: hvac.Client) -> Pki:
    """A PKI mount with one root issuer (named "original") and a role that issues from the
    mount's default issuer."""
    mount = new_mount(vault_client)
    vault_client.write(f"{mount}/issuers/generate/root/internal",
                       common_name="vault rotation CA", issuer_name="original",
                       key_type="ec", key_bits=256, ttl="720h")
    return Pki(vault_client, mount, make_role(vault_client, mount))


@pytest.fixture
def intermediate_pki(vault_client: hvac.Client) -> Pki:
    """A root mount, and a mount whose default issuer is an intermediate signed by it."""
    root = new_mount(vault_client, "root")
    vault_client.write(f"{root}/issuers/generate/root/internal", common_name="parent root",
                       key_type="ec", key_bits=256, ttl="720h")
    mount = new_mount(vault_client, "int")
    csr = vault_client.write(f"{mount}/intermediate/generate/internal",
                             common_name="first intermediate", key_type="ec",
                             key_bits=256)["data"]["csr"]
    signed = vault_client.secrets.pki.sign_intermediate(
        csr, "first intermediate", extra_params={"ttl": "480h"}, mount_point=root)["data"]
    vault_client.secrets.pki.set_signed_intermediate(signed["certificate"], mount_point=mount)
    return Pki(vault_client, mount, make_role(vault_client, mount), root=(root,))


def settings_for(tmp_path: Path, pki: Pki, task_queue: str = "unused",
                 **overrides: Any) -> Settings:
    certificates = {
        name: CertificateSettings(common_name=f"{name}.keyward.test",
                                  dns_names=(f"{name}.keyward.test",),
                                  usage="server" if name == "frontend" else "client",
                                  issuer="vault-pki", vault_pki_mount=pki.mount,
                                  vault_pki_role=pki.role,
                                  directory=tmp_path / name, lifetime_hours=LIFETIME_HOURS)
        for name in LEAVES}
    values: dict[str, Any] = {
        "backend": "vault-pki", "vault_pki_mount": pki.mount,
        "vault_pki_parent_mount": pki.root[0] if pki.root else None,
        "common_name": "vault rotation CA 2", "lifetime_days": 20,
        "trust_bundles": (tmp_path / "server" / "client-ca.pem",
                          tmp_path / "worker-trust" / "server-ca.pem"),
        "soak_seconds": 2.0, "grace_hours": GRACE_HOURS, "state_dir": tmp_path / "state",
        **overrides}
    authority = CertificateAuthoritySettings(**values)
    active = pki.certificate("default")
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    for path in authority.trust_bundles:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(active.public_bytes(serialization.Encoding.PEM))
    return dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                               certificates=certificates,
                               certificate_authorities={"pki": authority})


def bundles(settings: Settings) -> list[set[str]]:
    found = []
    for path in settings.certificate_authorities["pki"].trust_bundles:
        found.append({fingerprint(c) for c in x509.load_pem_x509_certificates(
            path.read_bytes())})
    return found


def issue_leaves(settings: Settings, client: hvac.Client) -> None:
    issue_with(CertificateActivities(settings, issuer_factory(client)), LEAVES)


def leaf_issuers(settings: Settings) -> set[str]:
    return installed_issuers(settings, LEAVES)


# -- the steps --------------------------------------------------------------------------------


def test_staging_makes_one_named_issuer_and_a_rerun_finds_it(tmp_path: Path, pki: Pki) -> None:
    """The successor is a new root issuer named from the rotation; staging again (a retry,
    a resumed worker, a new run taking over) returns it and makes nothing more; issuance
    stays with the old default until the switch."""
    settings = settings_for(tmp_path, pki)
    rotations = CaRotations(settings, vault=pki.client)
    original = pki.default_issuer()

    first = rotations.stage("pki", Owner("wf", "run-1"))
    again = rotations.stage("pki", Owner("wf", "run-2"))

    assert first == again
    issuers = pki.issuers()
    assert len(issuers) == 2
    name = (tmp_path / "state" / NEXT_ISSUER).read_text()
    assert name.startswith("pki-")
    named = [issuer for issuer, info in issuers.items() if info["issuer_name"] == name]
    assert len(named) == 1
    successor = pki.certificate(named[0])
    assert fingerprint(successor) == first.fingerprint
    assert successor.subject.rfc4514_string() == "CN=vault rotation CA 2"
    successor.verify_directly_issued_by(successor)  # a root
    assert pki.default_issuer() == original  # nothing issues from it yet


def test_the_switch_is_refused_until_every_bundle_holds_the_successor(
        tmp_path: Path, pki: Pki) -> None:
    """Activating before the overlap bundle is out is refused (retryably) and changes
    nothing in Vault; after it, the successor is the mount's default issuer and the old
    issuer is still there, with its key."""
    settings = settings_for(tmp_path, pki)
    rotations = CaRotations(settings, vault=pki.client)
    original = pki.default_issuer()
    rotations.stage("pki", Owner("wf", "run"))
    activities = CaRotationActivities(settings, vault=pki.client)

    with pytest.raises(ApplicationError) as refused:
        asyncio.run(ActivityEnvironment().run(activities.activate, CaRef("pki")))
    assert "not yet in" in str(refused.value)
    assert not refused.value.non_retryable
    assert pki.default_issuer() == original

    rotations.publish("pki", "overlap")
    switched = rotations.activate("pki")
    rotations.activate("pki")  # again: nothing more happens

    issuers = pki.issuers()
    assert pki.default_issuer() != original
    assert fingerprint(pki.certificate(pki.default_issuer())) == switched.fingerprint
    assert original in issuers  # kept...
    assert issuers[original]["key_id"]  # ...with its key
    assert not (tmp_path / "state" / NEXT_ISSUER).exists()


def test_a_switch_interrupted_before_it_was_recorded_is_finished_by_the_rerun(
        tmp_path: Path, pki: Pki) -> None:
    """The worker died after Vault's default moved and before switched_at was written: the
    successor is still the staged one, and activating again records the switch (from then
    on, not earlier) and forgets the staging, the replaced CA kept for the final bundle."""
    settings = settings_for(tmp_path, pki)
    rotations = CaRotations(settings, vault=pki.client)
    old = pki.certificate("default")
    staged = rotations.stage("pki", Owner("wf", "run"))
    rotations.publish("pki", "overlap")
    state = RotationState(tmp_path / "state")
    state.set_previous(old)  # what activate does first
    rotations.backend("pki").switch()  # ...and then the worker died

    plan = rotations.plan("pki")
    assert plan.staged == staged
    assert plan.switched_at is None
    assert plan.active == staged
    before = datetime.now(UTC)
    assert rotations.activate("pki") == staged

    switched_at = state.switched_at()
    assert switched_at is not None
    assert switched_at >= before
    assert rotations.plan("pki").staged is None
    assert state.previous() == old


def test_leaves_renewed_after_the_switch_chain_to_the_new_issuer_and_the_old_ca_retires_late(
        tmp_path: Path, pki: Pki) -> None:
    """Before renewal the leaves are the old CA's; once renewed through <mount>/issue/<role>
    they are directly issued by the successor. The old CA leaves the bundles only after the
    retire time, and its issuer stays in the mount."""
    settings = settings_for(tmp_path, pki)
    issue_leaves(settings, pki.client)
    rotations = CaRotations(settings, vault=pki.client)
    original = pki.default_issuer()
    old = fingerprint(pki.certificate(original))
    new = rotations.stage("pki", Owner("wf", "run")).fingerprint
    rotations.publish("pki", "overlap")
    rotations.activate("pki")

    assert not rotations.verify_leaves("pki").all_good
    with pytest.raises(KeywardError, match="not before"):
        rotations.publish("pki", "final")
    issue_leaves(settings, pki.client)
    assert rotations.verify_leaves("pki").all_good
    assert leaf_issuers(settings) == {"CN=vault rotation CA 2"}
    with pytest.raises(KeywardError, match="not before"):
        rotations.publish("pki", "final")
    assert all(bundle == {old, new} for bundle in bundles(settings))

    rotations.publish("pki", "final", now=datetime.now(UTC) + timedelta(minutes=1))

    assert all(bundle == {new} for bundle in bundles(settings))
    assert original in pki.issuers()
    assert fingerprint(pki.certificate(original)) == old


def test_an_intermediate_successor_is_signed_by_the_parent_mount(
        tmp_path: Path, intermediate_pki: Pki) -> None:
    """With vault_pki_parent_mount the successor is an intermediate the parent's default
    issuer signs, imported and named in the mount; a rerun finds it; leaves issued after
    the switch carry it and chain to the parent root."""
    pki = intermediate_pki
    settings = settings_for(tmp_path, pki)
    rotations = CaRotations(settings, vault=pki.client)
    before = set(pki.issuers())

    staged = rotations.stage("pki", Owner("wf", "run"))
    assert rotations.stage("pki", Owner("wf", "run")) == staged

    added = set(pki.issuers()) - before
    mine = [issuer for issuer in added if pki.issuers()[issuer]["key_id"]]
    assert len(mine) == 1
    successor = pki.certificate(mine[0])
    parent = pki.certificate("default", mount=pki.root[0])
    successor.verify_directly_issued_by(parent)
    assert successor.subject != parent.subject
    rotations.publish("pki", "overlap")
    rotations.activate("pki")
    issue_leaves(settings, pki.client)
    assert rotations.verify_leaves("pki").all_good
    pair = read_installed(tmp_path / "worker")
    assert pair is not None
    chain = x509.load_pem_x509_certificates(pair.certificate_pem)
    assert fingerprint(chain[1]) == staged.fingerprint  # the leaf carries the intermediate
    assert pair.ca_pem is not None
    assert fingerprint(x509.load_pem_x509_certificate(pair.ca_pem)) == fingerprint(parent)


def test_a_rerun_after_a_crash_mid_intermediate_reuses_the_key_it_made(
        tmp_path: Path, intermediate_pki: Pki) -> None:
    """The successor's name is in the state before anything is made; an attempt that made
    the key and died is finished with that key (a CSR for it), not with a second one."""
    pki = intermediate_pki
    settings = settings_for(tmp_path, pki)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / NEXT_ISSUER).write_text("pki-crashed")
    made = pki.client.write(f"{pki.mount}/intermediate/generate/internal",
                            common_name="half made", key_name="pki-crashed", key_type="ec",
                            key_bits=256)["data"]
    keys_before = pki.client.list(f"{pki.mount}/keys")["data"]["keys"]

    staged = CaRotations(settings, vault=pki.client).stage("pki", Owner("wf", "run"))

    assert pki.client.list(f"{pki.mount}/keys")["data"]["keys"] == keys_before
    named = [issuer for issuer, info in pki.issuers().items()
             if info["issuer_name"] == "pki-crashed"]
    assert len(named) == 1
    assert pki.issuers()[named[0]]["key_id"] == made["key_id"]
    assert fingerprint(pki.certificate(named[0])) == staged.fingerprint


class OlderListAnswers:
    """The real client, whose LIST issuers answers lose ``key_id`` (as Vaults before it was
    added to the listing answer): everything else reaches the dev Vault unchanged."""

    def __init__(self, client: hvac.Client) -> None:
        self._client = client

    @property
    def adapter(self) -> OlderListAnswers:
        return self

    def get(self, url: str) -> Any:
        return self._client.adapter.get(url)

    def post(self, url: str, json: Any = None) -> Any:
        return self._client.adapter.post(url, json=json)

    def list(self, url: str) -> Any:
        answer = self._client.adapter.list(url)
        for info in answer["data"].get("key_info", {}).values():
            if url.endswith("/issuers"):
                info.pop("key_id", None)
        return answer


def test_an_intermediate_is_found_by_its_key_when_the_listing_omits_keys(
        tmp_path: Path, intermediate_pki: Pki) -> None:
    """Without key_id in LIST issuers, the issuer holding the successor's key is found by
    reading each issuer, so the signed successor is named and not made twice."""
    pki = intermediate_pki
    settings = settings_for(tmp_path, pki)
    rotations = CaRotations(settings, vault=OlderListAnswers(pki.client))

    staged = rotations.stage("pki", Owner("wf", "run"))
    again = rotations.stage("pki", Owner("wf", "run"))

    assert staged == again
    named = [issuer for issuer, info in pki.issuers().items()
             if info["issuer_name"].startswith("pki-")]
    assert len(named) == 1
    assert fingerprint(pki.certificate(named[0])) == staged.fingerprint


def test_a_mount_whose_default_follows_the_latest_issuer_is_refused(
        tmp_path: Path, pki: Pki) -> None:
    """Vault would switch issuance the moment the successor exists: staging is refused,
    non-retryably, and nothing is made."""
    pki.client.write(f"{pki.mount}/config/issuers", default=pki.default_issuer(),
                     default_follows_latest_issuer=True)
    settings = settings_for(tmp_path, pki)

    with pytest.raises(KeywardError, match="default_follows_latest_issuer") as refused:
        CaRotations(settings, vault=pki.client).stage("pki", Owner("wf", "run"))
    assert not refused.value.retryable
    assert refused.value.failure_type == failures.CA_ROTATION_REFUSED
    assert len(pki.issuers()) == 1


def test_a_role_pinned_to_an_issuer_is_refused_before_anything_is_made(
        tmp_path: Path, pki: Pki) -> None:
    """A leaf's role with issuer_ref set to the old issuer would keep issuing from it after
    the switch: refused, naming the role."""
    make_role(pki.client, pki.mount, issuer_ref="original")
    settings = settings_for(tmp_path, pki)

    with pytest.raises(KeywardError, match="issuer_ref=default"):
        CaRotations(settings, vault=pki.client).stage("pki", Owner("wf", "run"))
    assert len(pki.issuers()) == 1


def test_a_successor_vault_made_shorter_than_asked_is_reported(tmp_path: Path,
                                                                pki: Pki) -> None:
    """Vault caps a CA's TTL at the mount's maximum (32 days untuned) with only a warning in
    its answer: keyward logs it, naming the mount and how to tune it."""
    settings = settings_for(tmp_path, pki, lifetime_days=365)
    with json_logs() as stream:
        staged = CaRotations(settings, vault=pki.client).stage("pki", Owner("wf", "run"))
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    warned = [line for line in lines if line.get("event") == "the successor CA lives shorter "
              "than lifetime_days"]
    assert len(warned) == 1
    assert warned[0]["mount"] == pki.mount
    assert warned[0]["not_after"] == staged.not_after.isoformat()
    assert pki.mount in warned[0]["hint"]


def test_a_token_vault_refuses_fails_with_vaults_own_type(
        tmp_path: Path, pki: Pki, vault: VaultEndpoint) -> None:
    """A worker token Vault does not accept: the step fails as VaultForbidden (not
    retried), naming the mount, and nothing is made."""
    refused_token = hvac.Client(url=vault.address, token=f"hvs.{uuid.uuid4().hex}")
    try:
        with pytest.raises(KeywardError) as refused:
            CaRotations(settings_for(tmp_path, pki), vault=refused_token).stage(
                "pki", Owner("wf", "run"))
    finally:
        refused_token.adapter.close()
    assert refused.value.failure_type == failures.VAULT_FORBIDDEN
    assert not refused.value.retryable
    assert pki.mount in str(refused.value)
    assert len(pki.issuers()) == 1


def test_a_vault_pki_ca_without_the_workers_vault_is_refused(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(KeywardError, match="needs the worker's Vault connection"):
        CaRotations(settings_for(tmp_path, pki)).plan("pki")


@pytest.mark.parametrize(("overrides", "setting", "text"), [
    ({"vault_pki_mount": "../sys"}, "vault_pki_mount", "must be a mount path"),
    ({"vault_pki_parent_mount": "pki/../sys"}, "vault_pki_parent_mount",
     "must be a mount path"),
    ({"vault_pki_mount": None}, "vault_pki_mount", "required with backend = 'vault-pki'"),
    ({"state_dir": None}, "state_dir", "required with backend = 'vault-pki'"),
    ({"ca_cert": "/etc/ca.crt"}, "ca_cert", "does not apply with backend = 'vault-pki'"),
    ({"azure_exportable": True}, "azure_exportable", "does not apply"),
])
def test_vault_pki_settings_are_checked_at_load(tmp_path: Path, pki: Pki,
                                                overrides: dict[str, Any], setting: str,
                                                text: str) -> None:
    with pytest.raises(ConfigError, match=text) as refused:
        settings_for(tmp_path, pki, **overrides)
    assert setting in str(refused.value)


def test_the_parent_mount_cannot_be_the_mount_itself(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ConfigError, match="another mount"):
        settings_for(tmp_path, pki, vault_pki_parent_mount=pki.mount)


# -- the whole workflow -----------------------------------------------------------------------


@asynccontextmanager
async def rotation_worker(client: Client, settings: Settings,
                          vault: hvac.Client) -> AsyncIterator[None]:
    async with shared_rotation_worker(
            client, settings, CertificateActivities(settings, issuer_factory(vault)),
            CaRotationActivities(settings, vault=vault)):
        yield


@pytest.fixture
def own_vault_client(vault: VaultEndpoint) -> Iterator[hvac.Client]:
    """The worker's own client (hvac's session is not shared with the test's reads)."""
    client = vault.client()
    yield client
    client.adapter.close()


async def test_a_whole_rotation_on_vault_pki_never_leaves_a_live_leaf_untrusted(
        tmp_path: Path, pki: Pki, temporal_client: Client, task_queue: str,
        own_vault_client: hvac.Client) -> None:
    """RotateCertificateAuthority with backend = "vault-pki": bundles old → old + new → new,
    every leaf chaining at every moment to a CA every bundle holds, the leaves renewed from
    the new issuer, the old issuer still in the mount."""
    settings = settings_for(tmp_path, pki, task_queue)
    issue_leaves(settings, pki.client)
    original = pki.default_issuer()
    subjects = {pki.certificate(original).subject.rfc4514_string():
                fingerprint(pki.certificate(original))}
    seen: list[tuple[frozenset[str], ...]] = []
    untrusted: list[str] = []
    done = asyncio.Event()

    def look() -> None:
        now = tuple(frozenset(bundle) for bundle in bundles(settings))
        if not seen or now != seen[-1]:
            seen.append(now)
        for issuer, info in pki.issuers().items():
            if info["issuer_name"] != "original":
                cert = pki.certificate(issuer)
                subjects.setdefault(cert.subject.rfc4514_string(), fingerprint(cert))
        for issuer in leaf_issuers(settings):
            signer = subjects.get(issuer)
            if signer is None or any(signer not in bundle for bundle in now):
                untrusted.append(f"{issuer} at {datetime.now(UTC)}")

    async def watch() -> None:
        while not done.is_set():
            await asyncio.to_thread(look)  # hvac blocks: not on the worker's event loop
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    try:
        async with rotation_worker(temporal_client, settings, own_vault_client):
            handle = await temporal_client.start_workflow(
                RotateCertificateAuthority.run, CaRotationInput("pki"),
                id=f"ca-rotation-{uuid.uuid4()}", task_queue=task_queue,
                execution_timeout=timedelta(minutes=2))
            result = await handle.result()
    finally:
        done.set()
        await watcher
    final = tuple(frozenset(bundle) for bundle in bundles(settings))
    if final != seen[-1]:  # the watcher may stop between its last look and the end
        seen.append(final)
    assert untrusted == []
    old, new = fingerprint(pki.certificate(original)), result.new
    assert result.old == old != new
    assert set(result.leaves_renewed) == set(LEAVES)
    states = [bundle[0] for bundle in seen]
    assert states[0] == {old}
    assert {old, new} in states
    assert states[-1] == {new}
    assert fingerprint(pki.certificate(pki.default_issuer())) == new
    assert original in pki.issuers()
    assert leaf_issuers(settings) == {"CN=vault rotation CA 2"}
    description = await handle.describe()
    assert description.status is not None


async def test_a_workflow_input_cannot_reach_a_mount_the_settings_do_not_name(
        tmp_path: Path, pki: Pki) -> None:
    """The input is a CA name only: an unknown one is refused, and nothing in Vault changes."""
    settings = settings_for(tmp_path, pki)
    activities = CaRotationActivities(settings, vault=pki.client)
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.plan, CaRef("../sys"))
    assert refused.value.type == failures.UNKNOWN_CERTIFICATE_AUTHORITY
    with pytest.raises(ApplicationError):
        await ActivityEnvironment().run(activities.publish, BundleRequest("pki", "final"))
    assert len(pki.issuers()) == 1


async def test_a_worker_stopped_mid_rotation_resumes_without_making_a_second_issuer(
        tmp_path: Path, pki: Pki, temporal_client: Client, task_queue: str,
        own_vault_client: hvac.Client) -> None:
    """Stopped while soaking, and again right after the switch: new workers finish the same
    run with the same successor; the mount holds exactly one issuer more than before."""
    settings = settings_for(tmp_path, pki, task_queue)
    issue_leaves(settings, pki.client)
    state = tmp_path / "state"

    async def until(condition: Any) -> None:
        for _ in range(600):
            if condition():
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the rotation did not get there")

    async with rotation_worker(temporal_client, settings, own_vault_client):
        handle = await temporal_client.start_workflow(
            RotateCertificateAuthority.run, CaRotationInput("pki"),
            id=f"ca-rotation-{uuid.uuid4()}", task_queue=task_queue,
            execution_timeout=timedelta(minutes=2))
        await until(lambda: len(bundles(settings)[0]) == 2)  # the overlap is out: soaking
    overlap = bundles(settings)[0]
    async with rotation_worker(temporal_client, settings, own_vault_client):
        await until((state / "switched_at").exists)
    assert bundles(settings)[0] == overlap
    async with rotation_worker(temporal_client, settings, own_vault_client):
        result = await handle.result()
    assert {result.new} < overlap
    assert len(pki.issuers()) == 2
    assert leaf_issuers(settings) == {"CN=vault rotation CA 2"}
