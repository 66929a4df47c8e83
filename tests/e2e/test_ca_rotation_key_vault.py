"""CA rotation with ``backend = "azure-keyvault"``: the CA lives in Key Vault (made by
keyward.azure.ca, its key kept there), through the real Azure SDK against the emulator.

The successor is a new Key Vault certificate (a new name: the active one's latest version,
which every reader sees, does not change when the successor is made); the leaves are Key
Vault certificates whose CSR the active CA signs (``azure_mode = "key-vault-ca"``). Each
step, and one whole ``RotateCertificateAuthority`` run on the Temporal dev server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.certificates import CertificateClient
from cryptography import x509
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.authorities import CaRotationActivities
from activities.certificates import CertificateActivities
from keyward.authorities.azure_keyvault import ACTIVE_CERTIFICATE, NEXT_CERTIFICATE
from keyward.authorities.state import Owner, RotationState
from keyward.azure.ca import CaRequest, create_ca
from keyward.config import CertificateSettings, Settings, TemporalSettings
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.contracts.authorities import CaRef, CaRotationInput
from keyward.errors import ConfigError, KeywardError
from keyward.issuers.factory import issuer_factory
from keyward.services.authorities import CaRotations
from keyward.trust.base import fingerprint
from keyward_devstack.processes import free_port
from tests.e2e.ca_rotation_worker import issue_leaves as issue_with
from tests.e2e.ca_rotation_worker import leaf_issuers as installed_issuers
from tests.e2e.ca_rotation_worker import rotation_worker as shared_rotation_worker
from tests.emulators.azure_keyvault import KeyVaultEmulator, RunningVault, serve
from tests.issuers.akv_support import TOKEN, FixedTokenCredential, connection, forget_challenges
from tests.tls_material import ServerTLS, make_server_tls
from workflows.rotate_ca import RotateCertificateAuthority

LEAVES = ("worker", "frontend")
LIFETIME_HOURS = 0.003
GRACE_HOURS = 0.0005
BASE = "keyward-ca"


@pytest.fixture(autouse=True)
def _forget_challenges() -> None:
    forget_challenges()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTLS:
    return make_server_tls(Path(tmp_path_factory.mktemp("akv-rotation-tls")))


@pytest.fixture
def vault(tls: ServerTLS) -> Iterator[RunningVault]:
    with serve(KeyVaultEmulator(accepted_tokens={TOKEN}), tls, port=free_port()) as running:
        yield running


def options(vault: RunningVault) -> dict[str, Any]:
    return {"credential": FixedTokenCredential(TOKEN), "client_kwargs": connection(vault)}


@pytest.fixture
def original(vault: RunningVault) -> x509.Certificate:
    """The CA the rotation starts from, made in the vault as keyward makes one."""
    return create_ca(vault.url, BASE, CaRequest(common_name="key vault CA",
                                                lifetime=timedelta(days=30)),
                     polling_interval=0.01, **options(vault)).certificate


def settings_for(tmp_path: Path, vault: RunningVault, original: x509.Certificate,
                 task_queue: str = "unused", **overrides: Any) -> Settings:
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415

    certificates = {
        name: CertificateSettings(common_name=f"{name}.keyward.test",
                                  dns_names=(f"{name}.keyward.test",),
                                  usage="server" if name == "frontend" else "client",
                                  issuer="azure-keyvault", azure_vault_url=vault.url,
                                  azure_certificate_name=f"leaf-{name}",
                                  azure_mode="key-vault-ca", azure_ca="kv",
                                  directory=tmp_path / name, lifetime_hours=LIFETIME_HOURS)
        for name in LEAVES}
    values: dict[str, Any] = {
        "backend": "azure-keyvault", "azure_vault_url": vault.url,
        "azure_certificate_name": BASE, "common_name": "key vault CA 2", "lifetime_days": 20,
        "trust_bundles": (tmp_path / "server" / "client-ca.pem",), "soak_seconds": 2.0,
        "grace_hours": GRACE_HOURS, "state_dir": tmp_path / "state", **overrides}
    authority = CertificateAuthoritySettings(**values)
    for path in authority.trust_bundles:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(original.public_bytes(serialization.Encoding.PEM))
    return dataclasses.replace(Settings(), temporal=TemporalSettings(task_queue=task_queue),
                               certificates=certificates,
                               certificate_authorities={"kv": authority})


def rotation_options(vault: RunningVault) -> dict[str, Any]:
    """For the CA backend: the client's, and a short wait between polls of a creation."""
    return {**options(vault), "polling_interval": 0.01}


def rotations(settings: Settings, vault: RunningVault) -> CaRotations:
    return CaRotations(settings, azure_options=rotation_options(vault))


def bundle(settings: Settings) -> set[str]:
    path = settings.certificate_authorities["kv"].trust_bundles[0]
    return {fingerprint(c) for c in x509.load_pem_x509_certificates(path.read_bytes())}


def issue_leaves(settings: Settings, vault: RunningVault) -> None:
    issue_with(CertificateActivities(settings, issuer_factory(
        None, azure_options=options(vault), authorities=settings.certificate_authorities)),
        LEAVES)


def leaf_issuers(settings: Settings) -> set[str]:
    return installed_issuers(settings, LEAVES)


def current_in_vault(vault: RunningVault, name: str) -> x509.Certificate:
    with CertificateClient(vault.url, FixedTokenCredential(TOKEN), **connection(vault)) as client:
        return x509.load_der_x509_certificate(bytes(client.get_certificate(name).cer or b""))


# -- the steps --------------------------------------------------------------------------------


def test_the_successor_is_a_new_certificate_made_once_and_the_active_one_is_untouched(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate) -> None:
    """Staging makes a CA certificate under a new name, with its key in Key Vault; a rerun
    returns it; the active certificate's latest version (what readers see) is unchanged."""
    settings = settings_for(tmp_path, vault, original)
    steps = rotations(settings, vault)

    first = steps.stage("kv", Owner("wf", "run-1"))
    again = steps.stage("kv", Owner("wf", "run-2"))

    assert first == again
    name = (tmp_path / "state" / NEXT_CERTIFICATE).read_text()
    assert name.startswith(f"{BASE}-")
    assert set(vault.emulator.certificates) == {BASE, name}
    assert len(vault.emulator.certificates[name].versions) == 2  # the key's seed + the CA
    assert fingerprint(current_in_vault(vault, name)) == first.fingerprint
    assert current_in_vault(vault, BASE) == original
    assert vault.emulator.policy_of(name)["key_props"]["exportable"] is False
    successor = current_in_vault(vault, name)
    successor.verify_directly_issued_by(successor)
    assert successor.subject.rfc4514_string() == "CN=key vault CA 2"


def test_a_creation_that_died_after_its_seed_is_finished_on_the_rerun(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate) -> None:
    """A successor name whose certificate is no CA yet (only the seed version) is not taken
    for the successor: the rerun makes the CA under that same name."""
    settings = settings_for(tmp_path, vault, original)
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / NEXT_CERTIFICATE).write_text(f"{BASE}-halfway")
    from azure.keyvault.certificates import CertificatePolicy  # noqa: PLC0415

    with CertificateClient(vault.url, FixedTokenCredential(TOKEN), **connection(vault)) as client:
        client.begin_create_certificate(f"{BASE}-halfway", CertificatePolicy(
            issuer_name="Self", subject="CN=seed", validity_in_months=1),
            _polling_interval=0.01).result()

    staged = rotations(settings, vault).stage("kv", Owner("wf", "run"))

    assert fingerprint(current_in_vault(vault, f"{BASE}-halfway")) == staged.fingerprint
    assert set(vault.emulator.certificates) == {BASE, f"{BASE}-halfway"}


def test_the_switch_waits_for_the_bundles_then_leaves_follow_the_successor(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate) -> None:
    """Refused (retryably) before the bundle holds the successor; after the switch, leaves
    renewed through Key Vault are signed by the successor (through the vault's sign), the
    old CA leaves the bundle only after the retire time, and the old CA stays in the vault."""
    settings = settings_for(tmp_path, vault, original)
    issue_leaves(settings, vault)
    assert leaf_issuers(settings) == {"CN=key vault CA"}
    steps = rotations(settings, vault)
    new = steps.stage("kv", Owner("wf", "run")).fingerprint
    activities = CaRotationActivities(settings, azure_options=rotation_options(vault))

    with pytest.raises(ApplicationError) as refused:
        asyncio.run(ActivityEnvironment().run(activities.activate, CaRef("kv")))
    assert "not yet in" in str(refused.value)
    assert not refused.value.non_retryable
    assert not (tmp_path / "state" / ACTIVE_CERTIFICATE).exists()

    steps.publish("kv", "overlap")
    assert steps.activate("kv").fingerprint == new
    assert steps.activate("kv").fingerprint == new  # again: nothing more

    assert not steps.verify_leaves("kv").all_good
    issue_leaves(settings, vault)
    assert leaf_issuers(settings) == {"CN=key vault CA 2"}
    assert steps.verify_leaves("kv").all_good
    with pytest.raises(KeywardError, match="not before"):
        steps.publish("kv", "final")
    assert bundle(settings) == {fingerprint(original), new}

    steps.publish("kv", "final", now=datetime.now(UTC) + timedelta(minutes=1))

    assert bundle(settings) == {new}
    assert current_in_vault(vault, BASE) == original  # never deleted, nor a version added
    assert len(vault.emulator.certificates[BASE].versions) == 2


def test_a_switch_interrupted_before_it_was_recorded_is_finished_by_the_rerun(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate) -> None:
    """The active-certificate file was written, switched_at was not: the rerun records the
    switch and forgets the staging; the replaced CA is kept for the final bundle."""
    settings = settings_for(tmp_path, vault, original)
    steps = rotations(settings, vault)
    staged = steps.stage("kv", Owner("wf", "run"))
    steps.publish("kv", "overlap")
    state = RotationState(tmp_path / "state")
    state.set_previous(original)
    steps.backend("kv").switch()

    assert steps.plan("kv").active == staged
    assert steps.plan("kv").switched_at is None
    assert steps.activate("kv") == staged

    assert state.switched_at() is not None
    assert steps.plan("kv").staged is None
    assert state.previous() == original


def test_an_exportable_successor_signs_locally(tmp_path: Path, vault: RunningVault,
                                               original: x509.Certificate) -> None:
    """azure_exportable = true: the successor's policy lets the key out, and leaves after
    the switch are signed without the vault's sign operation."""
    settings = settings_for(tmp_path, vault, original, azure_exportable=True)
    steps = rotations(settings, vault)
    name_made = steps.stage("kv", Owner("wf", "run"))
    name = (tmp_path / "state" / NEXT_CERTIFICATE).read_text()
    assert vault.emulator.policy_of(name)["key_props"]["exportable"] is True
    steps.publish("kv", "overlap")
    steps.activate("kv")
    signed_before = sum(seen.path.endswith("/sign") for seen in vault.emulator.requests)

    issue_leaves(settings, vault)

    assert sum(seen.path.endswith("/sign") for seen in vault.emulator.requests) == signed_before
    assert steps.verify_leaves("kv").all_good
    assert name_made.subject == "CN=key vault CA 2"


@pytest.mark.parametrize(("overrides", "setting", "text"), [
    ({"azure_vault_url": "http://kv.example"}, "azure_vault_url", "https://"),
    ({"azure_vault_url": "https://kv.example/certificates/x"}, "azure_vault_url",
     "nothing after it"),
    ({"azure_certificate_name": "ca/../x"}, "azure_certificate_name", "Key Vault certificate"),
    ({"azure_certificate_name": "c" * 111}, "azure_certificate_name", "1-110"),
    ({"state_dir": None}, "state_dir", "required with backend = 'azure-keyvault'"),
    ({"vault_pki_mount": "pki"}, "vault_pki_mount", "does not apply"),
])
def test_key_vault_ca_settings_are_checked_at_load(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate,
        overrides: dict[str, Any], setting: str, text: str) -> None:
    with pytest.raises(ConfigError, match=text) as refused:
        settings_for(tmp_path, vault, original, **overrides)
    assert setting in str(refused.value)


def test_a_leaf_naming_a_ca_that_is_not_a_key_vault_ca_is_refused(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate) -> None:
    settings = settings_for(tmp_path, vault, original)
    with pytest.raises(ConfigError, match=r"certificates\.worker\.azure_ca"):
        dataclasses.replace(settings, certificate_authorities={})
    with pytest.raises(ConfigError, match="azure_ca: required"):
        CertificateSettings(common_name="x", issuer="azure-keyvault",
                            azure_vault_url=vault.url, azure_certificate_name="x",
                            azure_mode="key-vault-ca", directory=tmp_path / "x")


# -- the whole workflow -----------------------------------------------------------------------


@asynccontextmanager
async def rotation_worker(client: Client, settings: Settings,
                          vault: RunningVault) -> AsyncIterator[None]:
    certificates = CertificateActivities(settings, issuer_factory(
        None, azure_options=options(vault), authorities=settings.certificate_authorities))
    authorities = CaRotationActivities(settings, azure_options=rotation_options(vault))
    async with shared_rotation_worker(client, settings, certificates, authorities):
        yield


async def test_a_whole_rotation_on_key_vault_never_leaves_a_live_leaf_untrusted(
        tmp_path: Path, vault: RunningVault, original: x509.Certificate,
        temporal_client: Client, task_queue: str) -> None:
    """RotateCertificateAuthority with backend = "azure-keyvault": the bundle goes old →
    old + new → new, each leaf's signer in it at every moment, the leaves renewed from the
    successor, both CA certificates still in the vault."""
    settings = settings_for(tmp_path, vault, original, task_queue)
    issue_leaves(settings, vault)
    signers = {original.subject.rfc4514_string(): fingerprint(original)}
    seen: list[set[str]] = []
    untrusted: list[str] = []
    done = asyncio.Event()

    async def watch() -> None:
        while not done.is_set():
            now = bundle(settings)
            if not seen or now != seen[-1]:
                seen.append(now)
            name = (tmp_path / "state" / NEXT_CERTIFICATE)
            if name.exists() and name.read_text() in vault.emulator.certificates:
                versions = vault.emulator.certificates[name.read_text()].versions
                if len(versions) == 2:
                    signers.setdefault(versions[1].leaf.subject.rfc4514_string(),
                                       fingerprint(versions[1].leaf))
            for issuer in leaf_issuers(settings):
                if signers.get(issuer) not in now:
                    untrusted.append(f"{issuer} at {datetime.now(UTC)}")
            await asyncio.sleep(0.05)

    watcher = asyncio.ensure_future(watch())
    started = time.monotonic()
    try:
        async with rotation_worker(temporal_client, settings, vault):
            handle = await temporal_client.start_workflow(
                RotateCertificateAuthority.run, CaRotationInput("kv"),
                id=f"ca-rotation-{uuid.uuid4()}", task_queue=task_queue,
                execution_timeout=timedelta(minutes=2))
            result = await handle.result()
    finally:
        done.set()
        await watcher
    if bundle(settings) != seen[-1]:  # the watcher may stop between its last look and the end
        seen.append(bundle(settings))
    assert time.monotonic() - started < 90
    assert untrusted == []
    old, new = fingerprint(original), result.new
    assert result.old == old != new
    assert set(result.leaves_renewed) == set(LEAVES)
    assert seen[0] == {old}
    assert {old, new} in seen
    assert seen[-1] == {new}
    assert leaf_issuers(settings) == {"CN=key vault CA 2"}
    assert current_in_vault(vault, BASE) == original
    active = (tmp_path / "state" / ACTIVE_CERTIFICATE).read_text()
    assert fingerprint(current_in_vault(vault, active)) == new
