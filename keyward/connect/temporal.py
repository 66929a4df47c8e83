"""Temporal client factory: envconfig profiles and ``TEMPORAL_*`` variables → a connected client.

keyward reads its Temporal connection the way the ``temporal`` CLI does
(``temporalio.envconfig``), so one ``temporal.toml`` profile or one set of
``TEMPORAL_ADDRESS``/``TEMPORAL_TLS_*`` variables serves both.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfig, ClientConnectConfig
from temporalio.service import RetryConfig

from keyward.config import TemporalSettings
from keyward.connect.api_key import read_api_key
from keyward.connect.reload import ClientTLSFiles, tls_config
from keyward.errors import ConfigError, StartupError

DEFAULT_ADDRESS = "localhost:7233"


def load_connect_config(
    settings: TemporalSettings, *, env: Mapping[str, str] | None = None
) -> ClientConnectConfig:
    """Connection arguments from the envconfig profile and environment."""
    env = os.environ if env is None else env
    try:
        config = ClientConfig.load_client_connect_config(
            profile=settings.profile,
            config_file=str(settings.config_file) if settings.config_file else None,
            override_env_vars=dict(env),
        )
    except (OSError, ValueError, RuntimeError) as exc:
        raise ConfigError("temporal.profile",
                          f"cannot load Temporal client config: {exc}") from None
    config.setdefault("target_host", DEFAULT_ADDRESS)
    return config


async def connect_temporal(
    settings: TemporalSettings,
    *,
    env: Mapping[str, str] | None = None,
    data_converter: DataConverter | None = None,
    connect_timeout: timedelta = timedelta(seconds=10),
) -> Client:
    """Connect, failing fast with a clear :class:`StartupError` when nobody answers."""
    config = load_connect_config(settings, env=env)
    if settings.tls_cert is not None and settings.tls_key is not None:
        try:
            config["tls"] = tls_config(ClientTLSFiles(
                cert=settings.tls_cert, key=settings.tls_key, ca=settings.tls_server_ca,
                server_name=settings.tls_server_name))
        except OSError as exc:
            raise ConfigError("temporal.tls_cert",
                              f"cannot read the client certificate pair: {exc}") from None
    if settings.api_key_file is not None:
        config["api_key"] = read_api_key(settings.api_key_file)
    address = config["target_host"]
    retry_ms = int(connect_timeout.total_seconds() * 1000)
    try:
        return await Client.connect(
            **config,
            data_converter=data_converter or DataConverter.default,
            # Retry briefly at start; past the timeout a missing server is an error, not a wait.
            retry_config=RetryConfig(max_elapsed_time_millis=retry_ms),
        )
    except RuntimeError as exc:
        raise StartupError(f"cannot reach Temporal at {address}: {exc}") from exc
