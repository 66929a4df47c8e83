"""Certificates keyward keeps renewed (``[certificates.<name>]``): issuer and install variants.

One :class:`CertificateSettings` per certificate: what it is (names, usage, key type,
lifetime and renewal window), who issues it (an issuer variant: local CA, Vault PKI, Azure
Key Vault, cert-manager) and where it goes (an install variant: files, a Kubernetes
Secret, Key Vault). The variants are their own classes so a combination that cannot work
cannot be constructed; the TOML keys stay flat, and this module sorts them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal, Self, get_args

from pydantic import Field, model_validator
from pydantic_core import ArgsKwargs

from keyward.config.section import settings_class
from keyward.config.values import (
    ConfigPath,
    MaybeCountry,
    MaybeHours,
    MaybeInt,
    MaybeName128,
    MaybePath,
    MaybeText,
    Mount,
    Names64,
    NonEmpty,
    Positive,
    Strings,
    files_exist,
)
from keyward.config_errors import problem
from keyward.pki.subject import key_vault_problem
from keyward.policy.key_vault import lifetime_action_problem, validity_in_months

# Each issuer and each install target is its own class, tagged by ``kind``; a certificate
# holds exactly one of each, so a combination that cannot work cannot be constructed, and
# whoever uses one reads fields that are there (no re-checking of optionals). The TOML keys
# stay flat, as operators write them (issuer = "local-ca", ca_cert = ..., install =
# "files", directory = ...): CertificateSettings sorts them into the two variants.


@settings_class("")
class LocalCaIssuerSettings:
    """``issuer = "local-ca"``: keyward's own CA files sign the certificate."""

    kind: Literal["local-ca"] = "local-ca"
    ca_cert: ConfigPath
    ca_key: ConfigPath


@settings_class("")
class VaultPkiIssuerSettings:
    """``issuer = "vault-pki"``: Vault's PKI engine (``<mount>/issue/<role>``)."""

    kind: Literal["vault-pki"] = "vault-pki"
    vault_pki_role: str
    vault_pki_mount: Mount = "pki"


_LIFETIME_ACTION_NAMES: Final = ("azure_lifetime_action", "azure_lifetime_percentage",
                                  "azure_days_before_expiry")

#: The Vault PKI role field that decides each subject attribute (pki/issue cannot).
_VAULT_ROLE_FIELDS: Final = {"organization": "organization", "organizational_unit": "ou",
                             "country": "country", "state": "province",
                             "locality": "locality"}


@settings_class("")
class AzureKeyVaultIssuerSettings:
    """``issuer = "azure-keyvault"``: Key Vault makes the key; it or keyward's CA signs."""

    kind: Literal["azure-keyvault"] = "azure-keyvault"
    azure_vault_url: str
    azure_certificate_name: str
    #: "self": Key Vault's own issuer; "external-ca": keyward's CA (ca_cert, ca_key) signs
    #: the CSR Key Vault produces; "key-vault-ca": the CA ``[certificate_authorities.<azure_ca>]``
    #: (backend = "azure-keyvault", a CA kept in Key Vault) signs it, with the CA
    #: certificate that rotation made active (its key signs through Key Vault unless it is
    #: exportable), so a rotation's switch moves these leaves to the successor.
    azure_mode: Literal["self", "external-ca", "key-vault-ca"] = "self"
    ca_cert: MaybePath = None
    ca_key: MaybePath = None
    #: With azure_mode = "key-vault-ca": the name of the [certificate_authorities] table.
    azure_ca: MaybeText = None
    #: What Key Vault itself does as the certificate ages (its policy's lifetime action):
    #: "AutoRenew" (Key Vault makes a new version on its own; azure_mode = "self" only) or
    #: "EmailContacts" (the vault's certificate contacts are mailed), at
    #: azure_days_before_expiry or azure_lifetime_percentage (exactly one). Unset: the
    #: policy names none and Key Vault applies its own default.
    azure_lifetime_action: Literal["AutoRenew", "EmailContacts"] | None = None
    azure_days_before_expiry: MaybeInt = None
    azure_lifetime_percentage: MaybeInt = None

    @model_validator(mode="after")
    def _lifetime_action(self) -> Self:
        found = lifetime_action_problem(
            signed_by_key_vault=self.azure_mode == "self", action=self.azure_lifetime_action,
            percentage=self.azure_lifetime_percentage, days=self.azure_days_before_expiry,
            names=_LIFETIME_ACTION_NAMES)
        if found is not None:
            raise problem(found[1], at=found[0])
        return self

    @model_validator(mode="after")
    def _signing_ca(self) -> Self:
        if (self.azure_mode == "key-vault-ca") != (self.azure_ca is not None):
            raise problem("required with azure_mode = 'key-vault-ca' (the CA table that signs)"
                          if self.azure_ca is None else
                          "only with azure_mode = 'key-vault-ca'", at="azure_ca")
        for name in ("ca_cert", "ca_key"):
            given = getattr(self, name) is not None
            if self.azure_mode == "external-ca" and not given:
                raise problem("required with azure_mode = 'external-ca' (the signing CA)",
                              at=name)
            if self.azure_mode != "external-ca" and given:
                signer = "Key Vault" if self.azure_mode == "self" else "azure_ca"
                raise problem(f"only with azure_mode = 'external-ca' ({signer} signs in "
                              f"{self.azure_mode!r} mode)", at=name)
        return self

    @property
    def signing_ca(self) -> tuple[Path, Path] | None:
        """``(ca_cert, ca_key)`` with ``azure_mode = "external-ca"`` (the constructor makes
        sure both are there), else None: Key Vault signs."""
        if self.ca_cert is None or self.ca_key is None:
            return None
        return self.ca_cert, self.ca_key


@settings_class("")
class CertManagerIssuerSettings:
    """``issuer = "cert-manager"``: a CertificateRequest against a cert-manager issuer."""

    kind: Literal["cert-manager"] = "cert-manager"
    kubernetes_namespace: str
    cert_manager_issuer: str
    cert_manager_issuer_kind: Literal["Issuer", "ClusterIssuer"] = "Issuer"


@settings_class("")
class FilesInstall:
    """``install = "files"``: tls.crt / tls.key / ca.crt in ``directory`` (symlink-swapped)."""

    kind: Literal["files"] = "files"
    directory: ConfigPath


@settings_class("")
class KubernetesSecretInstall:
    """``install = "kubernetes-secret"``: a ``kubernetes.io/tls`` Secret."""

    kind: Literal["kubernetes-secret"] = "kubernetes-secret"
    kubernetes_namespace: str
    kubernetes_secret: str


@settings_class("")
class AzureKeyVaultInstall:
    """``install = "azure-keyvault"``: the pair imported into Key Vault."""

    kind: Literal["azure-keyvault"] = "azure-keyvault"
    azure_vault_url: str
    azure_certificate_name: str


IssuerSettings = (LocalCaIssuerSettings | VaultPkiIssuerSettings | AzureKeyVaultIssuerSettings
                  | CertManagerIssuerSettings)
InstallSettings = FilesInstall | KubernetesSecretInstall | AzureKeyVaultInstall


def _variant_keys(*classes: Any) -> dict[str, tuple[str, ...]]:
    return {cls.__pydantic_fields__["kind"].default: tuple(
        name for name in cls.__pydantic_fields__ if name != "kind") for cls in classes}


_ISSUER_KEYS: Final = _variant_keys(*get_args(IssuerSettings))
_INSTALL_KEYS: Final = _variant_keys(*get_args(InstallSettings))
_VARIANT_KEYS: Final = tuple(dict.fromkeys(
    name for names in (*_ISSUER_KEYS.values(), *_INSTALL_KEYS.values()) for name in names))


@settings_class("")
class CertificateSettings:
    """One certificate keyward keeps renewed: what it is, who issues it, where it goes."""

    common_name: NonEmpty
    #: The rest of the subject (every issuer but vault-pki, whose role decides them):
    #: O and OU one name or a list, C a two-letter code, ST and L one name each.
    organization: Names64 = ()
    organizational_unit: Names64 = ()
    country: MaybeCountry = None
    state: MaybeName128 = None
    locality: MaybeName128 = None
    dns_names: Strings = ()
    ip_addresses: Strings = ()
    usage: Literal["client", "server", "both"] = "client"
    key_type: Literal["ec-p256", "rsa-2048", "rsa-4096"] = "ec-p256"
    lifetime_hours: Positive = 2160.0
    #: Renew when this much lifetime is left (default: a third of the lifetime).
    renew_before_hours: MaybeHours = None
    #: Below this much lifetime left, every check logs an error (default: a tenth).
    critical_hours: MaybeHours = None
    issuer: Annotated[IssuerSettings, Field(discriminator="kind")]
    install: Annotated[InstallSettings, Field(discriminator="kind")]
    #: host:port to TLS-handshake with after installing (checks the new pair is served).
    verify_endpoint: MaybeText = None
    #: The operator's pin: PEM file of the CA certificate(s) this certificate must chain
    #: to. Without it the chain is checked only against the CA the issuer returns with
    #: the certificate, which a compromised or misconfigured issuer chooses itself. With
    #: it, a renewal whose certificate (or returned CA) does not reach the pin is refused
    #: and not installed, and an installed pair that does not reach it is renewed.
    trust_anchor: MaybePath = None

    #: The names a [certificates.<name>] table may hold (the variants' keys are flat there).
    settings_names: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _flat_keys(cls, data: Any) -> Any:
        """``issuer = "local-ca"``, ``ca_cert = …``, ``install = "files"``, … (the TOML
        form, also accepted as keyword arguments) sorted into the issuer and install
        variants. A variant's key that neither chosen variant takes is refused."""
        if isinstance(data, ArgsKwargs):
            values = dict(data.kwargs or {})
        elif isinstance(data, dict):
            values = dict(data)
        else:
            return data  # not a table: pydantic says so
        flat = {name: value for name in _VARIANT_KEYS
                if (value := values.pop(name, None)) not in (None, "")}
        taken: set[str] = set()
        kinds: dict[str, Any] = {}
        for field, default, keys in (("issuer", "local-ca", _ISSUER_KEYS),
                                     ("install", "files", _INSTALL_KEYS)):
            chosen = values.get(field, default)
            if isinstance(chosen, str):
                names = keys.get(chosen, ())
                values[field] = {"kind": chosen, **{n: flat[n] for n in names if n in flat}}
                taken.update(names)
                kinds[field] = chosen
            else:  # already a variant (a typed one, or a nested TOML table)
                kinds[field] = chosen.get("kind") if isinstance(chosen, dict) \
                    else getattr(chosen, "kind", None)
                if name := next((n for n in flat if n in keys.get(kinds[field], ())), None):
                    raise problem(f"{field} is given as a whole; set {name} in it", at=name)
        if kinds["issuer"] in _ISSUER_KEYS and kinds["install"] in _INSTALL_KEYS:
            for name in flat:
                if name not in taken:
                    raise problem(f"does not apply with issuer = {kinds['issuer']!r} and "
                                  f"install = {kinds['install']!r}", at=name)
        return ArgsKwargs((), values) if isinstance(data, ArgsKwargs) else values

    @model_validator(mode="after")
    def _renewal_window(self) -> Self:
        if self.renew_before_hours is not None and not \
                0 < self.renew_before_hours < self.lifetime_hours:
            raise problem("must be between 0 and lifetime_hours", at="renew_before_hours")
        return self

    @model_validator(mode="after")
    def _subject_fits_the_issuer(self) -> Self:
        """Vault's pki/issue cannot set O, OU, C, ST or L (its role does); Key Vault's
        subject syntax cannot carry a double quote or a backslash."""
        if isinstance(self.issuer, VaultPkiIssuerSettings):
            for name, role_field in _VAULT_ROLE_FIELDS.items():
                if getattr(self, name):
                    raise problem(
                        f"issuer = 'vault-pki' cannot set it: Vault's pki/issue takes only the "
                        f"common name, and the role's {role_field!r} field decides what every "
                        f"certificate it issues carries (vault write "
                        f"{self.issuer.vault_pki_mount}/roles/{self.issuer.vault_pki_role} "
                        f"{role_field}=…); remove {name} here", at=name)
        if isinstance(self.issuer, AzureKeyVaultIssuerSettings):
            if found := key_vault_problem(self):
                raise problem(found[1], at=found[0])
            # The issuer checked the rest; days_before_expiry's bound needs the lifetime.
            issuer = self.issuer
            found_action = lifetime_action_problem(
                signed_by_key_vault=issuer.azure_mode == "self",
                action=issuer.azure_lifetime_action,
                percentage=issuer.azure_lifetime_percentage,
                days=issuer.azure_days_before_expiry,
                months=validity_in_months(timedelta(hours=self.lifetime_hours)),
                names=_LIFETIME_ACTION_NAMES)
            if found_action is not None:
                raise problem(found_action[1], at=found_action[0])
        return self

    def check_files(self, name: str) -> None:
        files_exist(f"certificates.{name}", self, "trust_anchor")


CertificateSettings.settings_names = (
    "common_name", "organization", "organizational_unit", "country", "state", "locality",
    "dns_names", "ip_addresses", "usage", "key_type", "lifetime_hours", "renew_before_hours",
    "critical_hours", "issuer", "install", "directory", "verify_endpoint", "trust_anchor",
    "ca_cert", "ca_key", "vault_pki_mount", "vault_pki_role", "azure_vault_url",
    "azure_certificate_name", "azure_mode", "azure_ca", "azure_lifetime_action",
    "azure_days_before_expiry", "azure_lifetime_percentage", "kubernetes_namespace",
    "cert_manager_issuer", "cert_manager_issuer_kind", "kubernetes_secret")
