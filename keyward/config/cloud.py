"""The ``[cloud]`` section: how keyward reaches the Temporal Cloud Operations API.

Every field is documented where it is declared; README's settings table lists them
(``KEYWARD_CLOUD__API_KEY_FILE`` and so on). Rules that need the rest of the library (plain
text only to a loopback host) are checked where the client is built,
``keyward.cloud.ops.CloudOps.connect``, as the codec server's serving checks are.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Final

from keyward.cloud.names import check_codec_endpoint, check_namespace_name
from keyward.config.section import settings_class
from keyward.config.values import (
    Flag,
    MaybePath,
    MaybeText,
    Port,
    Positive,
    Strings,
    checked_by,
    files_exist,
)
from keyward.errors import KeywardError

#: Temporal Cloud's Operations API endpoint.
DEFAULT_HOST: Final = "saas-api.tmprl.cloud"
DEFAULT_PORT: Final = 443
#: The api-cloud release the protos in temporalio 1.35 are generated from (its RPCs and
#: enums are v0.17.0's). Cloud reads and writes a message as the pinned version defines it,
#: and UpdateNamespace replaces the spec whole: pin the version keyward's protos know, so
#: no field Cloud has and keyward cannot see is reset by a write. Raise it together with
#: temporalio. Versions before v0.3.0 (``2024-10-01-00``) carry roles, permissions and
#: operation states as strings only.
DEFAULT_API_VERSION: Final = "v0.17.0"
SECTION: Final = "cloud"

_API_VERSION: Final = re.compile(r"v\d+\.\d+\.\d+|\d{4}-\d{2}-\d{2}-\d{2}")
_HOST: Final = re.compile(r"[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\]")


def _api_version(value: Any) -> str | None:
    return None if _API_VERSION.fullmatch(value) else \
        "must be an api-cloud release like 'v0.17.0'"


def _host(value: Any) -> str | None:
    return None if _HOST.fullmatch(value) else \
        "must be a host name or address, without scheme or port"


def _namespaces(value: tuple[str, ...]) -> str | None:
    return _first_refusal(check_namespace_name, value)


def _endpoints(value: tuple[str, ...]) -> str | None:
    return _first_refusal(check_codec_endpoint, value)


def _first_refusal(check: Any, values: tuple[str, ...]) -> str | None:
    for value in values:
        try:
            check(value)
        except KeywardError as exc:
            return str(exc)
    return None


@settings_class(SECTION)
class CloudSettings:
    """Where the Cloud Ops API is, how keyward authenticates to it, and how long it waits."""

    #: File holding the API key (a service account's or a user's); re-read whenever its
    #: content changes, so a rotated key is used from the next call on. Required to use the
    #: Ops API at all; never logged.
    api_key_file: MaybePath = None
    #: The ``temporal-cloud-api-version`` header every call carries (see DEFAULT_API_VERSION).
    api_version: Annotated[str, checked_by(_api_version)] = DEFAULT_API_VERSION
    host: Annotated[str, checked_by(_host)] = DEFAULT_HOST
    port: Port = DEFAULT_PORT
    #: TLS to the endpoint. Off only to a loopback host (an emulator): the API key would
    #: cross the network in clear.
    tls: Flag = True
    #: CA bundle for the endpoint's certificate (default: the system's roots), and the name
    #: to verify it for (default: ``host``): for a proxy in front of Cloud, or a test server.
    tls_server_ca: MaybePath = None
    tls_server_name: MaybeText = None
    #: Deadline of each call.
    timeout_seconds: Positive = 10.0
    #: How long ``wait_operation`` waits for an async operation (a namespace update) to end.
    operation_timeout_seconds: Positive = 300.0
    #: The longest pause between two polls of an async operation; Cloud's own suggested
    #: ``check_duration`` is used when it is shorter.
    operation_poll_seconds: Positive = 2.0
    #: The namespaces (``<name>.<account-id>``) keyward's Cloud namespace *activities* may
    #: read and change. Empty (the default): they refuse every namespace. Activity inputs
    #: are untrusted (docs/trust-boundary.md §5), so which namespaces a workflow may touch is
    #: the worker's decision; the operator's ``keyward cloud …`` commands are not limited.
    namespaces: Annotated[Strings, checked_by(_namespaces)] = ()
    #: The codec-server endpoints (``https://`` URLs, compared exactly) the
    #: ``SetNamespaceCodecServer`` activity may set. Empty (the default): it sets none. A
    #: codec endpoint receives the Web UI's payloads and, with ``pass_access_token``, each
    #: user's access token, so an input must not choose it.
    codec_endpoints: Annotated[Strings, checked_by(_endpoints)] = ()

    def check_files(self) -> None:
        """The files named exist (``keyward.config.load_settings`` runs this at start)."""
        files_exist(SECTION, self, "api_key_file", "tls_server_ca")

    @property
    def target(self) -> str:
        """``host:port``, as ``CloudOperationsClient.connect`` takes it."""
        return f"{self.host}:{self.port}"
