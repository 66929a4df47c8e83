"""The Vault client factory against a real HTTP Vault: auth methods, renewal, TLS, errors."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import hvac
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from keyward.errors import StartupError
from keyward.secrets import Secret
from keyward.vault.auth import AppRoleAuth, KubernetesAuth, TokenAuth
from keyward.vault.client import VaultSession, connect_vault
from keyward.vault.errors import VaultForbidden
from keyward_devstack.processes import ManagedProcess, free_port
from keyward_devstack.vault_dev import vault_health
from tests.conftest import VaultEndpoint
from tests.support import wait_until
from tests.tls_material import make_server_tls

pytestmark = pytest.mark.usefixtures("vault")


def child_token(client: hvac.Client, ttl: str, **kwargs: object) -> str:
    token: str = client.auth.token.create(ttl=ttl, **kwargs)["auth"]["client_token"]
    return token


def test_token_auth_connects_and_reports_ttl(vault: VaultEndpoint,
                                             vault_client: hvac.Client) -> None:
    """A static token logs in; the session learns its TTL and renewability."""
    token = child_token(vault_client, "1h", renewable=True)
    with VaultSession(vault.settings(token=Secret(token))) as session:
        lease = session.connect(renew=False)
    assert 3500 <= lease.ttl_seconds <= 3600
    assert lease.renewable


def test_wrong_token_is_a_startup_error(vault: VaultEndpoint) -> None:
    """A token Vault does not know fails start-up with a message that hides the token."""
    bad = "hvs.nottherighttoken00000000000"
    with pytest.raises(StartupError) as caught:
        connect_vault(vault.settings(token=Secret(bad)))
    assert "permission denied" in str(caught.value)
    assert bad not in str(caught.value)


def test_short_lived_token_is_renewed_before_expiry(vault: VaultEndpoint,
                                                    vault_client: hvac.Client) -> None:
    """With a 3 s renewable token, the renewer keeps it valid well past 3 s."""
    token = child_token(vault_client, "3s", renewable=True, explicit_max_ttl="1h")
    session = connect_vault(vault.settings(token=Secret(token)))
    try:
        renewer = session.renewer
        assert renewer is not None
        wait_until(lambda: renewer.refreshes >= 3, within=15, what="three renewals")
        # Still valid after several original TTLs:
        assert session.client.auth.token.lookup_self()["data"]["ttl"] > 0
    finally:
        session.close()


def test_unrenewed_token_expires(vault: VaultEndpoint, vault_client: hvac.Client) -> None:
    """Control for the renewal test: the same token without a renewer stops working."""
    token = child_token(vault_client, "2s", renewable=True)
    client = hvac.Client(url=vault.address, token=token)
    assert client.auth.token.lookup_self()["data"]["ttl"] <= 2

    def refused() -> bool:
        try:
            client.auth.token.lookup_self()
        except hvac.exceptions.Forbidden:
            return True
        return False

    wait_until(refused, within=10, what="token expiry")


@pytest.fixture
def approle(vault: VaultEndpoint, vault_client: hvac.Client) -> Iterator[AppRoleAuth]:
    mount = f"approle-{uuid.uuid4().hex[:8]}"
    vault_client.sys.enable_auth_method("approle", path=mount)
    role = "keyward"
    vault_client.auth.approle.create_or_update_approle(
        role, token_ttl="4s", token_max_ttl="6s", token_policies=["default"], mount_point=mount)
    role_id = vault_client.auth.approle.read_role_id(role, mount_point=mount)["data"]["role_id"]
    secret_id = vault_client.auth.approle.generate_secret_id(role, mount_point=mount)
    yield AppRoleAuth(role_id, Secret(secret_id["data"]["secret_id"]), mount=mount)
    vault_client.sys.disable_auth_method(path=mount)


def test_approle_login_and_relogin_past_max_ttl(vault: VaultEndpoint,
                                                approle: AppRoleAuth) -> None:
    """AppRole logs in, and when renewal hits token_max_ttl the renewer logs in again."""
    session = VaultSession(vault.settings(auth_method="approle",
                                          approle_role_id=approle.role_id,
                                          approle_secret_id=approle.secret_id,
                                          approle_mount=approle.mount))
    try:
        lease = session.connect()
        assert 0 < lease.ttl_seconds <= 4
        first_token = session.client.token
        # Max TTL is 6 s: after ~10 s only a fresh login can have kept us authenticated.
        wait_until(lambda: session.client.token != first_token, within=15, what="re-login")
        assert session.client.auth.token.lookup_self()["data"]["ttl"] > 0
    finally:
        session.close()


def test_approle_wrong_secret_is_refused(vault: VaultEndpoint, approle: AppRoleAuth) -> None:
    """A wrong secret_id fails start-up clearly and never echoes the secret."""
    wrong = "00000000-0000-0000-0000-000000000000"
    session = VaultSession(vault.settings(), auth=AppRoleAuth(approle.role_id, Secret(wrong),
                                                              mount=approle.mount))
    with pytest.raises(Exception, match="invalid role or secret ID") as caught:
        session.connect(renew=False)
    assert wrong not in str(caught.value)
    session.close()


@pytest.fixture
def kubernetes_auth(vault: VaultEndpoint, vault_client: hvac.Client,
                    tmp_path: Path) -> Iterator[tuple[KubernetesAuth, rsa.RSAPrivateKey]]:
    if not vault.is_dev_server:
        pytest.skip("needs a Kubernetes API server to review tokens against real Vault")
    mount = f"k8s-{uuid.uuid4().hex[:8]}"
    vault_client.sys.enable_auth_method("kubernetes", path=mount)
    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # hvac accepts only certificates in pem_keys; Vault uses the certificate's public key.
    vault_client.auth.kubernetes.configure("https://kubernetes.default.svc",
                                           pem_keys=[self_signed_pem(signer)], mount_point=mount)
    vault_client.auth.kubernetes.create_role(
        "keyward", bound_service_account_names=["keyward"],
        bound_service_account_namespaces=["temporal"], ttl="1h", mount_point=mount)
    yield KubernetesAuth("keyward", tmp_path / "token", mount=mount), signer
    vault_client.sys.disable_auth_method(path=mount)


def self_signed_pem(key: rsa.RSAPrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "service-account-signer")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(hours=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def service_account_jwt(signer: rsa.RSAPrivateKey, name: str, namespace: str) -> str:
    return jwt.encode({"iss": "kubernetes/serviceaccount",
                       "kubernetes.io/serviceaccount/namespace": namespace,
                       "kubernetes.io/serviceaccount/service-account.name": name,
                       "kubernetes.io/serviceaccount/service-account.uid": str(uuid.uuid4()),
                       "sub": f"system:serviceaccount:{namespace}:{name}"},
                      signer, algorithm="RS256")


def test_kubernetes_login_with_service_account_token(
        vault: VaultEndpoint, kubernetes_auth: tuple[KubernetesAuth, rsa.RSAPrivateKey]) -> None:
    """The pod's service-account JWT, read from its file, logs in to the bound role."""
    auth, signer = kubernetes_auth
    auth.jwt_path.write_text(service_account_jwt(signer, "keyward", "temporal"))
    with VaultSession(vault.settings(), auth=auth) as session:
        lease = session.connect(renew=False)
    assert lease.ttl_seconds > 0


@pytest.mark.parametrize(("name", "namespace", "forged"),
                         [("other", "temporal", False), ("keyward", "default", False),
                          ("keyward", "temporal", True)])
def test_kubernetes_login_refuses_wrong_account_or_signature(
        vault: VaultEndpoint, kubernetes_auth: tuple[KubernetesAuth, rsa.RSAPrivateKey],
        name: str, namespace: str, forged: bool) -> None:
    """Another service account, another namespace or a forged signature gets 403."""
    auth, signer = kubernetes_auth
    if forged:
        signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    auth.jwt_path.write_text(service_account_jwt(signer, name, namespace))
    with VaultSession(vault.settings(), auth=auth) as session, pytest.raises(VaultForbidden):
        session.connect(renew=False)


def test_tls_vault_with_ca_cert(tmp_path: Path, vault: VaultEndpoint) -> None:
    """An https Vault is trusted through vault.ca_cert (VAULT_CACERT) and refused without it."""
    if not vault.is_dev_server:
        pytest.skip("starts its own TLS dev server")
    tls = make_server_tls(tmp_path / "tls")
    port = free_port()
    token = "hvs.tlstesttoken" + uuid.uuid4().hex
    process = ManagedProcess("tls vault", [
        sys.executable, "-m", "keyward_devstack.transit_server", "--port", str(port),
        "--data-dir", str(tmp_path / "data"), "--root-token", token,
        "--tls-cert", str(tls.cert), "--tls-key", str(tls.key)], tmp_path / "vault.log")
    process.start()
    try:
        address = f"https://127.0.0.1:{port}"
        wait_until(lambda: port_answers(address, tls.ca_cert), within=20, what="TLS vault")
        trusted = vault.settings(address=address, token=Secret(token), ca_cert=tls.ca_cert)
        with connect_vault(trusted, renew=False) as session:
            assert session.client.sys.read_health_status(method="GET")["initialized"]
        untrusted = vault.settings(address=address, token=Secret(token))
        with pytest.raises(StartupError, match="TLS error"):
            connect_vault(untrusted, renew=False)
    finally:
        process.stop()


def port_answers(address: str, ca: Path) -> bool:
    import requests  # noqa: PLC0415

    try:
        requests.get(f"{address}/v1/sys/health", verify=str(ca), timeout=1)
    except requests.RequestException:
        return False
    return True


def test_health_probe_tells_vault_from_other_servers() -> None:
    """vault_health() is None for something that is not Vault (used for port-conflict errors)."""
    assert vault_health(f"http://127.0.0.1:{free_port()}") is None


def test_token_auth_reads_token_from_settings() -> None:
    """TokenAuth never relogs in: a static token cannot be re-obtained."""
    assert not TokenAuth(Secret("hvs.xxxxxxxxxxxxxxxxxxxxxxxx")).can_relogin
