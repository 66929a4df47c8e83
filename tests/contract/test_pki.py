"""Contract: the PKI secrets engine (root CA, roles, issuing) through hvac."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.contract.conftest import VaultTarget
from tests.contract.support import DevVaultProcess

ROOT_CN = "keyward contract root"


@pytest.fixture(scope="module")
def pki_mount(vault_target: VaultTarget) -> Iterator[str]:
    """A PKI mount of the tests' own with an EC root CA, removed at the end."""
    client = hvac.Client(url=vault_target.url, token=vault_target.token, verify=vault_target.verify)
    path = f"kw-pki-{uuid.uuid4().hex[:8]}"
    client.sys.enable_secrets_engine("pki", path=path)
    try:
        client.secrets.pki.generate_root(
            "internal", ROOT_CN, extra_params={"ttl": "720h", "key_type": "ec"},
            mount_point=path,
        )
        yield path
    finally:
        client.sys.disable_secrets_engine(path)
        client.adapter.close()


@pytest.fixture
def role_name() -> str:
    """A role name no other test uses."""
    return f"role-{uuid.uuid4().hex[:10]}"


def make_role(client: hvac.Client, mount: str, name: str, **params: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "allowed_domains": "example.test",
        "allow_subdomains": True,
        "key_type": "ec",
        "key_bits": 256,
        **params,
    }
    client.secrets.pki.create_or_update_role(name, extra_params=settings, mount_point=mount)
    data: dict[str, Any] = client.secrets.pki.read_role(name, mount_point=mount)["data"]
    return data


def issue(client: hvac.Client, mount: str, role: str, common_name: str,
          **params: Any) -> dict[str, Any]:
    response = client.secrets.pki.generate_certificate(
        name=role, common_name=common_name, extra_params=dict(params), mount_point=mount
    )
    data: dict[str, Any] = response["data"]
    return data


def eku(certificate: x509.Certificate) -> set[x509.ObjectIdentifier]:
    try:
        return set(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return set()


def test_root_generation_answers_with_the_ca_certificate(
    vault_target: VaultTarget, root_client: hvac.Client
) -> None:
    """root/generate/internal returns a self-signed CA certificate, its serial, no key."""
    path = f"kw-pki-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("pki", path=path)
    try:
        data = root_client.secrets.pki.generate_root(
            "internal", "fresh root", extra_params={"ttl": "24h", "key_type": "ec"},
            mount_point=path,
        )["data"]
    finally:
        root_client.sys.disable_secrets_engine(path)

    certificate = x509.load_pem_x509_certificate(data["certificate"].encode())
    assert data["issuing_ca"] == data["certificate"]
    assert "private_key" not in data
    assert certificate.subject == certificate.issuer
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "fresh root"
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(certificate.public_key(), ec.EllipticCurvePublicKey)
    assert re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2})*", data["serial_number"])
    assert int(data["serial_number"].replace(":", ""), 16) == certificate.serial_number


def test_role_reads_back_with_its_settings(root_client: hvac.Client, pki_mount: str,
                                           role_name: str) -> None:
    """A written role reads back with the sent settings and Vault's defaults for the rest."""
    data = make_role(root_client, pki_mount, role_name, max_ttl="2h", client_flag=False)

    assert data["allowed_domains"] == ["example.test"]
    assert data["allow_subdomains"] is True
    assert data["allow_bare_domains"] is False
    assert data["key_type"] == "ec"
    assert data["key_bits"] == 256
    assert data["max_ttl"] == 7200
    assert data["server_flag"] is True
    assert data["client_flag"] is False
    assert data["allow_ip_sans"] is True


def test_reading_a_missing_role_is_404(root_client: hvac.Client, pki_mount: str,
                                       role_name: str) -> None:
    """Reading a role that does not exist is a 404 (hvac InvalidPath)."""
    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.pki.read_role(role_name, mount_point=pki_mount)


def test_issued_certificate_chains_to_the_root(root_client: hvac.Client, pki_mount: str,
                                               role_name: str) -> None:
    """issue/<role> returns a key and a leaf signed by the mount's root, with the SANs asked."""
    make_role(root_client, pki_mount, role_name)

    data = issue(root_client, pki_mount, role_name, "app.example.test",
                 alt_names="api.example.test", ip_sans="127.0.0.1", ttl="1h",
                 format="pem", private_key_format="pkcs8")

    leaf = x509.load_pem_x509_certificate(data["certificate"].encode())
    root = x509.load_pem_x509_certificate(data["issuing_ca"].encode())
    leaf.verify_directly_issued_by(root)
    ca_pem = root_client.secrets.pki.read_ca_certificate(mount_point=pki_mount)
    assert x509.load_pem_x509_certificate(ca_pem.encode()) == root
    assert x509.load_pem_x509_certificate(data["ca_chain"][0].encode()) == root
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"app.example.test", "api.example.test"}
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert data["private_key_type"] == "ec"
    assert data["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(data["private_key"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == leaf.public_key()
    lifetime = leaf.not_valid_after_utc - datetime.now(UTC)
    assert timedelta(minutes=58) < lifetime <= timedelta(hours=1)
    assert data["expiration"] == int(leaf.not_valid_after_utc.timestamp())


def test_default_private_key_format_is_the_keys_own(root_client: hvac.Client, pki_mount: str,
                                                    role_name: str) -> None:
    """Without private_key_format an EC key comes back as SEC 1 (``EC PRIVATE KEY``)."""
    make_role(root_client, pki_mount, role_name)

    data = issue(root_client, pki_mount, role_name, "app.example.test", ttl="10m")

    assert data["private_key"].startswith("-----BEGIN EC PRIVATE KEY-----")


def test_rsa_role_issues_rsa_keys(root_client: hvac.Client, pki_mount: str,
                                  role_name: str) -> None:
    """The role's key_type decides the key: an rsa/2048 role returns a 2048-bit RSA key."""
    make_role(root_client, pki_mount, role_name, key_type="rsa", key_bits=2048)

    data = issue(root_client, pki_mount, role_name, "app.example.test", ttl="10m",
                 private_key_format="pkcs8")

    key = serialization.load_pem_private_key(data["private_key"].encode(), None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert data["private_key_type"] == "rsa"


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"server_flag": True, "client_flag": False}, {ExtendedKeyUsageOID.SERVER_AUTH}),
        ({"server_flag": False, "client_flag": True}, {ExtendedKeyUsageOID.CLIENT_AUTH}),
        ({}, {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}),
    ],
)
def test_eku_follows_the_roles_flags(root_client: hvac.Client, pki_mount: str, role_name: str,
                                     flags: dict[str, bool],
                                     expected: set[x509.ObjectIdentifier]) -> None:
    """server_flag and client_flag decide serverAuth and clientAuth (both by default)."""
    make_role(root_client, pki_mount, role_name, **flags)

    data = issue(root_client, pki_mount, role_name, "app.example.test", ttl="10m")

    assert eku(x509.load_pem_x509_certificate(data["certificate"].encode())) == expected


@pytest.mark.parametrize(
    ("common_name", "params", "message"),
    [
        ("app.other.test", {}, "common name app.other.test not allowed by this role"),
        ("example.test", {}, "common name example.test not allowed by this role"),
        ("app.example.test", {"alt_names": "evil.other.test"},
         "subject alternate name evil.other.test not allowed by this role"),
    ],
)
def test_names_outside_the_role_are_refused(
    root_client: hvac.Client, pki_mount: str, role_name: str, common_name: str,
    params: dict[str, str], message: str,
) -> None:
    """Names the role does not allow (other domains, the bare domain) fail with a 400."""
    make_role(root_client, pki_mount, role_name)

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        issue(root_client, pki_mount, role_name, common_name, ttl="10m", **params)

    assert refused.value.errors == [message]


def test_bare_domain_is_allowed_when_the_role_says_so(
    root_client: hvac.Client, pki_mount: str, role_name: str
) -> None:
    """allow_bare_domains admits the listed domain itself as the common name."""
    make_role(root_client, pki_mount, role_name, allow_bare_domains=True)

    data = issue(root_client, pki_mount, role_name, "example.test", ttl="10m")

    assert data["certificate"].startswith("-----BEGIN CERTIFICATE-----")


def test_ip_sans_are_refused_when_the_role_forbids_them(
    root_client: hvac.Client, pki_mount: str, role_name: str
) -> None:
    """allow_ip_sans=false turns a request with ip_sans into a 400."""
    make_role(root_client, pki_mount, role_name, allow_ip_sans=False)

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        issue(root_client, pki_mount, role_name, "app.example.test", ip_sans="10.0.0.1")

    assert "IP Subject Alternative Names are not allowed in this role" in refused.value.errors[0]


def test_ttl_is_capped_at_the_roles_max_ttl(root_client: hvac.Client, pki_mount: str,
                                            role_name: str) -> None:
    """A TTL beyond the role's max_ttl is cut to max_ttl, with a warning, not refused."""
    make_role(root_client, pki_mount, role_name, max_ttl="30m")

    response = root_client.secrets.pki.generate_certificate(
        name=role_name, common_name="app.example.test", extra_params={"ttl": "5h"},
        mount_point=pki_mount,
    )

    leaf = x509.load_pem_x509_certificate(response["data"]["certificate"].encode())
    assert leaf.not_valid_after_utc - datetime.now(UTC) <= timedelta(minutes=30)
    assert response["warnings"]


def test_issuing_with_an_unknown_role_is_refused(root_client: hvac.Client, pki_mount: str,
                                                 role_name: str) -> None:
    """issue/<role> for a role that does not exist is a 400 naming the role."""
    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        issue(root_client, pki_mount, role_name, "app.example.test")

    assert refused.value.errors == [f"unknown role: {role_name}"]


def test_pki_state_survives_a_restart(dev_vault: DevVaultProcess, root_client: hvac.Client,
                                      pki_mount: str, role_name: str) -> None:
    """The root CA and roles are persisted: after a restart the same CA issues for the role."""
    make_role(root_client, pki_mount, role_name)
    before = root_client.secrets.pki.read_ca_certificate(mount_point=pki_mount)

    dev_vault.stop()
    dev_vault.start()

    assert root_client.secrets.pki.read_ca_certificate(mount_point=pki_mount) == before
    data = issue(root_client, pki_mount, role_name, "app.example.test", ttl="10m")
    assert data["issuing_ca"] == before


def test_disabling_a_pki_mount_deletes_its_ca_key(dev_vault: DevVaultProcess,
                                                  root_client: hvac.Client) -> None:
    """Disabling a PKI mount removes its state file, CA key included, from the data dir."""
    path = f"kw-pki-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("pki", path=path)
    root_client.secrets.pki.generate_root("internal", "short-lived root",
                                          extra_params={"key_type": "ec"}, mount_point=path)
    assert list(dev_vault.data_dir.glob("pki-*.json"))
    before = set(dev_vault.data_dir.glob("pki-*.json"))

    root_client.sys.disable_secrets_engine(path)

    assert len(set(dev_vault.data_dir.glob("pki-*.json"))) == len(before) - 1
