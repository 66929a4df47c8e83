"""Certificates installed in a Kubernetes ``kubernetes.io/tls`` Secret (read and written
with the resourceVersion checks of :mod:`keyward.pki.k8s_secret`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes import client

from keyward.contracts import failures
from keyward.pki.k8s_secret import TlsSecretError, install_tls_secret, read_tls_secret
from keyward.pki.types import IssuedCertificate

#: Every Secret keyward writes says so, for ``kubectl get secrets -l`` and for audits.
MANAGED_BY = {"app.kubernetes.io/managed-by": "keyward"}


class KubernetesSecretStore:
    """Secret ``namespace/secret`` for one certificate. ``api_client`` makes the
    Kubernetes ``ApiClient`` when first needed (the pod's service account in production)."""

    def __init__(self, name: str, *, namespace: str, secret: str,
                 api_client: Callable[[], Any]) -> None:
        self._name = name
        self._namespace = namespace
        self._secret = secret
        self._api_client = api_client

    @property
    def where(self) -> str:
        return f"secret {self._namespace}/{self._secret}"

    def read(self) -> IssuedCertificate | None:
        try:
            return read_tls_secret(self._core(), self._namespace, self._secret)
        except TlsSecretError as exc:
            raise TlsSecretError(
                f"reading {self._name!r} from Secret {self._namespace}/{self._secret} "
                f"failed: {exc}", retryable=exc.retryable,
                failure_type=failures.INSPECT_FAILED) from exc

    def install(self, issued: IssuedCertificate) -> str:
        try:
            version = install_tls_secret(self._core(), namespace=self._namespace,
                                         name=self._secret, issued=issued, labels=MANAGED_BY)
        except TlsSecretError as exc:
            raise TlsSecretError(
                f"installing {self._name!r} into Secret {self._namespace}/{self._secret} "
                f"failed: {exc}", retryable=exc.retryable,
                failure_type=failures.INSTALL_FAILED) from exc
        return f"{self.where}@{version}"

    def key_files(self) -> None:
        return None

    def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self._api_client())
