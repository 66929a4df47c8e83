"""The certificate service and its stores on their own (no Temporal server): what
starter.py calls and the certificate activities adapt.

Each store's failure leaves as a keyward error with the failure type operators match on
(``InspectFailed`` reading, ``InstallFailed`` installing) and the retryability of its
cause; through the activity it is the matching ``ApplicationError``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes.config import kube_config
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.certificates import CertificateActivities
from keyward.config import CertificateSettings, Settings
from keyward.contracts import failures
from keyward.contracts.certificates import CertificateRef
from keyward.errors import KeywardError
from keyward.issuers.factory import build_issuer
from keyward.pki.ca import CertificateAuthority
from keyward.services.certificates import Certificates
from keyward.stores.factory import store_for
from keyward.stores.files import FilesStore
from tests.emulators.kube_api import FakeKubeApi, RunningKubeApi, serve


@pytest.fixture
def ca_files(tmp_path: Path) -> tuple[Path, Path]:
    ca = CertificateAuthority.bootstrap("service test CA")
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    return tmp_path / "ca.crt", tmp_path / "ca.key"


@pytest.fixture
def kube() -> Iterator[RunningKubeApi]:
    with serve(FakeKubeApi()) as running:
        yield running


def files_settings(ca_files: tuple[Path, Path], directory: Path) -> Settings:
    cert = CertificateSettings(common_name="keyward-worker", ca_cert=ca_files[0],
                               ca_key=ca_files[1], install="files", directory=directory,
                               lifetime_hours=24)
    return dataclasses.replace(Settings(), certificates={"worker": cert})


def secret_settings(ca_files: tuple[Path, Path]) -> Settings:
    cert = CertificateSettings(common_name="keyward-worker", ca_cert=ca_files[0],
                               ca_key=ca_files[1], install="kubernetes-secret",
                               kubernetes_namespace="temporal",
                               kubernetes_secret="keyward-worker-tls", lifetime_hours=24)
    return dataclasses.replace(Settings(), certificates={"worker": cert})


def test_issue_install_inspect_through_the_service_alone(ca_files: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    """Nothing installed → issued, installed as files, then inspected back as valid."""
    settings = files_settings(ca_files, tmp_path / "tls")
    service = Certificates(settings, build_issuer, store_for)
    steps: list[str] = []
    assert service.names() == ["worker"]
    assert not service.inspect("worker").present
    renewed = service.issue_and_install("worker", progress=steps.append)
    assert steps == ["issued"]
    assert renewed.installed_to == str(tmp_path / "tls")
    assert renewed.issuer == "local-ca"
    seen = service.inspect("worker")
    assert (seen.present, seen.serial, seen.problem) == (True, renewed.serial, None)
    assert isinstance(store_for("worker", settings.certificates["worker"]), FilesStore)


def test_an_unknown_certificate_is_a_permanent_typed_error(ca_files: tuple[Path, Path],
                                                           tmp_path: Path) -> None:
    service = Certificates(files_settings(ca_files, tmp_path / "tls"), build_issuer, store_for)
    with pytest.raises(KeywardError) as caught:
        service.inspect("nope")
    assert caught.value.failure_type == failures.UNKNOWN_CERTIFICATE
    assert not caught.value.retryable
    assert "configured: worker" in str(caught.value)


def test_a_directory_in_the_way_fails_the_install_permanently(ca_files: tuple[Path, Path],
                                                              tmp_path: Path) -> None:
    """install_pair refuses to replace a directory: InstallFailed, not retried (a retry
    meets the same directory), and nothing is installed."""
    target = tmp_path / "tls"
    (target / "tls.crt").mkdir(parents=True)
    activities = CertificateActivities(files_settings(ca_files, target), build_issuer)
    with pytest.raises(ApplicationError) as caught:
        ActivityEnvironment().run(activities.issue_and_install, CertificateRef("worker"))
    assert caught.value.type == failures.INSTALL_FAILED
    assert caught.value.non_retryable
    assert "installing 'worker' into" in str(caught.value)
    assert (target / "tls.crt").is_dir()


@pytest.mark.parametrize(("status", "retryable"), [(403, False), (500, True)])
def test_a_secret_that_cannot_be_read_is_a_typed_inspect_failure(
        kube: RunningKubeApi, ca_files: tuple[Path, Path], status: int,
        retryable: bool) -> None:
    """Reading the Secret fails: InspectFailed, retried only when the API server may answer
    later (before the store, a raw TlsSecretError left the activity and was always retried)."""
    with kube.client() as api:
        activities = CertificateActivities(secret_settings(ca_files), build_issuer,
                                           kube_client=lambda: api)
        kube.fake.fail_next(status)
        with pytest.raises(ApplicationError) as caught:
            ActivityEnvironment().run(activities.inspect, CertificateRef("worker"))
    assert caught.value.type == failures.INSPECT_FAILED
    assert caught.value.non_retryable is (not retryable)
    assert "reading 'worker' from Secret temporal/keyward-worker-tls failed" in \
        str(caught.value)


def test_the_secret_store_installs_and_reads_back(kube: RunningKubeApi,
                                                  ca_files: tuple[Path, Path]) -> None:
    with kube.client() as api:
        service = Certificates(secret_settings(ca_files), build_issuer,
                               lambda name, cert: store_for(name, cert, kube_client=lambda: api))
        renewed = service.issue_and_install("worker")
        assert renewed.installed_to.startswith("secret temporal/keyward-worker-tls@")
        assert service.inspect("worker").serial == renewed.serial
    stored = kube.fake.secret("temporal", "keyward-worker-tls")
    assert stored is not None
    assert stored["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "keyward"


def test_no_kubernetes_configuration_is_one_setting_error(
        ca_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Secret store outside a pod with no kubeconfig: one permanent 'invalid setting
    certificates: …' error naming what is missing (``starter.py status`` prints it as its
    'status failed:' line), not a kubernetes ConfigException traceback or an activity
    retried for ever."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "none"))
    service = Certificates(secret_settings(ca_files), build_issuer, store_for)
    with pytest.raises(KeywardError) as caught:
        service.inspect("worker")
    assert str(caught.value).startswith("invalid setting certificates: no Kubernetes API "
                                        "configuration")
    assert not caught.value.retryable
    activities = CertificateActivities(secret_settings(ca_files), build_issuer)
    with pytest.raises(ApplicationError) as failed:
        ActivityEnvironment().run(activities.inspect, CertificateRef("worker"))
    assert failed.value.non_retryable
