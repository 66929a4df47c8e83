"""The ``[cloud]`` settings section: how keyward reaches the Temporal Cloud Operations API.

Every field is documented where it is declared; README's settings table lists them. The
section is a frozen pydantic dataclass like the others in ``keyward.config``, whose
``Settings`` holds it as ``cloud`` (``KEYWARD_CLOUD__API_KEY_FILE`` and so on). It is
declared here, not in ``keyward.config``, because that module imports it: so it cannot use
``keyward.config.settings_class`` and its value types (an import cycle) and declares the
few it needs itself, turning pydantic's errors into :class:`keyward.errors.ConfigError`
through the same ``keyward.config_errors``. Rules that need the rest of the library (plain
text only to a loopback host) are checked where the client is built,
``keyward.cloud.ops.CloudOps.connect``, as the codec server's serving checks are.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Final

import pydantic.dataclasses
from pydantic import AfterValidator, BeforeValidator, ConfigDict, ValidationError

from keyward.cloud.names import check_codec_endpoint, check_namespace_name
from keyward.config_errors import config_error, problem_with_value
from keyward.errors import ConfigError, KeywardError

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


def _blank_is_none(value: Any) -> Any:
    """An optional setting given as ``""`` (``KEYWARD_CLOUD__TLS_SERVER_CA=``) is not set."""
    return None if value == "" else value


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read true as 1
        raise problem_with_value("must be a number")
    return value


def _positive(value: float) -> float:
    if not value > 0:
        raise problem_with_value("must be greater than 0")
    return value


def _port(value: int) -> int:
    if not 0 < value < 65536:
        raise problem_with_value("must be a TCP port between 1 and 65535")
    return value


def _api_version(value: str) -> str:
    if not _API_VERSION.fullmatch(value):
        raise problem_with_value("must be an api-cloud release like 'v0.17.0'")
    return value


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise problem_with_value("must be a host name or address, without scheme or port")
    return value


def _strings(value: Any) -> Any:
    """A list of strings; from the environment, comma-separated (as keyward.config's)."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise problem_with_value("must be a list of strings")
    return tuple(item.strip() for item in items if item.strip())


def _namespaces(value: tuple[str, ...]) -> tuple[str, ...]:
    for namespace in value:
        try:
            check_namespace_name(namespace)
        except KeywardError as exc:
            raise problem_with_value(str(exc)) from None
    return value


def _endpoints(value: tuple[str, ...]) -> tuple[str, ...]:
    for endpoint in value:
        try:
            check_codec_endpoint(endpoint)
        except KeywardError as exc:
            raise problem_with_value(str(exc)) from None
    return value


_Path = Annotated[Path | None, BeforeValidator(_blank_is_none), AfterValidator(
    lambda path: path.expanduser() if path is not None else None)]
_Seconds = Annotated[float, BeforeValidator(_not_a_bool), AfterValidator(_positive)]


@pydantic.dataclasses.dataclass(frozen=True, kw_only=True, config=ConfigDict(extra="forbid"))
class CloudSettings:
    """Where the Cloud Ops API is, how keyward authenticates to it, and how long it waits."""

    #: File holding the API key (a service account's or a user's); re-read whenever its
    #: content changes, so a rotated key is used from the next call on. Required to use the
    #: Ops API at all; never logged.
    api_key_file: _Path = None
    #: The ``temporal-cloud-api-version`` header every call carries (see DEFAULT_API_VERSION).
    api_version: Annotated[str, AfterValidator(_api_version)] = DEFAULT_API_VERSION
    host: Annotated[str, AfterValidator(_host)] = DEFAULT_HOST
    port: Annotated[int, BeforeValidator(_not_a_bool), AfterValidator(_port)] = DEFAULT_PORT
    #: TLS to the endpoint. Off only to a loopback host (an emulator): the API key would
    #: cross the network in clear.
    tls: bool = True
    #: CA bundle for the endpoint's certificate (default: the system's roots), and the name
    #: to verify it for (default: ``host``): for a proxy in front of Cloud, or a test server.
    tls_server_ca: _Path = None
    tls_server_name: Annotated[str | None, BeforeValidator(_blank_is_none)] = None
    #: Deadline of each call.
    timeout_seconds: _Seconds = 10.0
    #: How long ``wait_operation`` waits for an async operation (a namespace update) to end.
    operation_timeout_seconds: _Seconds = 300.0
    #: The longest pause between two polls of an async operation; Cloud's own suggested
    #: ``check_duration`` is used when it is shorter.
    operation_poll_seconds: _Seconds = 2.0
    #: The namespaces (``<name>.<account-id>``) keyward's Cloud namespace *activities* may
    #: read and change. Empty (the default): they refuse every namespace. Activity inputs
    #: are untrusted (docs/trust-boundary.md §5), so which namespaces a workflow may touch is
    #: the worker's decision; the operator's ``keyward cloud …`` commands are not limited.
    namespaces: Annotated[tuple[str, ...], BeforeValidator(_strings),
                          AfterValidator(_namespaces)] = ()
    #: The codec-server endpoints (``https://`` URLs, compared exactly) the
    #: ``SetNamespaceCodecServer`` activity may set. Empty (the default): it sets none. A
    #: codec endpoint receives the Web UI's payloads and, with ``pass_access_token``, each
    #: user's access token, so an input must not choose it.
    codec_endpoints: Annotated[tuple[str, ...], BeforeValidator(_strings),
                               AfterValidator(_endpoints)] = ()

    def check_files(self) -> None:
        """The files named exist (``keyward.config.load_settings`` runs this at start)."""
        for name in ("api_key_file", "tls_server_ca"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"{SECTION}.{name}", f"file not found: {path}")

    @property
    def target(self) -> str:
        """``host:port``, as ``CloudOperationsClient.connect`` takes it."""
        return f"{self.host}:{self.port}"


def _raise_config_errors(cls: type[Any], section: str) -> None:
    """Make ``cls(...)`` raise ConfigError naming the setting, as keyward.config's classes
    do; ``from None`` because pydantic's own message may quote a value."""
    validate = cls.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        try:
            validate(self, *args, **kwargs)
        except ValidationError as exc:
            raise config_error(exc, cls, section) from None

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__


_raise_config_errors(CloudSettings, SECTION)
