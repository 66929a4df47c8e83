"""The ``[temporal]`` section: which envconfig profile, keyward's task queue, reloaded TLS.

The Temporal *connection* itself is not here: it comes from ``temporalio.envconfig`` (the
same ``temporal.toml`` profiles and ``TEMPORAL_*`` variables as the ``temporal`` CLI).
What keyward adds is the task queue every workflow and activity runs on, and client
certificate and API key files that it watches and reloads without a restart.
"""

from __future__ import annotations

from typing import Final, Self

from pydantic import model_validator

from keyward.config.section import settings_class
from keyward.config.values import MaybePath, MaybeText, NonEmpty, Positive
from keyward.config_errors import problem

#: The one task queue every keyward workflow and activity runs on, unless overridden.
DEFAULT_TASK_QUEUE: Final = "keyward"


@settings_class("temporal")
class TemporalSettings:
    """Which envconfig profile to use, and keyward's task queue."""

    profile: MaybeText = None
    config_file: MaybePath = None
    task_queue: NonEmpty = DEFAULT_TASK_QUEUE
    #: mTLS client certificate files, watched and reloaded without a restart. They take
    #: precedence over envconfig's TLS paths (which are read only once, at start).
    tls_cert: MaybePath = None
    tls_key: MaybePath = None
    tls_server_ca: MaybePath = None
    tls_server_name: MaybeText = None
    #: The CA that must have signed a new client pair before it is used (recommended).
    tls_client_ca: MaybePath = None
    tls_reload_seconds: Positive = 1.0
    #: A file holding the API key (bearer token) for Temporal; re-read when it changes,
    #: every ``tls_reload_seconds``. Takes precedence over TEMPORAL_API_KEY.
    api_key_file: MaybePath = None

    @model_validator(mode="after")
    def _pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise problem("tls_cert and tls_key go together",
                          at="tls_key" if self.tls_key is None else "tls_cert")
        return self
