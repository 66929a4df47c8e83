"""Installing certificates into kubernetes.io/tls Secrets, through the real kubernetes
client against the fake API server (tests/emulators/kube_api.py)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest

from keyward.pki.k8s_secret import TlsSecretError, install_tls_secret, read_tls_secret
from keyward.pki.types import IssuedCertificate
from keyward_devstack.processes import free_port
from tests.emulators.kube_api import FakeKubeApi, RunningKubeApi, api_client_for, serve

NS = "temporal-workers"
NAME = "worker-mtls"
FIRST = IssuedCertificate(certificate_pem=b"-----BEGIN CERTIFICATE-----\nfirst\n",
                          private_key_pem=b"-----BEGIN PRIVATE KEY-----\nfirst\n",
                          ca_pem=b"-----BEGIN CERTIFICATE-----\nca-1\n")
SECOND = IssuedCertificate(certificate_pem=b"-----BEGIN CERTIFICATE-----\nsecond\n",
                           private_key_pem=b"-----BEGIN PRIVATE KEY-----\nsecond\n",
                           ca_pem=b"-----BEGIN CERTIFICATE-----\nca-2\n")


@pytest.fixture
def kube() -> Iterator[RunningKubeApi]:
    with serve(FakeKubeApi()) as running:
        yield running


@pytest.fixture
def core(kube: RunningKubeApi) -> Iterator[kubernetes.client.CoreV1Api]:
    with kube.client() as client:
        yield kubernetes.client.CoreV1Api(client)


def stored(fake: FakeKubeApi) -> dict[str, Any]:
    secret = fake.secret(NS, NAME)
    assert secret is not None
    return secret


def decoded(secret: dict[str, Any]) -> dict[str, bytes]:
    return {key: base64.b64decode(value) for key, value in secret["data"].items()}


def test_creates_tls_secret_when_missing(kube: RunningKubeApi,
                                         core: kubernetes.client.CoreV1Api) -> None:
    """A missing Secret is created as kubernetes.io/tls with tls.crt, tls.key, ca.crt and
    the given labels; the returned resourceVersion is the stored one."""
    version = install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST,
                                 labels={"app.kubernetes.io/managed-by": "keyward"})

    secret = stored(kube.fake)
    assert secret["type"] == "kubernetes.io/tls"
    assert decoded(secret) == {"tls.crt": FIRST.certificate_pem,
                               "tls.key": FIRST.private_key_pem, "ca.crt": FIRST.ca_pem}
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "keyward"}
    assert version == secret["metadata"]["resourceVersion"]


def test_update_replaces_pair_and_keeps_everything_else(
        kube: RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    """Updating swaps our three keys and merges our labels, but keeps other data keys,
    labels and annotations, and moves the resourceVersion forward."""
    first = install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST,
                               labels={"team": "temporal"})
    secret = core.read_namespaced_secret(NAME, NS)
    assert secret.metadata is not None
    assert secret.data is not None
    secret.metadata.annotations = {"reflector/reflects": "elsewhere"}
    secret.data["keystore.p12"] = base64.b64encode(b"kept").decode()
    core.replace_namespaced_secret(NAME, NS, secret)

    second = install_tls_secret(core, namespace=NS, name=NAME, issued=SECOND,
                                labels={"app.kubernetes.io/managed-by": "keyward"})

    after = stored(kube.fake)
    assert decoded(after) == {"tls.crt": SECOND.certificate_pem,
                              "tls.key": SECOND.private_key_pem, "ca.crt": SECOND.ca_pem,
                              "keystore.p12": b"kept"}
    assert after["metadata"]["labels"] == {"team": "temporal",
                                           "app.kubernetes.io/managed-by": "keyward"}
    assert after["metadata"]["annotations"] == {"reflector/reflects": "elsewhere"}
    assert int(second) > int(first)
    assert kube.fake.conflicts == 0


def test_stale_ca_is_removed_when_issuer_returns_none(
        kube: RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    """A pair without a CA removes ca.crt, so a new certificate never sits next to the
    previous issuer's CA."""
    install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)
    no_ca = IssuedCertificate(certificate_pem=SECOND.certificate_pem,
                              private_key_pem=SECOND.private_key_pem)

    install_tls_secret(core, namespace=NS, name=NAME, issued=no_ca)

    assert set(decoded(stored(kube.fake))) == {"tls.crt", "tls.key"}


def test_concurrent_write_between_read_and_replace_is_reread_not_overwritten(
        kube: RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    """When another writer changes the Secret after our read, our replace gets 409
    Conflict, and the retry re-reads: the result holds our pair and their change."""
    install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)

    def other_writer(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is not None
        current["metadata"]["annotations"] = {"other-writer": "was here"}
        current["data"]["extra"] = base64.b64encode(b"theirs").decode()
        return current

    kube.fake.interfere_after_read(NS, NAME, other_writer)

    version = install_tls_secret(core, namespace=NS, name=NAME, issued=SECOND)

    assert kube.fake.conflicts == 1  # the conflict path really ran
    puts = [code for method, path, code in kube.fake.requests
            if method == "PUT" and path.endswith(f"/secrets/{NAME}")]
    assert puts == [409, 200]  # the first install was a create (POST)
    after = stored(kube.fake)
    assert decoded(after)["tls.crt"] == SECOND.certificate_pem
    assert decoded(after)["tls.key"] == SECOND.private_key_pem
    assert decoded(after)["extra"] == b"theirs"
    assert after["metadata"]["annotations"] == {"other-writer": "was here"}
    assert version == after["metadata"]["resourceVersion"]


def test_secret_created_by_someone_else_first_is_updated(
        kube: RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    """If another writer creates the Secret between our 404 and our create, the
    AlreadyExists answer leads to a re-read and an update."""
    def other_creator(current: dict[str, Any] | None) -> dict[str, Any]:
        assert current is None
        return {"metadata": {"labels": {"created-by": "someone-else"}},
                "type": "kubernetes.io/tls",
                "data": {"tls.crt": base64.b64encode(b"theirs").decode(),
                         "tls.key": base64.b64encode(b"theirs").decode()}}

    kube.fake.interfere_after_read(NS, NAME, other_creator)

    install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)

    assert [code for method, _, code in kube.fake.requests if method == "POST"] == [409]
    after = stored(kube.fake)
    assert decoded(after)["tls.crt"] == FIRST.certificate_pem
    assert after["metadata"]["labels"] == {"created-by": "someone-else"}


def test_gives_up_retryably_after_bounded_conflicts(
        kube: RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    """A Secret that changes under every attempt ends in a retryable error after
    max_conflict_retries re-reads, without writing our pair."""
    install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)
    for _ in range(3):
        kube.fake.interfere_after_read(NS, NAME, lambda current: current or {})

    with pytest.raises(TlsSecretError) as caught:
        install_tls_secret(core, namespace=NS, name=NAME, issued=SECOND,
                           max_conflict_retries=2)

    assert caught.value.retryable is True
    assert kube.fake.conflicts == 3
    assert decoded(stored(kube.fake))["tls.crt"] == FIRST.certificate_pem


def test_refuses_to_take_over_a_secret_of_another_type(
        kube: RunningKubeApi, core: kubernetes.client.CoreV1Api) -> None:
    """An existing Opaque Secret of the same name is left alone, with a final error."""
    core.create_namespaced_secret(NS, kubernetes.client.V1Secret(
        metadata=kubernetes.client.V1ObjectMeta(name=NAME), type="Opaque",
        data={"password": base64.b64encode(b"not ours").decode()}))

    with pytest.raises(TlsSecretError) as caught:
        install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)

    assert caught.value.retryable is False
    assert "type 'Opaque'" in str(caught.value)
    assert set(decoded(stored(kube.fake))) == {"password"}


def test_read_returns_installed_pair_or_none(core: kubernetes.client.CoreV1Api) -> None:
    """read_tls_secret returns None before anything is installed, then the pair."""
    assert read_tls_secret(core, NS, NAME) is None

    install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)

    assert read_tls_secret(core, NS, NAME) == FIRST


def test_requests_carry_the_bearer_token(kube: RunningKubeApi,
                                         core: kubernetes.client.CoreV1Api) -> None:
    """Every request to the API server carries the configured bearer token."""
    install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)
    install_tls_secret(core, namespace=NS, name=NAME, issued=SECOND)

    assert len(kube.fake.authorization_headers) == 4  # read, create, read, replace
    assert set(kube.fake.authorization_headers) == {"Bearer test-token"}


def test_forbidden_is_not_retryable(kube: RunningKubeApi,
                                    core: kubernetes.client.CoreV1Api) -> None:
    """403 (missing RBAC) is final and names the permissions needed."""
    kube.fake.fail_next(403)

    with pytest.raises(TlsSecretError) as caught:
        install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)

    assert caught.value.retryable is False
    assert "needs get, create and update on secrets" in str(caught.value)


def test_server_error_is_retryable(kube: RunningKubeApi,
                                   core: kubernetes.client.CoreV1Api) -> None:
    """A 5xx answer to the write is retryable."""
    kube.fake.fail_next(500, method="POST")

    with pytest.raises(TlsSecretError) as caught:
        install_tls_secret(core, namespace=NS, name=NAME, issued=FIRST)

    assert caught.value.retryable is True


def test_unreachable_api_server_is_retryable() -> None:
    """No API server listening is a retryable failure."""
    with (api_client_for(f"http://127.0.0.1:{free_port()}", "test-token") as client,
          pytest.raises(TlsSecretError) as caught):
        install_tls_secret(kubernetes.client.CoreV1Api(client), namespace=NS, name=NAME,
                           issued=FIRST)

    assert caught.value.retryable is True
    assert "unreachable" in str(caught.value)
