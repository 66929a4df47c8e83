"""The cert-manager issuer, driven through the real kubernetes client against a fake API
server with a simulated cert-manager controller (tests/emulators/kube_api.py)."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kubernetes.client
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyward.config import CertificateSettings, Settings
from keyward.contracts import failures
from keyward.errors import KeywardError
from keyward.issuers.base import IssuerError
from keyward.issuers.cert_manager import CertManagerIssuer, go_duration
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from keyward.services.certificates import Certificates
from keyward.stores.factory import store_for
from keyward_devstack.processes import free_port
from tests.emulators.kube_api import FakeKubeApi, RunningKubeApi, api_client_for, serve

NAMESPACE = "temporal-workers"
SPEC = CertificateSpec(name="Worker mTLS", common_name="worker.temporal.internal",
                       dns_names=("worker.temporal.internal", "worker"),
                       ip_addresses=("10.0.0.7",), usage="client",
                       lifetime=timedelta(days=90))


@pytest.fixture
def kube() -> Iterator[RunningKubeApi]:
    with serve(FakeKubeApi(controller_delay=0.05)) as running:
        yield running


@pytest.fixture
def api(kube: RunningKubeApi) -> Iterator[kubernetes.client.ApiClient]:
    with kube.client() as client:
        yield client


def make_issuer(api: kubernetes.client.ApiClient, *, timeout: float = 10.0,
                kind: str = "Issuer") -> CertManagerIssuer:
    return CertManagerIssuer(api, namespace=NAMESPACE, issuer_name="keyward-ca",
                             issuer_kind=kind, poll_interval=0.02, timeout=timeout)


def only_request(fake: FakeKubeApi) -> dict[str, object]:
    assert len(fake.created_certificate_requests) == 1
    return fake.created_certificate_requests[0]


def test_issued_certificate_matches_spec_key_and_ca(kube: RunningKubeApi,
                                                    api: kubernetes.client.ApiClient) -> None:
    """The certificate has the spec's CN, SANs and client EKU, matches the returned key
    and is signed by the CA returned alongside it."""
    issued = make_issuer(api).issue(SPEC)

    leaf = x509.load_pem_x509_certificate(issued.certificate_pem)
    cn = leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == SPEC.common_name
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == list(SPEC.dns_names)
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    assert issued.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert leaf.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)

    assert issued.ca_pem == kube.fake.ca.pem
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(issued.ca_pem))


def test_request_carries_issuer_ref_duration_usages_and_csr(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient) -> None:
    """The CertificateRequest names the issuer, asks for the spec's lifetime as a Go
    duration and for client-auth usages, and carries the CSR base64-encoded."""
    make_issuer(api, kind="ClusterIssuer").issue(SPEC)

    request = only_request(kube.fake)
    assert request["apiVersion"] == "cert-manager.io/v1"
    assert request["kind"] == "CertificateRequest"
    metadata = request["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["name"].startswith("keyward-worker-mtls-")
    assert metadata["labels"] == {"app.kubernetes.io/managed-by": "keyward"}
    spec = request["spec"]
    assert isinstance(spec, dict)
    assert spec["issuerRef"] == {"name": "keyward-ca", "kind": "ClusterIssuer",
                                 "group": "cert-manager.io"}
    assert spec["duration"] == "2160h0m0s"
    assert spec["usages"] == ["digital signature", "client auth"]
    csr = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == f"CN={SPEC.common_name}"


@pytest.mark.parametrize(("usage", "key_type", "usages", "ekus"), [
    ("server", "ec-p256", ["digital signature", "server auth"],
     [ExtendedKeyUsageOID.SERVER_AUTH]),
    ("both", "rsa-2048", ["digital signature", "key encipherment", "client auth", "server auth"],
     [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
])
def test_usages_follow_spec_usage_and_key_type(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient, usage: str, key_type: str,
        usages: list[str], ekus: list[x509.ObjectIdentifier]) -> None:
    """Server/both usages request the matching EKUs; "key encipherment" is requested
    only for RSA keys."""
    spec = CertificateSpec(name="svc", common_name="svc.local", usage=usage,  # type: ignore[arg-type]
                           key_type=key_type)  # type: ignore[arg-type]
    issued = make_issuer(api).issue(spec)

    request_spec = only_request(kube.fake)["spec"]
    assert isinstance(request_spec, dict)
    assert request_spec["usages"] == usages
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == ekus


def test_request_is_deleted_after_success(kube: RunningKubeApi,
                                          api: kubernetes.client.ApiClient) -> None:
    """A successful issuance leaves no CertificateRequest behind."""
    make_issuer(api).issue(SPEC)

    assert kube.fake.certificate_requests == {}
    assert ("DELETE", 200) in {(method, code) for method, _, code in kube.fake.requests}


@pytest.mark.parametrize(("outcome", "wording"), [
    ("deny", "was denied"), ("invalid", "is invalid"), ("fail", "failed")])
def test_refusal_is_not_retryable_and_carries_cert_managers_message(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient, outcome: str,
        wording: str) -> None:
    """Denied, InvalidRequest and Ready=False/Failed end issuance for good, with
    cert-manager's message, and keep the request for inspection."""
    kube.fake.outcome = outcome  # type: ignore[assignment]
    kube.fake.outcome_message = "policy forbids CN worker.temporal.internal"

    with pytest.raises(IssuerError) as caught:
        make_issuer(api).issue(SPEC)

    assert caught.value.retryable is False
    assert wording in str(caught.value)
    assert "policy forbids CN worker.temporal.internal" in str(caught.value)
    assert len(kube.fake.certificate_requests) == 1


def test_never_ready_times_out_retryably_and_cleans_up(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient) -> None:
    """A request nobody acts on times out as retryable, says it was never approved, and
    is deleted so a later signature is not wasted on it."""
    kube.fake.outcome = "never"

    with pytest.raises(IssuerError) as caught:
        make_issuer(api, timeout=0.3).issue(SPEC)

    assert caught.value.retryable is True
    assert "not ready after 0.3s" in str(caught.value)
    assert "not approved yet" in str(caught.value)
    assert kube.fake.certificate_requests == {}


def test_unreachable_api_server_is_retryable() -> None:
    """No API server listening is a retryable failure."""
    with (api_client_for(f"http://127.0.0.1:{free_port()}", "test-token") as client,
          pytest.raises(IssuerError) as caught):
        make_issuer(client).issue(SPEC)

    assert caught.value.retryable is True
    assert "unreachable" in str(caught.value)


def test_missing_crd_is_not_retryable(kube: RunningKubeApi,
                                      api: kubernetes.client.ApiClient) -> None:
    """A 404 for the CertificateRequest API (cert-manager not installed) is final and
    says what to check."""
    kube.fake.crd_installed = False

    with pytest.raises(IssuerError) as caught:
        make_issuer(api).issue(SPEC)

    assert caught.value.retryable is False
    assert "404 NotFound" in str(caught.value)
    assert "is cert-manager installed" in str(caught.value)


def test_forbidden_is_not_retryable(kube: RunningKubeApi,
                                    api: kubernetes.client.ApiClient) -> None:
    """403 on create (missing RBAC) is final and names the permissions needed."""
    kube.fake.fail_next(403, method="POST")

    with pytest.raises(IssuerError) as caught:
        make_issuer(api).issue(SPEC)

    assert caught.value.retryable is False
    assert "needs create, get and delete on certificaterequests.cert-manager.io" in \
        str(caught.value)


def test_wrong_token_is_not_retryable(kube: RunningKubeApi) -> None:
    """A rejected bearer token (401) is final and points at the credentials."""
    with kube.client(token="wrong") as client, pytest.raises(IssuerError) as caught:
        make_issuer(client).issue(SPEC)

    assert caught.value.retryable is False
    assert "401 Unauthorized" in str(caught.value)
    assert "rejected the credentials" in str(caught.value)
    assert kube.fake.authorization_headers == ["Bearer wrong"]


def test_server_error_on_create_is_retryable(kube: RunningKubeApi,
                                             api: kubernetes.client.ApiClient) -> None:
    """A 5xx from the API server when creating the request is retryable."""
    kube.fake.fail_next(503, method="POST")

    with pytest.raises(IssuerError) as caught:
        make_issuer(api).issue(SPEC)

    assert caught.value.retryable is True
    assert "503" in str(caught.value)


def test_server_errors_while_polling_are_waited_out(kube: RunningKubeApi,
                                                    api: kubernetes.client.ApiClient) -> None:
    """5xx answers while waiting do not abort an issuance that then succeeds."""
    kube.fake.fail_next(500, times=3, method="GET")

    issued = make_issuer(api).issue(SPEC)

    assert issued.certificate_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert [code for method, _, code in kube.fake.requests if method == "GET"][:3] == \
        [500, 500, 500]


def test_requests_carry_the_bearer_token(kube: RunningKubeApi,
                                         api: kubernetes.client.ApiClient) -> None:
    """Every request of an issuance authenticates with the configured bearer token."""
    make_issuer(api).issue(SPEC)

    assert len(kube.fake.authorization_headers) >= 3  # create, at least one get, delete
    assert set(kube.fake.authorization_headers) == {"Bearer test-token"}


@pytest.mark.parametrize(("lifetime", "text"), [
    (timedelta(days=90), "2160h0m0s"),
    (timedelta(hours=1, seconds=30), "1h0m30s"),
    (timedelta(minutes=45), "45m0s"),
    (timedelta(seconds=90.5), "1m30.5s"),
    (timedelta(seconds=7), "7s"),
])
def test_go_duration_matches_gos_formatting(lifetime: timedelta, text: str) -> None:
    """Lifetimes are written the way Go's time.Duration.String() writes them."""
    assert go_duration(lifetime) == text


def test_unrequestable_lifetime_fails_before_any_request(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient) -> None:
    """A spec no request could satisfy is a non-retryable error and creates nothing."""
    spec = CertificateSpec(name="w", common_name="w.local",
                           lifetime=timedelta(milliseconds=500))

    with pytest.raises(IssuerError) as caught:
        make_issuer(api).issue(spec)

    assert caught.value.retryable is False
    assert kube.fake.requests == []


def test_sub_second_lifetime_is_rejected() -> None:
    """A lifetime under a second is a configuration bug, not something to request."""
    with pytest.raises(ValueError, match="shorter than a second"):
        go_duration(timedelta(milliseconds=500))


NAMED = CertificateSpec(name="worker", common_name="worker.temporal.internal",
                        dns_names=("worker.temporal.internal",),
                        organization=("Acme, Inc.", "Acme Labs"), organizational_unit=("Ops",),
                        country="DE", state="Berlin", locality="Berlin-Mitte",
                        lifetime=timedelta(days=30))


def test_the_whole_subject_goes_into_the_csr_and_comes_back(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient) -> None:
    """C, ST, L, both Os and OU are in the CSR's subject (what a CertificateRequest has in
    place of a Certificate's spec.subject); the CA issuer signs them and the pair validates."""
    issued = make_issuer(api).issue(NAMED)

    request_spec = only_request(kube.fake)["spec"]
    assert isinstance(request_spec, dict)
    csr = x509.load_pem_x509_csr(base64.b64decode(request_spec["request"]))
    assert csr.subject.rfc4514_string() == (
        "CN=worker.temporal.internal,OU=Ops,O=Acme Labs,O=Acme\\, Inc.,L=Berlin-Mitte,"
        "ST=Berlin,C=DE")
    leaf = x509.load_pem_x509_certificate(issued.certificate_pem)
    assert leaf.subject == csr.subject
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=datetime.now(UTC), spec=NAMED)


def test_an_issuer_that_drops_the_subject_gets_nothing_installed(
        kube: RunningKubeApi, api: kubernetes.client.ApiClient, tmp_path: Path) -> None:
    """A cert-manager issuer that signs the common name only (ACME, a Vault role without
    O/OU) fails renewal validation: each missing attribute named, no file written."""
    kube.fake.whole_subject = False
    cert = CertificateSettings(common_name=NAMED.common_name, dns_names=NAMED.dns_names,
                               organization=NAMED.organization, organizational_unit=("Ops",),
                               issuer="cert-manager", kubernetes_namespace=NAMESPACE,
                               cert_manager_issuer="keyward-ca", directory=tmp_path / "certs",
                               lifetime_hours=720)
    certificates = Certificates(dataclasses.replace(Settings(), certificates={"worker": cert}),
                                lambda _name, _cert: make_issuer(api), store_for)

    with pytest.raises(KeywardError) as caught:
        certificates.issue_and_install("worker")

    assert caught.value.failure_type == failures.CERTIFICATE_INVALID
    assert "subject O is missing, spec 'worker' wants ['Acme, Inc.', 'Acme Labs']" in str(
        caught.value)
    assert "subject OU is missing, spec 'worker' wants ['Ops']" in str(caught.value)
    assert not (tmp_path / "certs").exists()
