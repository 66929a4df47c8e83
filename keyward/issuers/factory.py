"""Builds the issuer a certificate's settings name. The issuers built on an optional SDK
(cert-manager on the Kubernetes client, Azure Key Vault on Azure's) are imported only when
used: those SDKs are extras (``pip install keyward[azure]``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from keyward.config import CertificateSettings
from keyward.errors import ConfigError
from keyward.issuers.base import Issuer
from keyward.issuers.local_ca import LocalCaIssuer
from keyward.issuers.vault_pki import VaultPkiIssuer
from keyward.pki.ca import CertificateAuthority


def issuer_factory(vault: Any | None) -> Callable[[str, CertificateSettings], Issuer]:
    """A factory bound to the worker's Vault client (for the Vault PKI issuer)."""
    return functools.partial(build_issuer, vault=vault)


def build_issuer(name: str, cert: CertificateSettings, *, vault: Any | None = None) -> Issuer:
    if cert.issuer == "local-ca":
        if cert.ca_cert is None or cert.ca_key is None:  # the settings check this already
            raise ConfigError(f"certificates.{name}.ca_cert", "required for the local CA")
        return LocalCaIssuer.from_files(cert.ca_cert, cert.ca_key)
    if cert.issuer == "vault-pki":
        if vault is None:
            raise ConfigError(f"certificates.{name}.issuer",
                              "vault-pki needs the worker's Vault connection")
        if cert.vault_pki_role is None:
            raise ConfigError(f"certificates.{name}.vault_pki_role", "required")
        return VaultPkiIssuer(vault, mount=cert.vault_pki_mount, role=cert.vault_pki_role)
    if cert.issuer == "cert-manager":
        from keyward.issuers.cert_manager import CertManagerIssuer  # noqa: PLC0415

        if cert.kubernetes_namespace is None or cert.cert_manager_issuer is None:
            raise ConfigError(f"certificates.{name}.cert_manager_issuer", "required")
        return CertManagerIssuer(kubernetes_api_client(), namespace=cert.kubernetes_namespace,
                                 issuer_name=cert.cert_manager_issuer,
                                 issuer_kind=cert.cert_manager_issuer_kind)
    if cert.issuer == "azure-keyvault":
        from keyward.issuers.azure_keyvault import AzureKeyVaultIssuer  # noqa: PLC0415

        if cert.azure_vault_url is None or cert.azure_certificate_name is None:
            raise ConfigError(f"certificates.{name}.azure_vault_url", "required")
        if cert.azure_mode == "external-ca":
            # Key Vault holds the key; keyward's CA signs the CSR it produces.
            if cert.ca_cert is None or cert.ca_key is None:
                raise ConfigError(f"certificates.{name}.ca_cert",
                                  "required with azure_mode = 'external-ca' (the signing CA)")
            ca = CertificateAuthority.load(cert.ca_cert, cert.ca_key)
            return AzureKeyVaultIssuer(cert.azure_vault_url, cert.azure_certificate_name,
                                       mode="external-ca", sign_csr=ca.sign_csr,
                                       ca_pem=ca.ca_pem)
        return AzureKeyVaultIssuer(cert.azure_vault_url, cert.azure_certificate_name,
                                   mode="self")
    raise ConfigError(f"certificates.{name}.issuer",
                      f"{cert.issuer!r} is not wired into the worker yet")


def kubernetes_api_client() -> Any:
    """The pod's service account inside a cluster, else the user's kubeconfig."""
    try:
        from kubernetes import client, config  # noqa: PLC0415
    except ImportError:
        raise ConfigError("certificates", "the kubernetes client is not installed: "
                          "pip install 'keyward[kubernetes]'") from None
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.ApiClient()
