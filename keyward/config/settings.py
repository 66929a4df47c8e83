"""The root of keyward's settings: :class:`Settings`, one field per section.

It holds the sections the other modules of this package declare, names them for error
messages (``SECTIONS``, ``Settings.settings_names``) and runs their disk checks together
(:meth:`Settings.check_files`). Reading the sources into it is ``keyward.config.loading``'s
job; this module reads nothing.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Final, Self

from pydantic import model_validator

from keyward.config.authorities import CertificateAuthoritySettings
from keyward.config.certificates import AzureKeyVaultIssuerSettings, CertificateSettings
from keyward.config.cloud import CloudSettings
from keyward.config.codec import CodecServerSettings, CodecSettings
from keyward.config.devstack import DevstackSettings
from keyward.config.observability import LoggingSettings, MetricsSettings
from keyward.config.rotation import RotationSettings
from keyward.config.section import settings_class
from keyward.config.temporal import TemporalSettings
from keyward.config.vault import VaultSettings
from keyward.config_errors import problem


@settings_class("")
class Settings:
    temporal: TemporalSettings = dataclasses.field(default_factory=TemporalSettings)
    vault: VaultSettings = dataclasses.field(default_factory=VaultSettings)
    codec: CodecSettings = dataclasses.field(default_factory=CodecSettings)
    codec_server: CodecServerSettings = dataclasses.field(default_factory=CodecServerSettings)
    rotation: RotationSettings = dataclasses.field(default_factory=RotationSettings)
    #: Certificates by name (TOML tables [certificates.<name>]).
    certificates: dict[str, CertificateSettings] = dataclasses.field(default_factory=dict)
    #: CAs keyward rotates, by name (TOML tables [certificate_authorities.<name>]).
    certificate_authorities: dict[str, CertificateAuthoritySettings] = dataclasses.field(
        default_factory=dict)
    devstack: DevstackSettings = dataclasses.field(default_factory=DevstackSettings)
    metrics: MetricsSettings = dataclasses.field(default_factory=MetricsSettings)
    logging: LoggingSettings = dataclasses.field(default_factory=LoggingSettings)
    #: The Temporal Cloud Operations API (declared in keyward/config/cloud.py).
    cloud: CloudSettings = dataclasses.field(default_factory=CloudSettings)
    #: Where the settings came from, for messages ("from /etc/keyward.toml").
    source: str = dataclasses.field(default="defaults", compare=False)

    settings_names: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _key_vault_cas_exist(self) -> Self:
        """A certificate signed by a Key Vault CA names a [certificate_authorities] table
        with backend = "azure-keyvault" (what signs it is decided there)."""
        for name, cert in self.certificates.items():
            issuer = cert.issuer
            if not isinstance(issuer, AzureKeyVaultIssuerSettings) or issuer.azure_ca is None:
                continue
            ca = self.certificate_authorities.get(issuer.azure_ca)
            if ca is None or ca.backend != "azure-keyvault":
                raise problem(f"names no [certificate_authorities.{issuer.azure_ca}] with "
                              "backend = 'azure-keyvault'", at=f"certificates.{name}.azure_ca")
        return self

    def check_files(self) -> None:
        """Every file the settings name exists: the one step that reads the disk.

        :func:`load_settings` runs it, so a typo in a path fails at start, naming the
        setting, rather than at the first TLS handshake; settings built in code (tests,
        the dev stack) may name files that appear later.
        """
        self.vault.check_files()
        self.codec_server.check_files()
        self.cloud.check_files()
        for name, cert in self.certificates.items():
            cert.check_files(name)


SECTIONS: Final = tuple(field.name for field in dataclasses.fields(Settings)
                        if field.name not in ("certificates", "certificate_authorities",
                                              "source"))
Settings.settings_names = (*SECTIONS, "certificates", "certificate_authorities")
