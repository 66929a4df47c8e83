"""The vault-pki issuer, through hvac against keyward's dev Vault server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import hvac
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyward.issuers.base import IssuerError
from keyward.issuers.vault_pki import VaultPkiIssuer
from keyward.pki.ca import CertificateAuthority
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import validate_pair
from tests.contract.support import DevVaultProcess, free_port, random_token

CLIENT_SPEC = CertificateSpec(name="worker mTLS", common_name="worker.temporal.test",
                              usage="client", lifetime=timedelta(hours=2))
SERVER_SPEC = CertificateSpec(name="frontend", common_name="frontend.temporal.test",
                              dns_names=("frontend.temporal.test", "api.temporal.test"),
                              ip_addresses=("10.0.0.7",), usage="server",
                              lifetime=timedelta(hours=2))


@dataclass(frozen=True)
class Pki:
    client: hvac.Client
    mount: str


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    """A dev Vault with an EC root CA on a PKI mount of its own."""
    server = DevVaultProcess(tmp_path_factory.mktemp("vault") / "data", root_token=random_token())
    server.start()
    client = hvac.Client(url=server.url, token=server.root_token)
    try:
        mount = f"pki-{uuid.uuid4().hex[:8]}"
        client.sys.enable_secrets_engine("pki", path=mount)
        client.secrets.pki.generate_root("internal", "keyward test root",
                                         extra_params={"ttl": "48h", "key_type": "ec"},
                                         mount_point=mount)
        yield Pki(client, mount)
    finally:
        client.adapter.close()
        server.stop()


def role(pki: Pki, **params: Any) -> str:
    name = f"role-{uuid.uuid4().hex[:8]}"
    settings = {"allowed_domains": "temporal.test", "allow_subdomains": True,
                "key_type": "ec", "key_bits": 256, **params}
    pki.client.secrets.pki.create_or_update_role(name, extra_params=settings,
                                                 mount_point=pki.mount)
    return name


def test_client_certificate_validates_against_the_spec(pki: Pki) -> None:
    """A client certificate from the role passes validate_pair for its spec and the root."""
    issuer = VaultPkiIssuer(pki.client, mount=pki.mount, role=role(pki, server_flag=False))

    issued = issuer.issue(CLIENT_SPEC)

    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=datetime.now(UTC), spec=CLIENT_SPEC)
    assert issued.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert issued.certificate_pem.count(b"BEGIN CERTIFICATE") == 1  # the root is not sent


def test_server_certificate_carries_dns_and_ip_sans(pki: Pki) -> None:
    """A server spec with DNS and IP SANs validates, SANs and serverAuth included."""
    issuer = VaultPkiIssuer(pki.client, mount=pki.mount, role=role(pki, client_flag=False))

    issued = issuer.issue(SERVER_SPEC)

    summary = validate_pair(issued.certificate_pem, issued.private_key_pem,
                            ca_pem=issued.ca_pem, now=datetime.now(UTC), spec=SERVER_SPEC)
    assert "server" in summary.usages
    assert set(summary.ip_addresses) == {"10.0.0.7"}


def test_key_type_other_than_the_roles_is_refused(pki: Pki) -> None:
    """A spec asking for RSA from an EC role fails permanently, naming the mismatch."""
    issuer = VaultPkiIssuer(pki.client, mount=pki.mount, role=role(pki))

    with pytest.raises(IssuerError) as refused:
        issuer.issue(replace(CLIENT_SPEC, key_type="rsa-2048"))

    assert refused.value.retryable is False
    assert "rsa-2048" in str(refused.value)
    assert "PRIVATE KEY" not in str(refused.value)


def test_name_the_role_forbids_is_not_retryable(pki: Pki) -> None:
    """A common name outside the role's domains is a permanent refusal with Vault's text."""
    issuer = VaultPkiIssuer(pki.client, mount=pki.mount, role=role(pki))

    with pytest.raises(IssuerError) as refused:
        issuer.issue(replace(CLIENT_SPEC, common_name="worker.elsewhere.test"))

    assert refused.value.retryable is False
    assert "common name worker.elsewhere.test not allowed by this role" in str(refused.value)


def test_missing_role_is_not_retryable(pki: Pki) -> None:
    """Issuing through a role that does not exist is a permanent refusal."""
    issuer = VaultPkiIssuer(pki.client, mount=pki.mount, role="no-such-role")

    with pytest.raises(IssuerError) as refused:
        issuer.issue(CLIENT_SPEC)

    assert refused.value.retryable is False


def test_unreachable_vault_is_retryable() -> None:
    """Nobody listening at the address is a transient failure, and the token stays secret."""
    token = random_token()
    client = hvac.Client(url=f"http://127.0.0.1:{free_port()}", token=token, timeout=2)
    issuer = VaultPkiIssuer(client, role="any")

    with pytest.raises(IssuerError) as failed:
        issuer.issue(CLIENT_SPEC)

    assert failed.value.retryable is True
    assert token not in str(failed.value)
    assert token not in repr(issuer)
    client.adapter.close()


def _intermediate_chain() -> tuple[IssuedCertificate, bytes, bytes]:
    """A leaf issued by an intermediate under a root: (leaf pair, intermediate PEM, root PEM)."""
    root = CertificateAuthority.bootstrap("test root", path_length=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    root_ski = root.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    intermediate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test intermediate")]))
        .issuer_name(root.certificate.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
            root_ski.value), critical=False)
        .sign(root._key, hashes.SHA256())
    )
    ca = CertificateAuthority(intermediate, key, [root.certificate])
    inter_pem = intermediate.public_bytes(serialization.Encoding.PEM)
    return ca.issue(CLIENT_SPEC), inter_pem, root.ca_pem


def test_intermediates_are_sent_and_the_root_becomes_ca_pem() -> None:
    """From ca_chain [intermediate, root] the bundle gets the intermediate, ca_pem the root."""
    leaf, inter_pem, root_pem = _intermediate_chain()
    leaf_pem = leaf.certificate_pem.split(b"-----END CERTIFICATE-----")[0] + \
        b"-----END CERTIFICATE-----"
    answer = {"data": {"certificate": leaf_pem.decode(), "issuing_ca": inter_pem.decode(),
                       "ca_chain": [inter_pem.decode(), root_pem.decode()],
                       "private_key": leaf.private_key_pem.decode(),
                       "private_key_type": "ec"}}
    pki_api = SimpleNamespace(generate_certificate=lambda **_: answer)
    stand_in = SimpleNamespace(secrets=SimpleNamespace(pki=pki_api))
    issuer = VaultPkiIssuer(cast("hvac.Client", stand_in), role="workers")

    issued = issuer.issue(CLIENT_SPEC)

    assert issued.certificate_pem == leaf_pem + b"\n" + inter_pem
    assert issued.ca_pem == root_pem
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=datetime.now(UTC), spec=CLIENT_SPEC)


@pytest.mark.parametrize("subject", [
    {"organization": ("Acme",)}, {"organizational_unit": ("Ops",)}, {"country": "DE"},
    {"state": "Berlin"}, {"locality": "Berlin"}])
def test_a_spec_asking_for_more_than_the_common_name_is_refused_before_vault(
        subject: dict[str, Any]) -> None:
    """pki/issue takes only the CN; O, OU, C, ST and L come from the role's fields. A spec
    asking for them is refused (permanently, naming the role's fields) without a request:
    the client here points nowhere, so any request would fail as retryable."""
    issuer = VaultPkiIssuer(hvac.Client(url="http://127.0.0.1:9"), mount="pki", role="r")

    with pytest.raises(IssuerError, match=r"cannot set: the role's fields decide them "
                                          r"\(vault write <mount>/roles/<role> organization=") \
            as caught:
        issuer.issue(replace(CLIENT_SPEC, **subject))
    assert not caught.value.retryable
