"""Contract: the rest of the PKI paths a CA lifecycle touches, through hvac over HTTP.

Imports (``config/ca``, ``issuers/import/bundle``), the rotation aliases
(``root/rotate``, ``root/replace``, ``default_follows_latest_issuer``),
``sign-self-issued``, ``sign-verbatim``, the bare and JSON forms of CA and CRL
reads, roles listing and deletion, keys, ``crl/rotate``, ``tidy`` and
``DELETE root``. Each test makes its own mount and removes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.contract.conftest import VaultTarget


@pytest.fixture
def mount(root_client: hvac.Client) -> Iterator[str]:
    """An empty PKI mount of the test's own."""
    path = f"kw-pkipath-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("pki", path=path)
    yield path
    root_client.sys.disable_secrets_engine(path)


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def root(client: hvac.Client, mount: str, name: str, **params: Any) -> dict[str, Any]:
    settings = {"key_type": "ec", "ttl": "720h", "issuer_name": name, **params}
    data: dict[str, Any] = client.secrets.pki.generate_root(
        "internal", f"{name} root", extra_params=settings, mount_point=mount)["data"]
    return data


def ca_pair(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed CA made here, as an operator would bring one."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=10))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=True,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def pem_of(key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> str:
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    return key_pem + certificate.public_bytes(serialization.Encoding.PEM).decode()


def raw_get(vault_target: VaultTarget, path: str) -> tuple[int, str, bytes]:
    """A GET whose answer is a bare body: status, Content-Type and bytes."""
    client = hvac.Client(url=vault_target.url, token=vault_target.token,
                         verify=vault_target.verify)
    try:
        response = client.adapter.get(f"/v1/{path}", raise_exception=False)
        return (response.status_code, response.headers.get("Content-Type", ""),
                response.content)
    finally:
        client.adapter.close()


# imports ------------------------------------------------------------------------------


def test_config_ca_imports_a_key_and_its_certificate(root_client: hvac.Client,
                                                     mount: str) -> None:
    """config/ca takes a PEM key + certificate; the issuer gets the key and becomes default."""
    key, certificate = ca_pair("brought root")

    answer = root_client.secrets.pki.submit_ca_information(pem_of(key, certificate),
                                                           mount_point=mount)["data"]

    assert len(answer["imported_keys"]) == 1
    (issuer_id,) = answer["imported_issuers"]
    assert answer["mapping"] == {issuer_id: answer["imported_keys"][0]}
    assert cert(root_client.secrets.pki.read_ca_certificate(mount_point=mount)) == certificate
    root_client.secrets.pki.create_or_update_role(
        "web", extra_params={"allow_any_name": True, "key_type": "ec"}, mount_point=mount)
    leaf = root_client.secrets.pki.generate_certificate(
        "web", "app.example.test", extra_params={"ttl": "1h"}, mount_point=mount)["data"]
    cert(leaf["certificate"]).verify_directly_issued_by(certificate)


def test_importing_the_same_bundle_twice_changes_nothing(root_client: hvac.Client,
                                                         mount: str) -> None:
    """issuers/import/bundle dedupes: a second import reports existing key and issuer."""
    key, certificate = ca_pair("twice")
    bundle = pem_of(key, certificate)
    first = root_client.write_data(f"{mount}/issuers/import/bundle",
                                   data={"pem_bundle": bundle})["data"]

    second = root_client.write_data(f"{mount}/issuers/import/bundle",
                                    data={"pem_bundle": bundle})["data"]

    assert second["imported_issuers"] is None
    assert second["existing_issuers"] == first["imported_issuers"]
    assert second["existing_keys"] == first["imported_keys"]


def test_import_cert_refuses_private_keys(root_client: hvac.Client, mount: str) -> None:
    """issuers/import/cert takes certificates only; a key in the bundle is refused."""
    key, certificate = ca_pair("no keys here")

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.write_data(f"{mount}/issuers/import/cert",
                               data={"pem_bundle": pem_of(key, certificate)})

    assert "private keys found in the PEM bundle but not allowed by the path" in \
        refused.value.errors[0]


def test_a_non_ca_certificate_is_not_imported(root_client: hvac.Client, mount: str) -> None:
    """Importing a leaf (no CA basic constraint) is refused."""
    root(root_client, mount, "top")
    root_client.secrets.pki.create_or_update_role(
        "web", extra_params={"allow_any_name": True, "key_type": "ec"}, mount_point=mount)
    leaf = root_client.secrets.pki.generate_certificate(
        "web", "app.example.test", extra_params={"ttl": "1h"}, mount_point=mount)["data"]

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.write_data(f"{mount}/issuers/import/cert",
                               data={"pem_bundle": leaf["certificate"]})

    assert "Refusing to import non-CA certificate" in refused.value.errors[0]


# rotation aliases -----------------------------------------------------------------------


def test_root_rotate_names_the_new_root_next_and_root_replace_switches(
    root_client: hvac.Client, mount: str,
) -> None:
    """root/rotate adds a root called "next"; root/replace makes "next" the default."""
    root(root_client, mount, "current")
    rotated = root_client.write_data(f"{mount}/root/rotate/internal",
                                     data={"common_name": "next root", "key_type": "ec"})["data"]

    replaced = root_client.write_data(f"{mount}/root/replace", data={})["data"]

    assert rotated["issuer_name"] == "next"
    assert replaced["default"] == rotated["issuer_id"]
    assert cert(root_client.secrets.pki.read_ca_certificate(mount_point=mount)) == \
        cert(rotated["certificate"])


def test_default_can_follow_the_latest_issuer(root_client: hvac.Client, mount: str) -> None:
    """With default_follows_latest_issuer, each new root becomes the default."""
    first = root(root_client, mount, "first")
    root_client.write_data(f"{mount}/config/issuers",
                           data={"default": first["issuer_id"],
                                 "default_follows_latest_issuer": True})

    second = root(root_client, mount, "second")

    read = root_client.read(f"{mount}/config/issuers")["data"]
    assert read == {"default": second["issuer_id"], "default_follows_latest_issuer": True}


def test_issuers_generate_root_is_root_generate(root_client: hvac.Client, mount: str) -> None:
    """issuers/generate/root/internal adds a root issuer like root/generate/internal."""
    data = root_client.write_data(f"{mount}/issuers/generate/root/internal",
                                  data={"common_name": "alias root", "key_type": "ec",
                                        "issuer_name": "alias"})["data"]

    assert root_client.secrets.pki.read_issuer("alias", mount_point=mount)["data"][
        "issuer_id"] == data["issuer_id"]


def test_existing_key_signs_a_new_root(root_client: hvac.Client, mount: str) -> None:
    """root/generate/existing re-uses a key of the mount (same key, a second issuer)."""
    first = root(root_client, mount, "first")

    again = root_client.write_data(f"{mount}/root/generate/existing",
                                   data={"common_name": "same key", "key_ref": first["key_id"],
                                         "issuer_name": "again"})["data"]

    assert again["key_id"] == first["key_id"]
    assert cert(again["certificate"]).public_key() == cert(first["certificate"]).public_key()
    keys = root_client.list(f"{mount}/keys")["data"]["keys"]
    assert keys == [first["key_id"]]
    assert root_client.read(f"{mount}/key/{first['key_id']}")["data"]["key_type"] == "ec"
    assert root_client.read(f"{mount}/config/keys")["data"]["default"] == first["key_id"]


# signing --------------------------------------------------------------------------------


def test_sign_self_issued_resigns_an_external_root(root_client: hvac.Client,
                                                   mount: str) -> None:
    """root/sign-self-issued keeps the subject and key, and makes our root the issuer."""
    top = root(root_client, mount, "top")
    _, external = ca_pair("external root")

    data = root_client.secrets.pki.sign_self_issued(
        external.public_bytes(serialization.Encoding.PEM).decode(), mount_point=mount)["data"]

    resigned = cert(data["certificate"])
    resigned.verify_directly_issued_by(cert(top["certificate"]))
    assert resigned.subject == external.subject
    assert resigned.public_key() == external.public_key()
    assert cert(data["issuing_ca"]) == cert(top["certificate"])


def test_sign_verbatim_keeps_the_csrs_subject(root_client: hvac.Client, mount: str) -> None:
    """sign-verbatim signs the CSR's own subject and names, outside any role's rules."""
    top = root(root_client, mount, "top")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "keyward"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "anything.invalid")])
    csr = (x509.CertificateSigningRequestBuilder().subject_name(subject)
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("anything.invalid")]),
                          critical=False)
           .sign(key, hashes.SHA256()))

    data = root_client.secrets.pki.sign_verbatim(
        csr.public_bytes(serialization.Encoding.PEM).decode(),
        extra_params={"ttl": "1h"}, mount_point=mount)["data"]

    signed = cert(data["certificate"])
    signed.verify_directly_issued_by(cert(top["certificate"]))
    assert signed.subject == subject
    san = signed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["anything.invalid"]


def test_issuer_path_signs_an_intermediate(root_client: hvac.Client, mount: str) -> None:
    """issuer/<ref>/sign-intermediate signs with the named issuer, not the default."""
    root(root_client, mount, "old")
    new = root(root_client, mount, "new")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "from new")]))
           .sign(key, hashes.SHA256()))

    data = root_client.write_data(f"{mount}/issuer/new/sign-intermediate",
                                  data={"csr": csr.public_bytes(
                                      serialization.Encoding.PEM).decode(), "ttl": "24h"})["data"]

    cert(data["certificate"]).verify_directly_issued_by(cert(new["certificate"]))


# bare and JSON reads ----------------------------------------------------------------------


def test_ca_and_issuer_certificates_read_bare(vault_target: VaultTarget,
                                              root_client: hvac.Client, mount: str) -> None:
    """ca is DER, ca/pem PEM; issuer/<ref>/der and /pem likewise; /json has the chain."""
    top = root(root_client, mount, "top")
    expected = cert(top["certificate"])

    status_der, type_der, der = raw_get(vault_target, f"{mount}/ca")
    status_pem, type_pem, pem = raw_get(vault_target, f"{mount}/issuer/top/pem")
    _, _, issuer_der = raw_get(vault_target, f"{mount}/issuer/top/der")
    as_json = root_client.read(f"{mount}/issuer/top/json")["data"]

    assert (status_der, type_der) == (200, "application/pkix-cert")
    assert x509.load_der_x509_certificate(der) == expected
    assert (status_pem, type_pem) == (200, "application/pem-certificate-chain")
    assert x509.load_pem_x509_certificate(pem) == expected
    assert x509.load_der_x509_certificate(issuer_der) == expected
    assert as_json["issuer_id"] == top["issuer_id"]
    assert [cert(item) for item in as_json["ca_chain"]] == [expected]
    assert cert(root_client.read(f"{mount}/cert/ca")["data"]["certificate"]) == expected


def test_a_mount_without_a_ca_answers_no_content(vault_target: VaultTarget,
                                                 mount: str) -> None:
    """ca/pem and ca_chain of a mount with no issuer: 204 with no body."""
    assert raw_get(vault_target, f"{mount}/ca/pem")[0] == 204
    assert raw_get(vault_target, f"{mount}/ca_chain")[0] == 204


def test_crls_read_bare_and_per_issuer(vault_target: VaultTarget, root_client: hvac.Client,
                                       mount: str) -> None:
    """crl is DER, issuer/<ref>/crl JSON; both are signed by the issuer; rotation renumbers."""
    top = root(root_client, mount, "top")
    status, content_type, der = raw_get(vault_target, f"{mount}/crl")
    before = x509.load_der_x509_crl(der)

    rotated = root_client.read(f"{mount}/crl/rotate")["data"]
    per_issuer = root_client.read(f"{mount}/issuer/top/crl")["data"]["crl"]

    assert (status, content_type) == (200, "application/pkix-crl")
    assert before.is_signature_valid(cert(top["certificate"]).public_key())
    assert rotated == {"success": True}
    after = x509.load_pem_x509_crl(per_issuer.encode())
    number = after.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_revoked_serials_are_listed(root_client: hvac.Client, mount: str) -> None:
    """LIST certs/revoked has a revoked leaf's serial."""
    root(root_client, mount, "top")
    root_client.secrets.pki.create_or_update_role(
        "web", extra_params={"allow_any_name": True, "key_type": "ec"}, mount_point=mount)
    leaf = root_client.secrets.pki.generate_certificate(
        "web", "app.example.test", extra_params={"ttl": "1h"}, mount_point=mount)["data"]
    root_client.secrets.pki.revoke_certificate(leaf["serial_number"], mount_point=mount)

    listed = root_client.list(f"{mount}/certs/revoked")["data"]["keys"]

    assert listed == [leaf["serial_number"]]


# roles, tidy, delete root -------------------------------------------------------------------


def test_roles_are_listed_and_deleted(root_client: hvac.Client, mount: str) -> None:
    """LIST roles names the roles; DELETE roles/<name> removes one."""
    for name in ("alpha", "beta"):
        root_client.secrets.pki.create_or_update_role(name, mount_point=mount)

    listed = root_client.secrets.pki.list_roles(mount_point=mount)["data"]["keys"]
    root_client.secrets.pki.delete_role("alpha", mount_point=mount)

    assert listed == ["alpha", "beta"]
    assert root_client.secrets.pki.list_roles(mount_point=mount)["data"]["keys"] == ["beta"]


def test_tidy_without_targets_is_accepted_and_says_so(root_client: hvac.Client,
                                                      mount: str) -> None:
    """tidy with nothing to tidy is accepted (202) with a warning naming the flags."""
    response = root_client.secrets.pki.tidy(mount_point=mount)

    assert response.status_code == 202
    assert "tidy_cert_store" in response.json()["warnings"][0]


def test_delete_root_removes_every_issuer(root_client: hvac.Client, mount: str) -> None:
    """DELETE root removes all issuers and keys, with Vault's warning."""
    root(root_client, mount, "one")
    root(root_client, mount, "two")

    answer = root_client.secrets.pki.delete_root(mount_point=mount)

    assert "DELETE /root deletes all keys and issuers" in answer["warnings"][0]
    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.pki.list_issuers(mount_point=mount)
