"""The ``[codec]`` and ``[codec_server]`` sections: payload encryption and its HTTP endpoint.

``CodecSettings`` says how payloads are encrypted and which Transit key a namespace's
payloads use: :meth:`CodecSettings.key_for` to encode, :meth:`CodecSettings.keys_allowed`
for the keys a payload may name when it is decoded (the settings half of the allowed-key
rule; the check itself is in ``keyward.codec.transit_codec``). ``CodecServerSettings``
is the remote codec endpoint the Web UI and the ``temporal`` CLI call: listening address,
TLS, and who may decrypt (JWT).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, Final, Literal, Self
from urllib.parse import urlparse

from pydantic import AfterValidator, BeforeValidator, model_validator

from keyward.config.network import insecure_http, is_loopback_host
from keyward.config.section import settings_class
from keyward.config.values import (
    Flag,
    MaybePath,
    MaybeText,
    NonEmpty,
    Number,
    Port,
    Positive,
    PositiveInt,
    Strings,
    checked_by,
    files_exist,
    http_url,
    key_name,
    table,
)
from keyward.config_errors import problem
from keyward.errors import ConfigError


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


#: Where the codec server learns a caller's roles (``codec_server.role_sources``).
ROLE_SOURCES: Final = ("claim", "temporal-cloud")
#: Temporal Cloud's Web UI tokens: signed by its identity provider (Auth0 under
#: login.tmprl.cloud, whose issuer is the domain with a trailing slash), for the Cloud API's
#: audience, naming the user by email in a namespaced claim.
CLOUD_JWKS_URL: Final = "https://login.tmprl.cloud/.well-known/jwks.json"
CLOUD_ISSUER: Final = "https://login.tmprl.cloud/"
CLOUD_AUDIENCE: Final = "https://saas-api.tmprl.cloud"
CLOUD_EMAIL_CLAIM: Final = "https://saas-api.tmprl.cloud/user/email"


def _role_sources(value: Any) -> str | None:
    bad = [source for source in value if source not in ROLE_SOURCES]
    if bad or not value:
        return (f"each role source must be one of {', '.join(ROLE_SOURCES)}; got "
                f"{', '.join(map(repr, bad)) or 'none'}")
    return None


def _transit_key(value: str) -> str:
    if not value:
        raise problem("must name a Transit key")
    return key_name(value)


@settings_class("codec")
class CodecSettings:
    """Payload encryption: mode, compression, data-key bounds, namespace → key map."""

    mode: Literal["envelope", "direct"] = "envelope"
    #: Off by default: compressing before encrypting lets ciphertext length reveal how
    #: attacker-supplied input compresses against secrets in the same payload (CRIME).
    compression: Flag = False
    #: namespace → Transit key name; a namespace not listed uses its own name as key.
    keys: Annotated[dict[str, Annotated[str, AfterValidator(_transit_key)]],
                    BeforeValidator(table)] = dataclasses.field(default_factory=dict)
    #: namespace → keys it used before a change of ``keys``: still accepted when decoding
    #: (old histories), never used to encode. Decoding refuses every other key a payload
    #: names, before asking Vault: the name in a payload's metadata is the sender's choice.
    previous_keys: Annotated[
        dict[str, Annotated[Strings, AfterValidator(lambda keys: tuple(map(key_name, keys)))]],
        BeforeValidator(table)] = dataclasses.field(default_factory=dict)
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
    allowed_origins: Annotated[Strings, checked_by(_origin)] = ()
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
    jwt_algorithms: Annotated[Strings, checked_by(_algorithms)] = ("RS256", "ES256")
    jwt_leeway_seconds: Number = 30.0
    permissions_claim: NonEmpty = "permissions"
    #: Where a caller's roles come from: "claim" (``permissions_claim``, as Temporal's own
    #: server reads it) and/or "temporal-cloud" (the account's users, by the token's email,
    #: through the Cloud Ops API of the ``[cloud]`` section). With both, either may grant.
    #: With "temporal-cloud", ``jwks_url``, ``jwt_issuer`` and ``jwt_audience`` default to
    #: Temporal Cloud's own.
    role_sources: Annotated[Strings, checked_by(_role_sources)] = ("claim",)
    cloud_email_claim: NonEmpty = CLOUD_EMAIL_CLAIM
    #: How long a user's Cloud role is reused before it is looked up again.
    cloud_role_cache_seconds: Positive = 60.0
    #: The same for "no such user in the account" (shorter: a new user is not locked out
    #: for long, and a flood of unknown users still costs one lookup each per period).
    cloud_unknown_user_cache_seconds: Positive = 10.0
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
        if self.jwks_url and http_url(self.jwks_url):
            raise problem("must be an http(s) URL", at="jwks_url")
        insecure_http("jwks_url", self.jwks_url, self.allow_insecure_http,
                      "codec_server.allow_insecure_http")
        if self.auth == "none" and not is_loopback_host(self.host) \
                and not self.allow_no_auth_off_loopback:
            raise problem(f"auth = \"none\" serves decrypted payloads to anyone; it may "
                          f"only listen on a loopback address, not {self.host!r} (set "
                          "codec_server.allow_no_auth_off_loopback = true only for a "
                          "container port published on the host's loopback)", at="host")
        return self

    def check_files(self) -> None:
        files_exist("codec_server", self, "tls_cert", "tls_key", "tls_client_ca",
                    "jwt_public_key")

    def require_serving_config(self) -> None:
        """Checks that matter only to a process that serves codec requests.

        Not in the constructor: the worker loads the same settings and must not
        need a JWKS URL it never uses.
        """
        if self.auth == "jwt":
            if not self.token_jwks_url and not self.jwt_public_key:
                raise ConfigError("codec_server.jwks_url",
                                  "set jwks_url or jwt_public_key (or auth = \"none\" for "
                                  "local development only)")
            if not self.token_issuer:
                raise ConfigError("codec_server.jwt_issuer", "required when auth = \"jwt\"")
            if not self.token_audience:
                raise ConfigError("codec_server.jwt_audience", "required when auth = \"jwt\"")

    @property
    def cloud_roles(self) -> bool:
        """Roles are looked up in Temporal Cloud (``"temporal-cloud"`` in ``role_sources``)."""
        return "temporal-cloud" in self.role_sources

    @property
    def claim_roles(self) -> bool:
        return "claim" in self.role_sources

    @property
    def token_jwks_url(self) -> str | None:
        """``jwks_url``, else Temporal Cloud's with Cloud roles and no static key."""
        if self.jwks_url or not self.cloud_roles or self.jwt_public_key is not None:
            return self.jwks_url
        return CLOUD_JWKS_URL

    @property
    def token_issuer(self) -> str | None:
        return self.jwt_issuer or (CLOUD_ISSUER if self.cloud_roles else None)

    @property
    def token_audience(self) -> tuple[str, ...]:
        return self.jwt_audience or ((CLOUD_AUDIENCE,) if self.cloud_roles else ())

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"
