"""The ``[devstack]`` section: the embedded local stack that ``worker.py --dev`` starts.

The dev stack (``devstack/``, a distribution of its own) reads it, but it is declared here
with the other sections, so one keyward.toml is validated as a whole, with or without the
dev stack installed. The stack serves an unauthenticated codec server and a dev Vault over
http, so its host must be this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import model_validator

from keyward.config.network import is_loopback_host
from keyward.config.section import settings_class
from keyward.config.values import ConfigPath, Flag, Port, Positive, Strings
from keyward.config_errors import problem


@settings_class("devstack")
class DevstackSettings:
    """The embedded local stack that ``worker.py --dev`` starts."""

    state_dir: ConfigPath = Path(".keyward")
    host: str = "127.0.0.1"
    temporal_port: Port = 7233
    ui_port: Port = 8233
    vault_port: Port = 8200
    codec_server_port: Port = 8234
    #: Transit keys created at start so the worker has something to encrypt with.
    transit_keys: Strings = ("default",)
    #: Run the worker through an mTLS gateway with a short-lived certificate from a local
    #: CA (renewed by a RenewCertificate schedule, reloaded without restart).
    mtls: Flag = True
    gateway_port: Port = 7443
    #: Lifetime of the worker's client certificate; renewed with a third of it left.
    client_certificate_minutes: Positive = 10.0
    #: The gateway closes connections this old, as Temporal Cloud does every 5 minutes.
    gateway_max_connection_age_seconds: Positive = 300.0
    #: Lifetime of the gateway's server certificate (``[certificates.keyward-gateway]``,
    #: renewed by schedule with a third of it left). A CA rotation keeps the old CA
    #: trusted for the longest leaf lifetime + grace, so this bounds how long one takes.
    gateway_certificate_minutes: Positive = 60.0
    #: ``[certificate_authorities.local]`` (the stack's CA, ``starter.py rotate-ca local``):
    #: how long the old + new bundle soaks before issuance switches to the new CA...
    ca_rotation_soak_seconds: Positive = 10.0
    #: ...and how long past the longest leaf lifetime the old CA stays in the bundle.
    ca_rotation_grace_seconds: Positive = 60.0

    @model_validator(mode="after")
    def _loopback(self) -> Self:
        # The stack serves a codec server without auth and a dev Vault whose root token
        # travels over plain http: neither may be reachable from another machine.
        if not is_loopback_host(self.host):
            raise problem(f"must be a loopback address (127.0.0.1, localhost, ::1), not "
                          f"{self.host!r}: the local stack serves an unauthenticated codec "
                          "server and a dev Vault over http", at="host")
        return self
