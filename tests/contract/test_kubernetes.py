"""Contract: Kubernetes auth with service-account JWTs checked against ``pem_keys``.

Each test enables the Kubernetes auth method at its own random path. Real
Vault also asks the cluster's TokenReview API about every token, which no
test here can provide, so successful logins are only checked against the dev
server; refusals (bad signature, wrong service account or namespace) happen
before that call and run against real Vault too.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import hvac
import hvac.exceptions
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.contract.support import DevVaultProcess

NAMESPACE = "payments"
ACCOUNT = "keyward-worker"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    """The key standing in for the cluster's service-account signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    """A key the Vault configuration does not trust."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate_pem(key: rsa.RSAPrivateKey) -> str:
    # hvac only accepts certificates for pem_keys, which Vault also allows.
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "service-accounts")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _legacy_jwt(key: rsa.RSAPrivateKey, *, name: str = ACCOUNT, namespace: str = NAMESPACE) -> str:
    claims = {
        "iss": "kubernetes/serviceaccount",
        "sub": f"system:serviceaccount:{namespace}:{name}",
        "kubernetes.io/serviceaccount/namespace": namespace,
        "kubernetes.io/serviceaccount/secret.name": f"{name}-token-x7k2p",
        "kubernetes.io/serviceaccount/service-account.name": name,
        "kubernetes.io/serviceaccount/service-account.uid": str(uuid.uuid4()),
    }
    return jwt.encode(claims, key, algorithm="RS256")


def _projected_jwt(key: rsa.RSAPrivateKey) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": now + 600,
        "iat": now,
        "nbf": now,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "sub": f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}",
        "kubernetes.io": {
            "namespace": NAMESPACE,
            "pod": {"name": "worker-0", "uid": str(uuid.uuid4())},
            "serviceaccount": {"name": ACCOUNT, "uid": str(uuid.uuid4())},
        },
    }
    return jwt.encode(claims, key, algorithm="RS256")


@pytest.fixture
def kubernetes_mount(
    root_client: hvac.Client, auth_mount: Callable[[str], str], signing_key: rsa.RSAPrivateKey
) -> str:
    """A Kubernetes auth mount trusting ``signing_key``, with role "worker"."""
    mount = auth_mount("kubernetes")
    root_client.auth.kubernetes.configure(
        kubernetes_host="https://127.0.0.1:6443",
        pem_keys=[_certificate_pem(signing_key)],
        mount_point=mount,
    )
    root_client.auth.kubernetes.create_role(
        "worker",
        bound_service_account_names=[ACCOUNT],
        bound_service_account_namespaces=[NAMESPACE],
        policies=["kw-worker"],
        ttl="15m",
        mount_point=mount,
    )
    return mount


def test_kubernetes_login_with_a_signed_service_account_jwt(
    dev_vault: DevVaultProcess,
    kubernetes_mount: str,
    signing_key: rsa.RSAPrivateKey,
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A JWT signed by a configured key, for a bound service account, logs in."""
    login = client_for(None).auth.kubernetes.login(
        "worker", _legacy_jwt(signing_key), use_token=False, mount_point=kubernetes_mount
    )["auth"]

    assert login["policies"] == ["default", "kw-worker"]
    assert login["lease_duration"] == 900
    assert login["metadata"]["service_account_name"] == ACCOUNT
    assert login["metadata"]["service_account_namespace"] == NAMESPACE
    assert client_for(login["client_token"]).auth.token.lookup_self()["data"]["ttl"] > 0


def test_kubernetes_login_accepts_projected_tokens(
    dev_vault: DevVaultProcess,
    kubernetes_mount: str,
    signing_key: rsa.RSAPrivateKey,
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A projected service-account token (nested ``kubernetes.io`` claims) logs in."""
    login = client_for(None).auth.kubernetes.login(
        "worker", _projected_jwt(signing_key), use_token=False, mount_point=kubernetes_mount
    )["auth"]

    assert login["metadata"]["service_account_name"] == ACCOUNT


def test_jwt_signed_by_another_key_is_refused(
    kubernetes_mount: str,
    other_key: rsa.RSAPrivateKey,
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A JWT the configured keys did not sign is refused with 403."""
    with pytest.raises(hvac.exceptions.Forbidden):
        client_for(None).auth.kubernetes.login(
            "worker", _legacy_jwt(other_key), use_token=False, mount_point=kubernetes_mount
        )


def test_unbound_service_account_is_refused(
    kubernetes_mount: str,
    signing_key: rsa.RSAPrivateKey,
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A validly signed JWT for a service account the role does not bind is refused."""
    token = _legacy_jwt(signing_key, name="someone-else")

    with pytest.raises(hvac.exceptions.Forbidden, match="service account name not authorized"):
        client_for(None).auth.kubernetes.login(
            "worker", token, use_token=False, mount_point=kubernetes_mount
        )


def test_unbound_namespace_is_refused(
    kubernetes_mount: str,
    signing_key: rsa.RSAPrivateKey,
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """A validly signed JWT from a namespace the role does not bind is refused."""
    token = _legacy_jwt(signing_key, namespace="elsewhere")

    with pytest.raises(hvac.exceptions.Forbidden, match="namespace not authorized"):
        client_for(None).auth.kubernetes.login(
            "worker", token, use_token=False, mount_point=kubernetes_mount
        )


def test_unknown_role_is_400(
    kubernetes_mount: str,
    signing_key: rsa.RSAPrivateKey,
    client_for: Callable[[str | None], hvac.Client],
) -> None:
    """Logging in to a role that does not exist is refused with 400."""
    with pytest.raises(hvac.exceptions.InvalidRequest, match="invalid role name"):
        client_for(None).auth.kubernetes.login(
            "nobody", _legacy_jwt(signing_key), use_token=False, mount_point=kubernetes_mount
        )
