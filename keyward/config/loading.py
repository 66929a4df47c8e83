"""Reading settings: the sources pydantic-settings reads, merged by precedence.

Sources, later ones winning:

1. defaults in the settings classes;
2. a TOML file (``--config``, else ``$KEYWARD_CONFIG``, else ``./keyward.toml`` if present);
3. Vault's own variables: ``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_CACERT``, ``VAULT_NAMESPACE``;
4. ``KEYWARD_<SECTION>__<SETTING>`` variables, e.g. ``KEYWARD_CODEC__MODE=direct``.

pydantic-settings reads them (its TOML source, its environment source with ``__`` nesting);
:func:`load_settings` merges what they return and hands it to :class:`Settings`, whose
constructors validate, then checks that the files the settings name exist. A problem with
the sources themselves (a missing or unreadable file, invalid TOML, an unknown section) is
a :class:`ConfigError` raised here; a problem with a value is raised by the constructors.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from keyward.config.settings import SECTIONS, Settings
from keyward.errors import ConfigError

CONFIG_ENV: Final = "KEYWARD_CONFIG"
ENV_PREFIX: Final = "KEYWARD_"
DEFAULT_CONFIG_FILE: Final = "keyward.toml"

# Vault's own variables, honoured so an operator's usual shell setup just works.
_VAULT_ENV: Final = {
    "VAULT_ADDR": "address",
    "VAULT_TOKEN": "token",
    "VAULT_CACERT": "ca_cert",
    "VAULT_NAMESPACE": "namespace",
}


class _Sources(BaseSettings):
    """The shape pydantic-settings reads sources into: one table per section.

    Never instantiated: :func:`load_settings` calls the sources, merges what they
    return by precedence and hands the result to :class:`Settings`, which validates
    (so settings from a file and settings built in code go through the same checks).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__",
        # KEYWARD_CODEC__KEYS__X is the setting "keys__x" (unknown), not a nested table.
        env_nested_max_split=1,
        # Values stay strings: lists are comma-separated and tables ns=key,... (the
        # settings' own validators read those), not JSON.
        enable_decoding=False, extra="forbid")

    temporal: dict[str, Any] = Field(default_factory=dict)
    vault: dict[str, Any] = Field(default_factory=dict)
    codec: dict[str, Any] = Field(default_factory=dict)
    codec_server: dict[str, Any] = Field(default_factory=dict)
    rotation: dict[str, Any] = Field(default_factory=dict)
    certificates: dict[str, Any] = Field(default_factory=dict)
    certificate_authorities: dict[str, Any] = Field(default_factory=dict)
    devstack: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    logging: dict[str, Any] = Field(default_factory=dict)
    cloud: dict[str, Any] = Field(default_factory=dict)


def _is_section_variable(name: str) -> bool:
    """KEYWARD_<SECTION>__<SETTING>, not KEYWARD_CONFIG (the prefix is matched as written)."""
    return name.startswith(ENV_PREFIX) and "__" in name


class _KeywardEnvironment(EnvSettingsSource):
    """``KEYWARD_<SECTION>__<SETTING>`` from the mapping given to load_settings."""

    def __init__(self, env: Mapping[str, str]) -> None:
        # The section and setting in any case (KEYWARD_codec__MODE), as pydantic-settings
        # matches them once lower-cased.
        self._given = {name.lower(): value for name, value in env.items()
                       if _is_section_variable(name)}
        super().__init__(_Sources)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._given


class _VaultEnvironment(PydanticBaseSettingsSource):
    """``VAULT_ADDR`` and friends, set and non-empty, as vault settings."""

    def __init__(self, env: Mapping[str, str]) -> None:
        super().__init__(_Sources)
        self._vault = {setting: env[var] for var, setting in _VAULT_ENV.items() if env.get(var)}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for every field at once

    def __call__(self) -> dict[str, Any]:
        return {"vault": dict(self._vault)} if self._vault else {}


def _file_source(path: Path) -> TomlConfigSettingsSource:
    if not path.exists():
        raise ConfigError("config file", f"{path} does not exist")
    if not path.is_file():
        raise ConfigError("config file", f"cannot read {path}: not a regular file")
    try:
        source = TomlConfigSettingsSource(_Sources, toml_file=path)
    except OSError as exc:
        raise ConfigError("config file", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config file", f"{path} is not valid TOML: {exc}") from None
    for section, values in source.toml_data.items():
        if section not in _Sources.model_fields:
            raise ConfigError(section, f"unknown section in {path}; known: {', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(section, f"must be a [{section}] table in {path}")
    return source


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from a TOML file and the environment (``os.environ`` by default).

    Raises :class:`ConfigError` naming the offending setting; files the settings name
    must exist.
    """
    env = os.environ if env is None else env
    variables = [var for var in env if _is_section_variable(var)]
    for var in variables:
        section = var[len(ENV_PREFIX):].lower().partition("__")[0]
        if section not in SECTIONS:
            raise ConfigError(var, f"unknown section {section!r}; known: {', '.join(SECTIONS)}")

    sources: list[PydanticBaseSettingsSource] = []  # lowest precedence first
    source = "defaults"
    config_path = path or _default_config_path(env)
    if config_path is not None:
        sources.append(_file_source(config_path))
        source = str(config_path)
    sources += [_VaultEnvironment(env), _KeywardEnvironment(env)]
    source += "".join(f" + ${var}" for var in _VAULT_ENV if env.get(var))
    source += "".join(f" + ${var}" for var in variables)

    merged: dict[str, Any] = {}
    for each in sources:
        for section, values in each().items():
            merged.setdefault(section, {}).update(values)
    settings = Settings(**merged, source=source)
    settings.check_files()
    return settings


def _default_config_path(env: Mapping[str, str]) -> Path | None:
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    candidate = Path(DEFAULT_CONFIG_FILE)
    return candidate if candidate.is_file() else None
