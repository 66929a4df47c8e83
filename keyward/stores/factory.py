"""Builds the store a certificate's ``install`` setting names. The stores on an optional
SDK (Kubernetes, Azure) are imported only when used, as the issuers are."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, assert_never

from keyward.config import (
    AzureKeyVaultInstall,
    CertificateSettings,
    FilesInstall,
    KubernetesSecretInstall,
)
from keyward.issuers.factory import kubernetes_api_client
from keyward.stores.base import CertificateStore
from keyward.stores.files import FilesStore


def store_for(name: str, cert: CertificateSettings, *,
              kube_client: Callable[[], Any] | None = None,
              azure_options: Mapping[str, Any] | None = None) -> CertificateStore:
    """The store for certificate ``name``. ``kube_client`` makes the Kubernetes ApiClient
    (default: the pod's config); ``azure_options`` are the Key Vault ``credential`` and
    ``client_kwargs`` (default: ``DefaultAzureCredential`` and the SDK's settings)."""
    match cert.install:
        case FilesInstall(directory=directory):
            return FilesStore(name, directory)
        case KubernetesSecretInstall(kubernetes_namespace=namespace, kubernetes_secret=secret):
            from keyward.stores.kubernetes_secret import KubernetesSecretStore  # noqa: PLC0415

            return KubernetesSecretStore(name, namespace=namespace, secret=secret,
                                         api_client=kube_client or kubernetes_api_client)
        case AzureKeyVaultInstall() as vault:
            from keyward.stores.azure_keyvault import AzureKeyVaultStore  # noqa: PLC0415

            return AzureKeyVaultStore(name, vault.azure_vault_url, vault.azure_certificate_name,
                                      **dict(azure_options or {}))
        case unknown:
            assert_never(unknown)
