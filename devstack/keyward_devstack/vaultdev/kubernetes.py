"""The Kubernetes auth method, verifying service-account JWTs with configured keys.

Real Vault checks a login JWT in two steps: it verifies the signature and
claims locally (with ``pem_keys`` if configured), then asks the Kubernetes
TokenReview API whether the token is still valid. This server has no cluster
to ask, so it does the first step only and **requires** ``pem_keys``: without
them every login is refused. Both claim layouts are understood: the legacy
secret-based token (``kubernetes.io/serviceaccount/service-account.name`` and
``kubernetes.io/serviceaccount/namespace``) and the projected token
(``"kubernetes.io": {"namespace": ..., "serviceaccount": {"name": ...}}``).

Failures follow the plugin: a bad signature or unusable token is 403
``permission denied``; a service account or namespace not bound to the role
is 403 with the plugin's reason; an unknown role is 400.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.errors import (
    bad_request,
    coded,
    internal_error,
    not_found,
    permission_denied,
)
from keyward_devstack.vaultdev.leases import parse_token_settings, token_settings_view
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply
from keyward_devstack.vaultdev.routing import NAME, Route, dispatch
from keyward_devstack.vaultdev.state import (
    AuthMount,
    KubernetesConfig,
    KubernetesRole,
    Store,
    TokenSettings,
)
from keyward_devstack.vaultdev.tokens import TokenStore

#: The signing algorithms Kubernetes may use for service-account tokens.
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]
_LEGACY = "kubernetes.io/serviceaccount/"


@dataclass(frozen=True)
class ServiceAccount:
    """Who a verified JWT speaks for."""

    name: str
    namespace: str
    uid: str
    secret_name: str


def service_account(claims: Mapping[str, Any]) -> ServiceAccount:
    """Read the service account from either claim layout (projected wins)."""
    name = str(claims.get(f"{_LEGACY}service-account.name", ""))
    namespace = str(claims.get(f"{_LEGACY}namespace", ""))
    uid = str(claims.get(f"{_LEGACY}service-account.uid", ""))
    secret_name = str(claims.get(f"{_LEGACY}secret.name", ""))
    projected = claims.get("kubernetes.io")
    if isinstance(projected, dict):
        namespace = str(projected.get("namespace", ""))
        account = projected.get("serviceaccount")
        if isinstance(account, dict):
            name = str(account.get("name", ""))
            uid = str(account.get("uid", ""))
    return ServiceAccount(name=name, namespace=namespace, uid=uid, secret_name=secret_name)


VerificationKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


def public_key_from_pem(pem: str) -> VerificationKey | None:
    """The key in a ``pem_keys`` entry: a public key or a certificate, as Vault accepts."""
    data = pem.encode("utf-8")
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: object = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = load_pem_public_key(data)
    except (ValueError, TypeError):
        return None
    if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey):
        return key
    return None


def glob_match(patterns: list[str], value: str) -> bool:
    """Vault's ``StrListContainsGlob``: ``*`` allowed at either end of a pattern."""
    for pattern in patterns:
        if pattern == "*":
            return True
        prefix_glob, suffix_glob = pattern.startswith("*"), pattern.endswith("*")
        core = pattern.strip("*")
        if prefix_glob and suffix_glob and core in value:
            return True
        if prefix_glob and not suffix_glob and value.endswith(core):
            return True
        if suffix_glob and not prefix_glob and value.startswith(core):
            return True
        if pattern == value:
            return True
    return False


class KubernetesBackend:
    """The endpoints of one Kubernetes auth mount."""

    def __init__(self, store: Store, tokens: TokenStore, mount: AuthMount, path: str) -> None:
        self._store = store
        self._tokens = tokens
        self._mount = mount
        self._path = path

    def handle(self, call: Call) -> Reply | None:
        """Serve one request under this mount."""
        update = Operation.UPDATE
        routes = [
            Route(re.compile("login"), {update: self._login}),
            Route(re.compile("config"), {update: self._configure, Operation.READ: self._config}),
            Route(re.compile("role/?"), {Operation.LIST: self._list}),
            Route(
                re.compile(f"role/(?P<role>{NAME})"),
                {update: self._write, Operation.READ: self._read, Operation.DELETE: self._delete},
            ),
        ]
        return dispatch(routes, call)

    def _configure(self, call: Call, match: re.Match[str]) -> None:
        data = call.data
        current = self._mount.kubernetes_config
        host = fields.string(data, "kubernetes_host", current.kubernetes_host if current else "")
        if not host:
            raise bad_request("no host provided")
        pem_keys = fields.string_list(data, "pem_keys")
        keys = pem_keys if pem_keys is not None else (current.pem_keys if current else [])
        for pem in keys:
            if public_key_from_pem(pem) is None:
                raise bad_request(
                    "data does not contain any valid RSA, ECDSA, or ED25519 public keys"
                )
        self._mount.kubernetes_config = KubernetesConfig(
            kubernetes_host=host,
            kubernetes_ca_cert=fields.string(data, "kubernetes_ca_cert"),
            pem_keys=keys,
            issuer=fields.string(data, "issuer"),
            disable_iss_validation=fields.boolean(data, "disable_iss_validation", default=True),
            disable_local_ca_jwt=fields.boolean(data, "disable_local_ca_jwt"),
        )
        self._store.save()

    def _config(self, call: Call, match: re.Match[str]) -> Reply:
        config = self._mount.kubernetes_config
        if config is None:
            raise not_found()
        return Reply(
            data={
                "kubernetes_host": config.kubernetes_host,
                "kubernetes_ca_cert": config.kubernetes_ca_cert,
                "pem_keys": list(config.pem_keys),
                "issuer": config.issuer,
                "disable_iss_validation": config.disable_iss_validation,
                "disable_local_ca_jwt": config.disable_local_ca_jwt,
                "token_reviewer_jwt_set": False,
                "use_annotations_as_alias_metadata": False,
            }
        )

    def _list(self, call: Call, match: re.Match[str]) -> Reply:
        if not self._mount.kubernetes_roles:
            raise not_found()
        return Reply(data={"keys": sorted(self._mount.kubernetes_roles)})

    def _write(self, call: Call, match: re.Match[str]) -> None:
        name, data = match["role"], call.data
        current = self._mount.kubernetes_roles.get(name)
        names = fields.string_list(data, "bound_service_account_names")
        namespaces = fields.string_list(data, "bound_service_account_namespaces")
        role = KubernetesRole(
            bound_service_account_names=names
            if names is not None
            else (current.bound_service_account_names if current else []),
            bound_service_account_namespaces=namespaces
            if namespaces is not None
            else (current.bound_service_account_namespaces if current else []),
            audience=fields.string(data, "audience", current.audience if current else ""),
            alias_name_source=fields.string(
                data,
                "alias_name_source",
                current.alias_name_source if current else "serviceaccount_uid",
            ),
            token=parse_token_settings(data, current.token if current else TokenSettings()),
        )
        if not role.bound_service_account_names:
            raise bad_request('"bound_service_account_names" can not be empty')
        if not role.bound_service_account_namespaces:
            raise bad_request('"bound_service_account_namespaces" can not be empty')
        self._mount.kubernetes_roles[name] = role
        self._store.save()

    def _read(self, call: Call, match: re.Match[str]) -> Reply:
        role = self._mount.kubernetes_roles.get(match["role"])
        if role is None:
            raise not_found()
        return Reply(
            data={
                "bound_service_account_names": list(role.bound_service_account_names),
                "bound_service_account_namespaces": list(role.bound_service_account_namespaces),
                "audience": role.audience,
                "alias_name_source": role.alias_name_source,
                **token_settings_view(role.token),
            }
        )

    def _delete(self, call: Call, match: re.Match[str]) -> None:
        if self._mount.kubernetes_roles.pop(match["role"], None) is not None:
            self._store.save()

    def _login(self, call: Call, match: re.Match[str]) -> Reply:
        role_name = fields.string(call.data, "role")
        if not role_name:
            raise bad_request("missing role")
        token = fields.string(call.data, "jwt")
        if not token:
            raise bad_request("missing jwt")
        role = self._mount.kubernetes_roles.get(role_name)
        if role is None:
            raise bad_request(f'invalid role name "{role_name}"')
        config = self._mount.kubernetes_config
        if config is None:
            raise internal_error("could not load backend configuration")
        account = self._verify(token, role, config)
        if not account.uid:
            raise internal_error("could not parse UID from claims")
        alias = account.uid
        if role.alias_name_source == "serviceaccount_name":
            alias = f"{account.namespace}/{account.name}"
        return self._tokens.login(
            settings=role.token,
            path=f"auth/{self._path}login",
            display_name=f"kubernetes-{account.namespace}-{account.name}",
            meta={
                "role": role_name,
                "service_account_name": account.name,
                "service_account_namespace": account.namespace,
                "service_account_secret_name": account.secret_name,
                "service_account_uid": account.uid,
            },
            entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubernetes/{self._path}{alias}")),
            now=call.now,
        )

    @staticmethod
    def _verify(token: str, role: KubernetesRole, config: KubernetesConfig) -> ServiceAccount:
        claims = _verified_claims(token, role, config)
        account = service_account(claims)
        names = role.bound_service_account_names
        if (len(names) > 1 or names[0] != "*") and not glob_match(names, account.name):
            raise coded(403, "service account name not authorized")
        namespaces = role.bound_service_account_namespaces
        if not (namespaces[0] == "*" or glob_match(namespaces, account.namespace)):
            raise coded(403, "namespace not authorized")
        return account


def _verified_claims(token: str, role: KubernetesRole, config: KubernetesConfig) -> dict[str, Any]:
    """The claims of ``token`` if one of the configured keys signed it."""
    options: jwt.types.Options = {"verify_aud": bool(role.audience)}
    issuer = None if config.disable_iss_validation else (config.issuer or None)
    for pem in config.pem_keys:
        key = public_key_from_pem(pem)
        if key is None:
            continue
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=ALGORITHMS,
                audience=role.audience or None,
                issuer=issuer,
                options=options,
            )
        except jwt.InvalidSignatureError:
            continue
        except (jwt.InvalidAlgorithmError, jwt.InvalidKeyError):
            # The token's algorithm does not fit this key type; try the next key.
            continue
        except jwt.PyJWTError:
            raise permission_denied() from None
        return claims
    raise permission_denied()
