"""Builds the issuer a certificate's settings name. The issuers built on an optional SDK
(cert-manager on the Kubernetes client, Azure Key Vault on Azure's) are imported only when
used: those SDKs are extras (``pip install keyward[azure]``)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, assert_never

from keyward.config import (
    AzureKeyVaultIssuerSettings,
    CertificateSettings,
    CertManagerIssuerSettings,
    LocalCaIssuerSettings,
    VaultPkiIssuerSettings,
)
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.errors import ConfigError
from keyward.issuers.base import Issuer
from keyward.issuers.local_ca import LocalCaIssuer
from keyward.issuers.vault_pki import VaultPkiIssuer
from keyward.pki.ca import CertificateAuthority


def issuer_factory(vault: Any | None, *, azure_options: Mapping[str, Any] | None = None,
                   authorities: Mapping[str, CertificateAuthoritySettings] | None = None,
                   ) -> Callable[[str, CertificateSettings], Issuer]:
    """A factory bound to the worker's Vault client (for the Vault PKI issuer) and its CA
    settings (for certificates a Key Vault CA signs)."""
    return functools.partial(build_issuer, vault=vault, azure_options=azure_options,
                             authorities=authorities)


def build_issuer(name: str, cert: CertificateSettings, *, vault: Any | None = None,
                 azure_options: Mapping[str, Any] | None = None,
                 authorities: Mapping[str, CertificateAuthoritySettings] | None = None,
                 ) -> Issuer:
    """The issuer ``cert`` names. ``azure_options`` are the Key Vault ``credential`` and
    ``client_kwargs`` (default: ``DefaultAzureCredential`` and the SDK's settings), as for
    the stores; ``authorities`` the ``[certificate_authorities]`` tables (``azure_mode =
    "key-vault-ca"`` signs with the one it names, as rotation left it)."""
    match cert.issuer:
        case LocalCaIssuerSettings() as local:
            return LocalCaIssuer.from_files(local.ca_cert, local.ca_key)
        case VaultPkiIssuerSettings() as pki:
            if vault is None:
                raise ConfigError(f"certificates.{name}.issuer",
                                  "vault-pki needs the worker's Vault connection")
            return VaultPkiIssuer(vault, mount=pki.vault_pki_mount, role=pki.vault_pki_role)
        case CertManagerIssuerSettings() as manager:
            from keyward.issuers.cert_manager import CertManagerIssuer  # noqa: PLC0415

            return CertManagerIssuer(kubernetes_api_client(),
                                     namespace=manager.kubernetes_namespace,
                                     issuer_name=manager.cert_manager_issuer,
                                     issuer_kind=manager.cert_manager_issuer_kind)
        case AzureKeyVaultIssuerSettings() as azure:
            from keyward.issuers.azure_keyvault import (  # noqa: PLC0415
                AzureKeyVaultIssuer,
                CsrSigner,
            )

            sign_csr: CsrSigner | None = None
            ca_pem: bytes | None = None
            if azure.signing_ca is not None:
                # azure_mode = "external-ca": Key Vault holds the key; keyward's CA signs the
                # CSR it produces.
                ca = CertificateAuthority.load(*azure.signing_ca)
                sign_csr, ca_pem = ca.sign_csr, ca.ca_pem
            elif azure.azure_ca is not None:
                # azure_mode = "key-vault-ca": the Key Vault CA the rotation made active signs.
                from keyward.authorities.azure_keyvault import active_ca  # noqa: PLC0415

                authority = (authorities or {}).get(azure.azure_ca)
                if authority is None:
                    raise ConfigError(f"certificates.{name}.azure_ca",
                                      f"no [certificate_authorities.{azure.azure_ca}]")
                opts = dict(azure_options or {})
                signer = active_ca(authority, credential=opts.get("credential"),
                                   client_kwargs=opts.get("client_kwargs"))
                sign_csr, ca_pem = signer.authority.sign_csr, signer.ca_pem
            # The settings already refused a lifetime action Key Vault would refuse.
            return AzureKeyVaultIssuer(azure.azure_vault_url, azure.azure_certificate_name,
                                       mode="self" if azure.azure_mode == "self"
                                       else "external-ca", sign_csr=sign_csr, ca_pem=ca_pem,
                                       lifetime_action=azure.azure_lifetime_action,
                                       lifetime_percentage=azure.azure_lifetime_percentage,
                                       days_before_expiry=azure.azure_days_before_expiry,
                                       **dict(azure_options or {}))
        case unknown:
            assert_never(unknown)


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
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except config.ConfigException as exc:
            # Not in a pod and no usable kubeconfig: a setup problem a retry does not fix.
            raise ConfigError("certificates", "no Kubernetes API configuration: not running "
                              "in a pod with a service account, and no usable kubeconfig "
                              f"({exc})") from None
    return client.ApiClient()
