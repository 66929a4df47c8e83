"""keyward's application settings: one typed, validated, immutable object.

Sources, later ones winning:

1. defaults in the dataclasses below;
2. a TOML file (``--config``, else ``$KEYWARD_CONFIG``, else ``./keyward.toml`` if present);
3. Vault's own variables: ``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_CACERT``, ``VAULT_NAMESPACE``;
4. ``KEYWARD_<SECTION>__<SETTING>`` variables, e.g. ``KEYWARD_CODEC__MODE=direct``.

The Temporal *connection* is deliberately not here: it comes from
``temporalio.envconfig`` (the same ``temporal.toml`` profiles and ``TEMPORAL_*``
variables as the ``temporal`` CLI), so one profile serves the CLI and keyward.

Unknown settings are errors rather than silently ignored: a typo in a security
setting (``vault.ca_crt``) must not fall back to a default nobody chose.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlparse, urlsplit

from keyward.errors import ConfigError
from keyward.secrets import Secret
from keyward.vault.names import InvalidVaultName, check_key_name, check_mount

#: The one task queue every keyward workflow and activity runs on, unless overridden.
DEFAULT_TASK_QUEUE: Final = "keyward"
CONFIG_ENV: Final = "KEYWARD_CONFIG"
ENV_PREFIX: Final = "KEYWARD_"
DEFAULT_CONFIG_FILE: Final = "keyward.toml"

Validator = Callable[[Any], str | None]


def _check(validator: Validator) -> dict[str, Validator]:
    return {"check": validator}


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


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


@dataclass(frozen=True, kw_only=True)
class TemporalSettings:
    """Which envconfig profile to use, and keyward's task queue."""

    profile: str | None = None
    config_file: Path | None = None
    task_queue: str = field(default=DEFAULT_TASK_QUEUE, metadata=_check(_non_empty))
    #: mTLS client certificate files, watched and reloaded without a restart. They take
    #: precedence over envconfig's TLS paths (which are read only once, at start).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_server_ca: Path | None = None
    tls_server_name: str | None = None
    #: The CA that must have signed a new client pair before it is used (recommended).
    tls_client_ca: Path | None = None
    tls_reload_seconds: float = field(default=1.0, metadata=_check(_positive))
    #: A file holding the API key (bearer token) for Temporal; re-read when it changes,
    #: every ``tls_reload_seconds``. Takes precedence over TEMPORAL_API_KEY.
    api_key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("temporal.tls_key" if self.tls_key is None else "temporal.tls_cert",
                              "tls_cert and tls_key go together")


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
        raise ConfigError(setting, f"plain http:// to {parsed.hostname} sends credentials "
                          "unencrypted and unauthenticated; use https://, or set "
                          f"{allow_setting} = true if the network path is trusted")


@dataclass(frozen=True, kw_only=True)
class VaultSettings:
    """How to reach and authenticate to Vault, and where Transit is mounted."""

    address: str = field(default="http://127.0.0.1:8200", metadata=_check(_http_url))
    namespace: str | None = None
    ca_cert: Path | None = None
    timeout_seconds: float = field(default=10.0, metadata=_check(_positive))
    auth_method: Literal["token", "approle", "kubernetes"] = "token"
    token: Secret | None = None
    approle_mount: str = field(default="approle", metadata=_check(_mount))
    approle_role_id: str | None = None
    approle_secret_id: Secret | None = None
    kubernetes_mount: str = field(default="kubernetes", metadata=_check(_mount))
    kubernetes_role: str | None = None
    kubernetes_jwt_path: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    transit_mount: str = field(default="transit", metadata=_check(_mount))
    #: Allow ``address`` to be plain http:// to a host other than this machine. Off: the
    #: Vault token (and every payload in direct mode) would cross the network in clear.
    #: For a dev Vault on a private container network (deploy/compose) only.
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        _insecure_http("vault.address", self.address, self.allow_insecure_http,
                       "vault.allow_insecure_http")
        # Which credentials an auth method needs is checked where the client is built
        # (keyward.vault.auth): with --dev the token only exists once the dev server runs.
        if self.ca_cert is not None and not self.ca_cert.is_file():
            raise ConfigError("vault.ca_cert", f"file not found: {self.ca_cert}")


@dataclass(frozen=True, kw_only=True)
class CodecSettings:
    """Payload encryption: mode, compression, data-key bounds, namespace → key map."""

    mode: Literal["envelope", "direct"] = "envelope"
    #: Off by default: compressing before encrypting lets ciphertext length reveal how
    #: attacker-supplied input compresses against secrets in the same payload (CRIME).
    compression: bool = False
    #: namespace → Transit key name; a namespace not listed uses its own name as key.
    keys: dict[str, str] = field(default_factory=dict)
    #: namespace → keys it used before a change of ``keys``: still accepted when decoding
    #: (old histories), never used to encode. Decoding refuses every other key a payload
    #: names, before asking Vault: the name in a payload's metadata is the sender's choice.
    previous_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    datakey_max_age_seconds: float = field(default=300.0, metadata=_check(_positive))
    # 2^20 is 4096 times below the NIST 2^32 bound for one AES-GCM key with random IVs.
    datakey_max_uses: int = field(default=2**20, metadata=_check(_positive))
    decode_cache_size: int = field(default=1024, metadata=_check(_positive))
    decode_cache_ttl_seconds: float = field(default=900.0, metadata=_check(_positive))

    def __post_init__(self) -> None:
        if self.datakey_max_uses > 2**32:
            raise ConfigError("codec.datakey_max_uses",
                              "must not exceed 2^32 (NIST SP 800-38D bound for one AES-GCM key)")
        for namespace, key in self.keys.items():
            if not key:
                raise ConfigError(f"codec.keys.{namespace}", "must name a Transit key")
            _key_name(f"codec.keys.{namespace}", key)
        for namespace, keys in self.previous_keys.items():
            for key in keys:
                _key_name(f"codec.previous_keys.{namespace}", key)

    def key_for(self, namespace: str) -> str:
        return self.keys.get(namespace, namespace)

    def keys_allowed(self, namespace: str) -> frozenset[str]:
        """The keys a payload of ``namespace`` may name: its key and its previous keys."""
        return frozenset((self.key_for(namespace), *self.previous_keys.get(namespace, ())))


def _key_name(setting: str, key: str) -> None:
    try:
        check_key_name(key)
    except InvalidVaultName as exc:
        raise ConfigError(setting, str(exc)) from None


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


@dataclass(frozen=True, kw_only=True)
class CodecServerSettings:
    """The remote codec endpoint for the Web UI and the ``temporal`` CLI."""

    host: str = "127.0.0.1"
    port: int = field(default=8234, metadata=_check(_port))
    #: Origins allowed to call from a browser (the Web UI's), matched exactly.
    allowed_origins: tuple[str, ...] = field(default=(), metadata=_check(_origin))
    #: Path segments before the optional /{namespace}/ and /encode|/decode, e.g. "codec".
    path_prefix: str = ""
    #: Namespace used when the request names none (no /{namespace}/ prefix, no X-Namespace).
    default_namespace: str = "default"
    max_body_bytes: int = field(default=4 * 1024 * 1024, metadata=_check(_positive))
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: When set, clients must present a certificate signed by this CA (mutual TLS).
    tls_client_ca: Path | None = None
    tls_reload_seconds: float = field(default=5.0, metadata=_check(_positive))
    #: "jwt" verifies bearer tokens; "none" serves anyone and is only for local development.
    auth: Literal["jwt", "none"] = "jwt"
    jwks_url: str | None = None
    jwt_public_key: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: tuple[str, ...] = ()
    jwt_algorithms: tuple[str, ...] = field(default=("RS256", "ES256"),
                                            metadata=_check(_algorithms))
    jwt_leeway_seconds: float = 30.0
    permissions_claim: str = field(default="permissions", metadata=_check(_non_empty))
    #: Refetch the JWKS for an unknown ``kid`` at most this often.
    jwks_min_refresh_seconds: float = field(default=30.0, metadata=_check(_positive))
    jwks_cache_seconds: float = field(default=600.0, metadata=_check(_positive))
    #: Allow ``jwks_url`` to be plain http:// to a host other than this machine. Off: whoever
    #: can alter that response chooses the keys that decide who may decrypt.
    allow_insecure_http: bool = False
    #: Allow ``auth = "none"`` on a non-loopback ``host``. Off: anyone who reaches that
    #: address decrypts every namespace. Only for a container whose port is published on
    #: the host's loopback alone (deploy/compose); never on a shared network.
    allow_no_auth_off_loopback: bool = False

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("codec_server.tls_key" if self.tls_key is None
                              else "codec_server.tls_cert", "tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("codec_server.tls_client_ca", "requires tls_cert and tls_key")
        for name in ("tls_cert", "tls_key", "tls_client_ca", "jwt_public_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ConfigError(f"codec_server.{name}", f"file not found: {path}")
        if self.jwks_url and _http_url(self.jwks_url):
            raise ConfigError("codec_server.jwks_url", "must be an http(s) URL")
        _insecure_http("codec_server.jwks_url", self.jwks_url, self.allow_insecure_http,
                       "codec_server.allow_insecure_http")
        if self.auth == "none" and not is_loopback_host(self.host) \
                and not self.allow_no_auth_off_loopback:
            raise ConfigError("codec_server.host",
                              f"auth = \"none\" serves decrypted payloads to anyone; it may "
                              f"only listen on a loopback address, not {self.host!r} (set "
                              "codec_server.allow_no_auth_off_loopback = true only for a "
                              "container port published on the host's loopback)")

    def require_serving_config(self) -> None:
        """Checks that matter only to a process that serves codec requests.

        Not in ``__post_init__``: the worker loads the same settings and must not
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


def _fraction(value: Any) -> str | None:
    return None if 0 < value <= 1 else "must be greater than 0 and at most 1"


@dataclass(frozen=True, kw_only=True)
class RotationSettings:
    """Transit key rotation: cadence inputs, the decryption floor and the usage ledger."""

    #: Transit key → expected encryptions per day (payloads in direct mode, data keys in
    #: envelope mode). Each key listed gets a rotation Schedule and a usage ledger.
    keys: dict[str, float] = field(default_factory=dict)
    #: Share of NIST's 2^32 encryptions per key version that keyward lets a version use.
    safety_factor: float = field(default=0.5, metadata=_check(_fraction))
    max_key_age_days: float = field(default=90.0, metadata=_check(_positive))
    #: The ledger starts a rotation when a version has used this share of its budget.
    ledger_rotate_at: float = field(default=0.9, metadata=_check(_fraction))
    ledger_report_seconds: float = field(default=30.0, metadata=_check(_positive))
    #: Raise min_decryption_version once Temporal can no longer hold a version's payloads.
    raise_decryption_floor: bool = True
    retention_buffer_hours: float = field(default=24.0, metadata=_check(_positive))
    #: Also trim key versions below the floor from Vault (irreversible): off unless asked.
    trim_archived_versions: bool = False
    catchup_window_minutes: float = field(default=60.0, metadata=_check(_positive))
    #: Before raising the floor, keyward reads the start event of every execution still
    #: present (retries and cron runs carry their first input). Past this many executions
    #: in one namespace it stops reading and keeps the floor where it is.
    history_scan_limit: int = field(default=100_000, metadata=_check(_positive))
    #: Transit key → namespaces that use it besides those ``codec.keys`` and
    #: ``codec.previous_keys`` name. Replaces the implicit "a namespace named like the
    #: key" (which blocks the floor for good when no such namespace exists): ``[]`` says
    #: there is none.
    namespaces: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in (*self.keys, *self.namespaces):
            _key_name(f"rotation.keys.{key}", key)
        for key, rate in self.keys.items():
            if not rate > 0:
                raise ConfigError(f"rotation.keys.{key}",
                                  "expected encryptions per day must be greater than 0")


@dataclass(frozen=True, kw_only=True)
class CertificateSettings:
    """One certificate keyward keeps renewed: what it is, who issues it, where it goes."""

    common_name: str = field(metadata=_check(_non_empty))
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    usage: Literal["client", "server", "both"] = "client"
    key_type: Literal["ec-p256", "rsa-2048", "rsa-4096"] = "ec-p256"
    lifetime_hours: float = field(default=2160.0, metadata=_check(_positive))
    #: Renew when this much lifetime is left (default: a third of the lifetime).
    renew_before_hours: float | None = None
    #: Below this much lifetime left, every check logs an error (default: a tenth).
    critical_hours: float | None = None
    issuer: Literal["local-ca", "vault-pki", "azure-keyvault", "cert-manager"] = "local-ca"
    install: Literal["files", "kubernetes-secret", "azure-keyvault"] = "files"
    #: Where "files" installs tls.crt / tls.key / ca.crt (symlink-swapped atomically).
    directory: Path | None = None
    #: host:port to TLS-handshake with after installing (checks the new pair is served).
    verify_endpoint: str | None = None
    #: The operator's pin: PEM file of the CA certificate(s) this certificate must chain
    #: to. Without it the chain is checked only against the CA the issuer returns with
    #: the certificate, which a compromised or misconfigured issuer chooses itself. With
    #: it, a renewal whose certificate (or returned CA) does not reach the pin is refused
    #: and not installed, and an installed pair that does not reach it is renewed.
    trust_anchor: Path | None = None
    # local-ca
    ca_cert: Path | None = None
    ca_key: Path | None = None
    # vault-pki
    vault_pki_mount: str = field(default="pki", metadata=_check(_mount))
    vault_pki_role: str | None = None
    # azure-keyvault
    azure_vault_url: str | None = None
    azure_certificate_name: str | None = None
    azure_mode: Literal["self", "external-ca"] = "self"
    # cert-manager and kubernetes-secret
    kubernetes_namespace: str | None = None
    cert_manager_issuer: str | None = None
    cert_manager_issuer_kind: Literal["Issuer", "ClusterIssuer"] = "Issuer"
    kubernetes_secret: str | None = None

    def __post_init__(self) -> None:
        required: dict[str, list[str]] = {
            "local-ca": ["ca_cert", "ca_key"],
            "vault-pki": ["vault_pki_role"],
            "azure-keyvault": ["azure_vault_url", "azure_certificate_name"],
            "cert-manager": ["kubernetes_namespace", "cert_manager_issuer"],
        }
        for name in required[self.issuer]:
            if getattr(self, name) in (None, ""):
                raise ConfigError(name, f"required when issuer = {self.issuer!r}")
        installs = {"files": ["directory"], "kubernetes-secret": ["kubernetes_namespace",
                                                                  "kubernetes_secret"],
                    "azure-keyvault": ["azure_vault_url", "azure_certificate_name"]}
        for name in installs[self.install]:
            if getattr(self, name) in (None, ""):
                raise ConfigError(name, f"required when install = {self.install!r}")
        if self.trust_anchor is not None and not self.trust_anchor.is_file():
            raise ConfigError("trust_anchor", f"file not found: {self.trust_anchor}")
        if self.renew_before_hours is not None and not \
                0 < self.renew_before_hours < self.lifetime_hours:
            raise ConfigError("renew_before_hours", "must be between 0 and lifetime_hours")


@dataclass(frozen=True, kw_only=True)
class DevstackSettings:
    """The embedded local stack that ``worker.py --dev`` starts."""

    state_dir: Path = Path(".keyward")
    host: str = "127.0.0.1"
    temporal_port: int = field(default=7233, metadata=_check(_port))
    ui_port: int = field(default=8233, metadata=_check(_port))
    vault_port: int = field(default=8200, metadata=_check(_port))
    codec_server_port: int = field(default=8234, metadata=_check(_port))
    #: Transit keys created at start so the worker has something to encrypt with.
    transit_keys: tuple[str, ...] = ("default",)
    #: Run the worker through an mTLS gateway with a short-lived certificate from a local
    #: CA (renewed by a RenewCertificate schedule, reloaded without restart).
    mtls: bool = True
    gateway_port: int = field(default=7443, metadata=_check(_port))
    #: Lifetime of the worker's client certificate; renewed with a third of it left.
    client_certificate_minutes: float = field(default=10.0, metadata=_check(_positive))
    #: The gateway closes connections this old, as Temporal Cloud does every 5 minutes.
    gateway_max_connection_age_seconds: float = field(default=300.0,
                                                      metadata=_check(_positive))

    def __post_init__(self) -> None:
        # The stack serves a codec server without auth and a dev Vault whose root token
        # travels over plain http: neither may be reachable from another machine.
        if not is_loopback_host(self.host):
            raise ConfigError("devstack.host", f"must be a loopback address (127.0.0.1, "
                              f"localhost, ::1), not {self.host!r}: the local stack serves "
                              "an unauthenticated codec server and a dev Vault over http")


@dataclass(frozen=True, kw_only=True)
class MetricsSettings:
    """The worker's Prometheus endpoint (``/metrics``) and health check (``/health``)."""

    host: str = "127.0.0.1"
    #: 0 turns the endpoint off.
    port: int = field(default=0, metadata=_check(_port_or_zero))


@dataclass(frozen=True, kw_only=True)
class LoggingSettings:
    """``auto`` picks console output on a terminal and JSON lines otherwise."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


@dataclass(frozen=True, kw_only=True)
class Settings:
    temporal: TemporalSettings = field(default_factory=TemporalSettings)
    vault: VaultSettings = field(default_factory=VaultSettings)
    codec: CodecSettings = field(default_factory=CodecSettings)
    codec_server: CodecServerSettings = field(default_factory=CodecServerSettings)
    rotation: RotationSettings = field(default_factory=RotationSettings)
    #: Certificates by name (TOML tables [certificates.<name>]).
    certificates: dict[str, CertificateSettings] = field(default_factory=dict)
    devstack: DevstackSettings = field(default_factory=DevstackSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    #: Where the settings came from, for messages ("from /etc/keyward.toml").
    source: str = field(default="defaults", compare=False)


_SECTIONS: Final[dict[str, type[Any]]] = {
    "temporal": TemporalSettings,
    "vault": VaultSettings,
    "codec": CodecSettings,
    "codec_server": CodecServerSettings,
    "rotation": RotationSettings,
    "devstack": DevstackSettings,
    "metrics": MetricsSettings,
    "logging": LoggingSettings,
}

# Vault's own variables, honoured so an operator's usual shell setup just works.
_VAULT_ENV: Final = {
    "VAULT_ADDR": "address",
    "VAULT_TOKEN": "token",
    "VAULT_CACERT": "ca_cert",
    "VAULT_NAMESPACE": "namespace",
}

_TRUE: Final = {"1", "true", "yes", "on"}
_FALSE: Final = {"0", "false", "no", "off"}


def load_settings(
    path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Build settings from a TOML file and the environment (``os.environ`` by default).

    Raises :class:`ConfigError` naming the offending setting.
    """
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
    raw_certificates: dict[str, Any] = {}
    source = "defaults"
    config_path = path or _default_config_path(env)
    if config_path is not None:
        source = str(config_path)
        for section, values in _read_toml(config_path).items():
            if section == "certificates":
                raw_certificates.update(values)
            else:
                raw[section].update(values)

    for var, setting in _VAULT_ENV.items():
        if env.get(var):
            raw["vault"][setting] = env[var]
            source += f" + ${var}"
    for var, value in env.items():
        if not var.startswith(ENV_PREFIX) or "__" not in var:
            continue
        section, _, setting = var[len(ENV_PREFIX):].lower().partition("__")
        if section not in _SECTIONS:
            raise ConfigError(var, f"unknown section {section!r}; known: {', '.join(_SECTIONS)}")
        raw[section][setting] = value
        source += f" + ${var}"

    sections = {name: _build(cls, name, raw[name]) for name, cls in _SECTIONS.items()}
    certificates = {name: _build_table(CertificateSettings, f"certificates.{name}", table)
                    for name, table in raw_certificates.items()}
    return Settings(**sections, certificates=certificates, source=source)


def _build_table(cls: type[Any], name: str, table: Any) -> Any:
    """A nested table; ConfigErrors from the dataclass get the table's path prefixed."""
    if not isinstance(table, dict):
        raise ConfigError(name, "must be a table")
    try:
        return _build(cls, name, table)
    except ConfigError as exc:
        if exc.setting.startswith(f"{name}."):
            raise
        raise ConfigError(f"{name}.{exc.setting}", exc.problem) from None


def _default_config_path(env: Mapping[str, str]) -> Path | None:
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    candidate = Path(DEFAULT_CONFIG_FILE)
    return candidate if candidate.is_file() else None


def _read_toml(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError("config file", f"{path} does not exist") from None
    except OSError as exc:
        raise ConfigError("config file", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config file", f"{path} is not valid TOML: {exc}") from None
    result: dict[str, dict[str, Any]] = {}
    for section, values in document.items():
        if section not in _SECTIONS and section != "certificates":
            raise ConfigError(section, f"unknown section in {path}; known: {', '.join(_SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(section, f"must be a [{section}] table in {path}")
        result[section] = values
    return result


def _build(cls: type[Any], section: str, values: Mapping[str, Any]) -> Any:
    hints = get_type_hints(cls)
    missing = [f.name for f in dataclasses.fields(cls)
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
               and f.name not in values]
    if missing:
        raise ConfigError(f"{section}.{missing[0]}", "required")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{section}.{key}"
        if key not in fields:
            raise ConfigError(name, f"unknown setting; known in [{section}]: {', '.join(fields)}")
        converted = _convert(name, hints[key], value)
        check = fields[key].metadata.get("check")
        if check is not None and converted is not None and (problem := check(converted)):
            raise ConfigError(name, f"{problem} (got {_shown(name, value)})")
        kwargs[key] = converted
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:  # pragma: no cover - defensive; fields are typed
        raise ConfigError(section, str(exc)) from None


def _shown(name: str, value: Any) -> str:
    """The value as it may appear in an error message: never a secret's text."""
    secretish = any(word in name for word in ("token", "secret", "password", "key_material"))
    return "'**********'" if secretish else repr(value)


def _convert(name: str, hint: Any, value: Any) -> Any:
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if value is None or value == "":
            return None
        return _convert(name, options[0], value)
    if origin is Literal:
        allowed = get_args(hint)
        text = value.upper() if isinstance(value, str) and "LEVEL" in name.upper() else value
        if text not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise ConfigError(name, f"must be one of {choices} (got {_shown(name, value)})")
        return text
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(name, f"must be true or false (got {_shown(name, value)})")
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise ConfigError(name, f"must be a number (got {value!r})")
        try:
            return hint(value)
        except (TypeError, ValueError):
            raise ConfigError(name, f"must be a number (got {_shown(name, value)})") from None
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string (got {_shown(name, value)})")
        return value
    if hint is Secret:
        if not isinstance(value, str):
            raise ConfigError(name, "must be a string")
        return Secret(value)
    if hint is Path:
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a file path (got {_shown(name, value)})")
        return Path(value).expanduser()
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
            raise ConfigError(name, f"must be a list of strings (got {_shown(name, value)})")
        return tuple(i.strip() for i in items if i.strip())
    if origin is dict:
        value_type = get_args(hint)[1]
        return {key: _convert(f"{name}.{key}", value_type, item)
                for key, item in _convert_mapping(name, value).items()}
    raise ConfigError(name, f"unsupported setting type {hint!r}")  # pragma: no cover


def _convert_mapping(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, str):  # from the environment: "ns1=key1,ns2=key2"
        pairs: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            left, sep, right = item.partition("=")
            if not sep or not left.strip():
                raise ConfigError(name, f"must look like 'namespace=key,...' (got {item!r})")
            pairs[left.strip()] = right.strip()
        value = pairs
    if not isinstance(value, dict):
        raise ConfigError(name, f"must be a table of strings (got {value!r})")
    return dict(value)
