"""keyward's application settings: one typed, validated, immutable object.

Sources, later ones winning:

1. defaults in the classes below;
2. a TOML file (``--config``, else ``$KEYWARD_CONFIG``, else ``./keyward.toml`` if present);
3. Vault's own variables: ``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_CACERT``, ``VAULT_NAMESPACE``;
4. ``KEYWARD_<SECTION>__<SETTING>`` variables, e.g. ``KEYWARD_CODEC__MODE=direct``.

pydantic-settings reads the sources (its TOML source, its environment source with ``__``
nesting) and pydantic validates. The classes are frozen *pydantic dataclasses*, not
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
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import (
    Annotated,
    Any,
    ClassVar,
    Final,
    Literal,
    Self,
    TypeVar,
    cast,
    dataclass_transform,
    get_args,
)
from urllib.parse import urlparse, urlsplit

import pydantic.dataclasses
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import ArgsKwargs
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from keyward.cloud.settings import CloudSettings
from keyward.config_errors import config_error, problem, problem_with_value
from keyward.errors import ConfigError
from keyward.secrets import Secret
from keyward.vault.names import InvalidVaultName, check_key_name, check_mount

#: The one task queue every keyward workflow and activity runs on, unless overridden.
DEFAULT_TASK_QUEUE: Final = "keyward"
CONFIG_ENV: Final = "KEYWARD_CONFIG"
ENV_PREFIX: Final = "KEYWARD_"
DEFAULT_CONFIG_FILE: Final = "keyward.toml"

_T = TypeVar("_T")


@dataclass_transform(kw_only_default=True, frozen_default=True,
                     field_specifiers=(dataclasses.field, Field))
def settings_class(section: str) -> Callable[[type[_T]], type[_T]]:
    """A frozen pydantic dataclass whose constructor raises ConfigError, not ValidationError.

    ``section`` is where the class sits in the settings (``"vault"``), so an error names
    the setting in full (``vault.timeout_seconds``); ``""`` for classes without a fixed
    place (one certificate, an issuer).
    """

    def build(cls: type[_T]) -> type[_T]:
        built = pydantic.dataclasses.dataclass(frozen=True, kw_only=True,
                                               config=ConfigDict(extra="forbid"))(cls)
        if not getattr(built, "__pydantic_complete__", False):
            # A later rebuild would put pydantic's own __init__ back over the one below.
            raise TypeError(f"{cls.__name__}: define the classes it refers to before it")
        validate = built.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                validate(self, *args, **kwargs)
            except ValidationError as exc:
                # from None: pydantic's own message may quote the value of a secret.
                raise config_error(exc, built, section) from None

        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        built.__init__ = __init__  # type: ignore[method-assign]
        return cast("type[_T]", built)

    return build


# -- value types ---------------------------------------------------------------------------
# Each takes what TOML or an environment variable (always a string) gives.


def _check(check: Callable[[Any], str | None]) -> AfterValidator:
    def run(value: Any) -> Any:
        if value is not None and (found := check(value)):
            raise problem_with_value(found)
        return value

    return AfterValidator(run)


def _blank_is_none(value: Any) -> Any:
    """An optional setting given as ``""`` (``KEYWARD_VAULT__CA_CERT=``) is not set."""
    return None if value == "" else value


def _not_a_bool(value: Any) -> Any:
    # pydantic would read true as 1; a number setting given a boolean is a mistake.
    if isinstance(value, bool):
        raise problem_with_value("must be a number")
    return value


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise problem_with_value("must be true or false")


def _strings(value: Any) -> Any:
    """A list of strings; from the environment, comma-separated."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise problem_with_value("must be a list of strings")
    return tuple(item.strip() for item in items if item.strip())


def _table(value: Any) -> Any:
    """A table; from the environment, ``ns1=key1,ns2=key2``."""
    if isinstance(value, str):
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            left, sep, right = item.partition("=")
            if not sep or not left.strip():
                raise problem(f"must look like 'namespace=key,...' (got {item!r})")
            pairs[left.strip()] = right.strip()
        return pairs
    if not isinstance(value, dict):
        raise problem(f"must be a table of strings (got {value!r})")
    return value


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _fraction(value: Any) -> str | None:
    return None if 0 < value <= 1 else "must be greater than 0 and at most 1"


def _port(value: Any) -> str | None:
    return None if 0 < value < 65536 else "must be a TCP port between 1 and 65535"


def _port_or_zero(value: Any) -> str | None:
    return None if 0 <= value < 65536 else "must be a TCP port, or 0 for off"


def _http_url(value: Any) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "must be an http:// or https:// URL"
    return None


def _mount(value: Any) -> str | None:
    try:
        check_mount(value)
    except InvalidVaultName:
        return "must be a mount path like 'transit' or 'team/transit' (no leading/trailing /)"
    return None


def _non_empty(value: Any) -> str | None:
    return None if value else "must not be empty"


def _key_name(value: str) -> str:
    try:
        return check_key_name(value)
    except InvalidVaultName as exc:
        raise problem(str(exc)) from None


def _origin(value: Any) -> str | None:
    for origin in value:
        parsed = urlparse(origin)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path \
                or origin.endswith("/"):
            return f"each origin must look like https://host[:port] (got {origin!r})"
    return None


def _algorithms(value: Any) -> str | None:
    allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
               "EdDSA"}
    bad = [alg for alg in value if alg not in allowed]
    if bad or not value:
        return (f"only asymmetric algorithms are accepted ({', '.join(sorted(allowed))}); "
                f"got {', '.join(bad) or 'none'}")
    return None


_BLANK_IS_NONE: Final = BeforeValidator(_blank_is_none)
_NUMBER: Final = BeforeValidator(_not_a_bool)

Number = Annotated[float, _NUMBER]
Positive = Annotated[float, _NUMBER, _check(_positive)]
PositiveInt = Annotated[int, _NUMBER, _check(_positive)]
Fraction = Annotated[float, _NUMBER, _check(_fraction)]
Port = Annotated[int, _NUMBER, _check(_port)]
Flag = Annotated[bool, BeforeValidator(_flag)]
NonEmpty = Annotated[str, _check(_non_empty)]
Mount = Annotated[str, _check(_mount)]
HttpUrl = Annotated[str, _check(_http_url)]
ConfigPath = Annotated[Path, AfterValidator(Path.expanduser)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
KeyName = Annotated[str, AfterValidator(_key_name)]
MaybeText = Annotated[str | None, _BLANK_IS_NONE]
MaybePath = Annotated[ConfigPath | None, _BLANK_IS_NONE]
MaybeSecret = Annotated[Secret | None, _BLANK_IS_NONE]
MaybeHours = Annotated[Number | None, _BLANK_IS_NONE]


def _files_exist(section: str, settings: object, *names: str) -> None:
    """The explicit disk check :func:`load_settings` runs (constructors never do)."""
    for name in names:
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{section}.{name}", f"file not found: {path}")


# -- sections ------------------------------------------------------------------------------


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


def is_loopback_host(host: str, *, with_port: bool = False) -> bool:
    """``host`` names this machine only: ``localhost``, 127.0.0.0/8 or ``::1``.

    With ``with_port`` it is a Host header (``[::1]:8234``, ``localhost:8234``); a
    malformed port raises ValueError. Anything else, including a name that merely
    starts like one (``127.0.0.1.evil.example``), is not loopback.
    """
    if any(char in host for char in "/?#@\\ \t"):
        return False
    if with_port:
        parts = urlsplit(f"//{host}")
        if parts.port == 0:  # reading .port raises ValueError for a malformed one
            return False
        name = parts.hostname or ""
    else:
        name = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    name = name.lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _insecure_http(setting: str, url: str | None, allowed: bool, allow_setting: str) -> None:
    """Plain http:// only to this machine, unless the operator said otherwise in so many words.

    A Vault token or the JWKS that decides who may decrypt must not cross a network
    unauthenticated: anyone on the path could read the token or swap the keys.
    """
    if not url or allowed:
        return
    parsed = urlparse(url)
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname or ""):
        raise problem(f"plain http:// to {parsed.hostname} sends credentials "
                      "unencrypted and unauthenticated; use https://, or set "
                      f"{allow_setting} = true if the network path is trusted", at=setting)


@settings_class("vault")
class VaultSettings:
    """How to reach and authenticate to Vault, and where Transit is mounted."""

    address: HttpUrl = "http://127.0.0.1:8200"
    namespace: MaybeText = None
    ca_cert: MaybePath = None
    timeout_seconds: Positive = 10.0
    auth_method: Literal["token", "approle", "kubernetes"] = "token"
    token: MaybeSecret = None
    approle_mount: Mount = "approle"
    approle_role_id: MaybeText = None
    approle_secret_id: MaybeSecret = None
    kubernetes_mount: Mount = "kubernetes"
    kubernetes_role: MaybeText = None
    kubernetes_jwt_path: ConfigPath = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    transit_mount: Mount = "transit"
    #: Allow ``address`` to be plain http:// to a host other than this machine. Off: the
    #: Vault token (and every payload in direct mode) would cross the network in clear.
    #: For a dev Vault on a private container network (deploy/compose) only.
    allow_insecure_http: Flag = False

    @model_validator(mode="after")
    def _transport(self) -> Self:
        # Which credentials an auth method needs is checked where the client is built
        # (keyward.vault.auth): with --dev the token only exists once the dev server runs.
        _insecure_http("address", self.address, self.allow_insecure_http,
                       "vault.allow_insecure_http")
        return self

    def check_files(self) -> None:
        _files_exist("vault", self, "ca_cert")


def _transit_key(value: str) -> str:
    if not value:
        raise problem("must name a Transit key")
    return _key_name(value)


@settings_class("codec")
class CodecSettings:
    """Payload encryption: mode, compression, data-key bounds, namespace → key map."""

    mode: Literal["envelope", "direct"] = "envelope"
    #: Off by default: compressing before encrypting lets ciphertext length reveal how
    #: attacker-supplied input compresses against secrets in the same payload (CRIME).
    compression: Flag = False
    #: namespace → Transit key name; a namespace not listed uses its own name as key.
    keys: Annotated[dict[str, Annotated[str, AfterValidator(_transit_key)]],
                    BeforeValidator(_table)] = dataclasses.field(default_factory=dict)
    #: namespace → keys it used before a change of ``keys``: still accepted when decoding
    #: (old histories), never used to encode. Decoding refuses every other key a payload
    #: names, before asking Vault: the name in a payload's metadata is the sender's choice.
    previous_keys: Annotated[
        dict[str, Annotated[Strings, AfterValidator(lambda keys: tuple(map(_key_name, keys)))]],
        BeforeValidator(_table)] = dataclasses.field(default_factory=dict)
    datakey_max_age_seconds: Positive = 300.0
    # 2^20 is 4096 times below the NIST 2^32 bound for one AES-GCM key with random IVs.
    datakey_max_uses: PositiveInt = 2**20
    decode_cache_size: PositiveInt = 1024
    decode_cache_ttl_seconds: Positive = 900.0

    @model_validator(mode="after")
    def _nist_bound(self) -> Self:
        if self.datakey_max_uses > 2**32:
            raise problem("must not exceed 2^32 (NIST SP 800-38D bound for one AES-GCM key)",
                          at="datakey_max_uses")
        return self

    def key_for(self, namespace: str) -> str:
        return self.keys.get(namespace, namespace)

    def keys_allowed(self, namespace: str) -> frozenset[str]:
        """The keys a payload of ``namespace`` may name: its key and its previous keys."""
        return frozenset((self.key_for(namespace), *self.previous_keys.get(namespace, ())))


@settings_class("codec_server")
class CodecServerSettings:
    """The remote codec endpoint for the Web UI and the ``temporal`` CLI."""

    host: str = "127.0.0.1"
    port: Port = 8234
    #: Origins allowed to call from a browser (the Web UI's), matched exactly.
    allowed_origins: Annotated[Strings, _check(_origin)] = ()
    #: Path segments before the optional /{namespace}/ and /encode|/decode, e.g. "codec".
    path_prefix: str = ""
    #: Namespace used when the request names none (no /{namespace}/ prefix, no X-Namespace).
    default_namespace: str = "default"
    max_body_bytes: PositiveInt = 4 * 1024 * 1024
    tls_cert: MaybePath = None
    tls_key: MaybePath = None
    #: When set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca: MaybePath = None
    tls_reload_seconds: Positive = 5.0
    #: "jwt" verifies bearer tokens; "none" serves anyone and is only for local development.
    auth: Literal["jwt", "none"] = "jwt"
    jwks_url: MaybeText = None
    jwt_public_key: MaybePath = None
    jwt_issuer: MaybeText = None
    jwt_audience: Strings = ()
    jwt_algorithms: Annotated[Strings, _check(_algorithms)] = ("RS256", "ES256")
    jwt_leeway_seconds: Number = 30.0
    permissions_claim: NonEmpty = "permissions"
    #: Refetch the JWKS for an unknown ``kid`` at most this often.
    jwks_min_refresh_seconds: Positive = 30.0
    jwks_cache_seconds: Positive = 600.0
    #: Allow ``jwks_url`` to be plain http:// to a host other than this machine. Off: whoever
    #: can alter that response chooses the keys that decide who may decrypt.
    allow_insecure_http: Flag = False
    #: Allow ``auth = "none"`` on a non-loopback ``host``. Off: anyone who reaches that
    #: address decrypts every namespace. Only for a container whose port is published on
    #: the host's loopback alone (deploy/compose); never on a shared network.
    allow_no_auth_off_loopback: Flag = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise problem("tls_cert and tls_key go together",
                          at="tls_key" if self.tls_key is None else "tls_cert")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise problem("requires tls_cert and tls_key", at="tls_client_ca")
        if self.jwks_url and _http_url(self.jwks_url):
            raise problem("must be an http(s) URL", at="jwks_url")
        _insecure_http("jwks_url", self.jwks_url, self.allow_insecure_http,
                       "codec_server.allow_insecure_http")
        if self.auth == "none" and not is_loopback_host(self.host) \
                and not self.allow_no_auth_off_loopback:
            raise problem(f"auth = \"none\" serves decrypted payloads to anyone; it may "
                          f"only listen on a loopback address, not {self.host!r} (set "
                          "codec_server.allow_no_auth_off_loopback = true only for a "
                          "container port published on the host's loopback)", at="host")
        return self

    def check_files(self) -> None:
        _files_exist("codec_server", self, "tls_cert", "tls_key", "tls_client_ca",
                     "jwt_public_key")

    def require_serving_config(self) -> None:
        """Checks that matter only to a process that serves codec requests.

        Not in the constructor: the worker loads the same settings and must not
        need a JWKS URL it never uses.
        """
        if self.auth == "jwt":
            if not self.jwks_url and not self.jwt_public_key:
                raise ConfigError("codec_server.jwks_url",
                                  "set jwks_url or jwt_public_key (or auth = \"none\" for "
                                  "local development only)")
            if not self.jwt_issuer:
                raise ConfigError("codec_server.jwt_issuer", "required when auth = \"jwt\"")
            if not self.jwt_audience:
                raise ConfigError("codec_server.jwt_audience", "required when auth = \"jwt\"")

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def _encryption_rate(rate: float) -> float:
    if not rate > 0:
        raise problem("expected encryptions per day must be greater than 0")
    return rate


@settings_class("rotation")
class RotationSettings:
    """Transit key rotation: cadence inputs, the decryption floor and the usage ledger."""

    #: Transit key → expected encryptions per day (payloads in direct mode, data keys in
    #: envelope mode). Each key listed gets a rotation Schedule and a usage ledger.
    keys: Annotated[dict[KeyName, Annotated[Number, AfterValidator(_encryption_rate)]],
                    BeforeValidator(_table)] = dataclasses.field(default_factory=dict)
    #: Share of NIST's 2^32 encryptions per key version that keyward lets a version use.
    safety_factor: Fraction = 0.5
    max_key_age_days: Positive = 90.0
    #: The ledger starts a rotation when a version has used this share of its budget.
    ledger_rotate_at: Fraction = 0.9
    ledger_report_seconds: Positive = 30.0
    #: Raise min_decryption_version once Temporal can no longer hold a version's payloads.
    raise_decryption_floor: Flag = True
    retention_buffer_hours: Positive = 24.0
    #: Also trim key versions below the floor from Vault (irreversible): off unless asked.
    trim_archived_versions: Flag = False
    catchup_window_minutes: Positive = 60.0
    #: Before raising the floor, keyward reads the start event of every execution still
    #: present (retries and cron runs carry their first input). Past this many executions
    #: in one namespace it stops reading and keeps the floor where it is.
    history_scan_limit: PositiveInt = 100_000
    #: Transit key → namespaces that use it besides those ``codec.keys`` and
    #: ``codec.previous_keys`` name. Replaces the implicit "a namespace named like the
    #: key" (which blocks the floor for good when no such namespace exists): ``[]`` says
    #: there is none.
    namespaces: Annotated[dict[KeyName, Strings], BeforeValidator(_table)] = \
        dataclasses.field(default_factory=dict)


# -- certificates: who issues, where it goes -----------------------------------------------
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


@settings_class("")
class AzureKeyVaultIssuerSettings:
    """``issuer = "azure-keyvault"``: Key Vault makes the key; it or keyward's CA signs."""

    kind: Literal["azure-keyvault"] = "azure-keyvault"
    azure_vault_url: str
    azure_certificate_name: str
    #: "self": Key Vault's own issuer; "external-ca": keyward's CA (ca_cert, ca_key) signs
    #: the CSR Key Vault produces.
    azure_mode: Literal["self", "external-ca"] = "self"
    ca_cert: MaybePath = None
    ca_key: MaybePath = None

    @model_validator(mode="after")
    def _signing_ca(self) -> Self:
        for name in ("ca_cert", "ca_key"):
            given = getattr(self, name) is not None
            if self.azure_mode == "external-ca" and not given:
                raise problem("required with azure_mode = 'external-ca' (the signing CA)",
                              at=name)
            if self.azure_mode == "self" and given:
                raise problem("only with azure_mode = 'external-ca' (Key Vault signs in "
                              "'self' mode)", at=name)
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

    def check_files(self, name: str) -> None:
        _files_exist(f"certificates.{name}", self, "trust_anchor")


CertificateSettings.settings_names = (
    "common_name", "dns_names", "ip_addresses", "usage", "key_type", "lifetime_hours",
    "renew_before_hours", "critical_hours", "issuer", "install", "directory", "verify_endpoint",
    "trust_anchor", "ca_cert", "ca_key", "vault_pki_mount", "vault_pki_role", "azure_vault_url",
    "azure_certificate_name", "azure_mode", "kubernetes_namespace", "cert_manager_issuer",
    "cert_manager_issuer_kind", "kubernetes_secret")


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

    @model_validator(mode="after")
    def _loopback(self) -> Self:
        # The stack serves a codec server without auth and a dev Vault whose root token
        # travels over plain http: neither may be reachable from another machine.
        if not is_loopback_host(self.host):
            raise problem(f"must be a loopback address (127.0.0.1, localhost, ::1), not "
                          f"{self.host!r}: the local stack serves an unauthenticated codec "
                          "server and a dev Vault over http", at="host")
        return self


@settings_class("metrics")
class MetricsSettings:
    """The worker's Prometheus endpoint (``/metrics``) and health check (``/health``)."""

    host: str = "127.0.0.1"
    #: 0 turns the endpoint off.
    port: Annotated[int, _NUMBER, _check(_port_or_zero)] = 0


_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def _level_name(value: Any) -> Any:
    """``level = "debug"`` is DEBUG; a name that is no level is reported as written."""
    return value.upper() if isinstance(value, str) and value.upper() in _LEVELS else value


@settings_class("logging")
class LoggingSettings:
    """``auto`` picks console output on a terminal and JSON lines otherwise."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"],
                     BeforeValidator(_level_name)] = "INFO"


@settings_class("")
class Settings:
    temporal: TemporalSettings = dataclasses.field(default_factory=TemporalSettings)
    vault: VaultSettings = dataclasses.field(default_factory=VaultSettings)
    codec: CodecSettings = dataclasses.field(default_factory=CodecSettings)
    codec_server: CodecServerSettings = dataclasses.field(default_factory=CodecServerSettings)
    rotation: RotationSettings = dataclasses.field(default_factory=RotationSettings)
    #: Certificates by name (TOML tables [certificates.<name>]).
    certificates: dict[str, CertificateSettings] = dataclasses.field(default_factory=dict)
    devstack: DevstackSettings = dataclasses.field(default_factory=DevstackSettings)
    metrics: MetricsSettings = dataclasses.field(default_factory=MetricsSettings)
    logging: LoggingSettings = dataclasses.field(default_factory=LoggingSettings)
    #: The Temporal Cloud Operations API (declared in keyward/cloud/settings.py).
    cloud: CloudSettings = dataclasses.field(default_factory=CloudSettings)
    #: Where the settings came from, for messages ("from /etc/keyward.toml").
    source: str = dataclasses.field(default="defaults", compare=False)

    settings_names: ClassVar[tuple[str, ...]] = ()

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


_SECTIONS: Final = tuple(field.name for field in dataclasses.fields(Settings)
                         if field.name not in ("certificates", "source"))
Settings.settings_names = (*_SECTIONS, "certificates")


# -- loading -------------------------------------------------------------------------------

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
            raise ConfigError(section, f"unknown section in {path}; known: {', '.join(_SECTIONS)}")
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
        if section not in _SECTIONS:
            raise ConfigError(var, f"unknown section {section!r}; known: {', '.join(_SECTIONS)}")

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
