"""keyward's application settings: one typed, validated, immutable object.

Built by :func:`load_settings` from defaults, a TOML file and the environment (the order is
in ``keyward.config.loading``), or in code (tests, the dev stack). pydantic-settings reads
the sources and pydantic validates. The classes are frozen *pydantic dataclasses*, not
models: ``dataclasses.replace(settings, vault=...)`` derives a variant and validates it
again (a model's ``model_copy(update=...)`` would not), and every ``Settings(...)`` and
``dataclasses.replace`` in the code and tests keeps working unchanged.

The Temporal *connection* is deliberately not here: it comes from
``temporalio.envconfig`` (the same ``temporal.toml`` profiles and ``TEMPORAL_*``
variables as the ``temporal`` CLI), so one profile serves the CLI and keyward.

Unknown settings are errors rather than silently ignored: a typo in a security
setting (``vault.ca_crt``) must not fall back to a default nobody chose. Every problem
is a :class:`ConfigError` naming the setting, raised by the constructors themselves.
Constructing settings never touches the disk; :func:`load_settings` then checks that
the files they name exist (:meth:`Settings.check_files`).

This package is the import path (``from keyward.config import Settings``); its modules
each hold one part:

- ``section``: :func:`~keyward.config.section.settings_class`, which every section uses;
- ``values``: the value types (``Positive``, ``Port``, ``Mount``, ...) and their checks;
- ``network``: what counts as this machine, and the plain-http rule;
- ``temporal``, ``vault``, ``codec`` (codec and codec server), ``rotation``,
  ``certificates`` (with the issuer and install variants), ``devstack``,
  ``observability`` (metrics and logging): one module per kind of section;
- ``settings``: the root :class:`Settings`;
- ``loading``: the sources and :func:`load_settings`.

How pydantic's errors become ``invalid setting …`` messages is ``keyward.config_errors``.
"""

from __future__ import annotations

from keyward.config.certificates import (
    AzureKeyVaultInstall,
    AzureKeyVaultIssuerSettings,
    CertificateSettings,
    CertManagerIssuerSettings,
    FilesInstall,
    KubernetesSecretInstall,
    LocalCaIssuerSettings,
    VaultPkiIssuerSettings,
)
from keyward.config.codec import CodecServerSettings, CodecSettings
from keyward.config.loading import _Sources as _Sources  # for the test of its sections
from keyward.config.loading import load_settings
from keyward.config.network import is_loopback_host
from keyward.config.observability import LoggingSettings, MetricsSettings
from keyward.config.rotation import RotationSettings
from keyward.config.settings import Settings
from keyward.config.temporal import DEFAULT_TASK_QUEUE, TemporalSettings
from keyward.config.vault import VaultSettings

__all__ = [
    "DEFAULT_TASK_QUEUE",
    "AzureKeyVaultInstall",
    "AzureKeyVaultIssuerSettings",
    "CertManagerIssuerSettings",
    "CertificateSettings",
    "CodecServerSettings",
    "CodecSettings",
    "FilesInstall",
    "KubernetesSecretInstall",
    "LocalCaIssuerSettings",
    "LoggingSettings",
    "MetricsSettings",
    "RotationSettings",
    "Settings",
    "TemporalSettings",
    "VaultPkiIssuerSettings",
    "VaultSettings",
    "is_loopback_host",
    "load_settings",
]
