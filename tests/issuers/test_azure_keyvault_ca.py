"""A CA made in Azure Key Vault (keyward.azure.ca) through the real Azure SDK against the
emulator: its certificate is a CA, and it signs leaves, through the vault's ``sign`` when
the key stays there."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.keyvault.certificates import CertificateClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from keyward.azure.ca import CaRequest, KeyVaultCa, KeyVaultSigningKey, create_ca, open_ca
from keyward.azure.vault import KeyVaultCertificateRef
from keyward.issuers.azure_keyvault import AzureKeyVaultIssuer
from keyward.issuers.base import IssuerError
from keyward.pki.ca import CertificateAuthorityError, is_ca
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import validate_pair
from tests.emulators.azure_keyvault import RunningVault
from tests.issuers.akv_support import (
    TOKEN,
    FixedTokenCredential,
    connection,
    forget_challenges,
    running_vault,
)
from tests.tls_material import ServerTLS, make_server_tls

REQUEST = CaRequest(common_name="keyward Key Vault CA", organization=("Acme, Inc.",),
                    country="DE", lifetime=timedelta(days=365))
LEAF = CertificateSpec(name="worker", common_name="worker.keyward.test",
                       dns_names=("worker.keyward.test",), organization=("Acme, Inc.",),
                       lifetime=timedelta(days=7))


@pytest.fixture(autouse=True)
def _forget_challenges() -> None:
    forget_challenges()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTLS:
    return make_server_tls(Path(tmp_path_factory.mktemp("akv-ca-tls")))


@pytest.fixture
def vault(tls: ServerTLS) -> Iterator[RunningVault]:
    with running_vault(tls) as running:
        yield running


def make_ca(vault: RunningVault, request: CaRequest = REQUEST, *,
            name: str = "keyward-ca") -> KeyVaultCa:
    return create_ca(vault.url, name, request, credential=FixedTokenCredential(TOKEN),
                     client_kwargs=connection(vault), polling_interval=0.01)


def sign_requests(vault: RunningVault) -> list[str]:
    return [seen.path for seen in vault.emulator.requests
            if seen.method == "POST" and seen.path.endswith("/sign") and seen.status == 200]


def assert_ca_certificate(certificate: x509.Certificate, *, path_length: int | None) -> None:
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value.ca
    assert constraints.value.path_length == path_length
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert (usage.value.key_cert_sign, usage.value.crl_sign, usage.value.digital_signature) == (
        True, True, True)
    certificate.verify_directly_issued_by(certificate)  # self-signed, by the vault's key


def test_a_ca_whose_key_stays_in_key_vault_signs_leaves_through_the_vault(
        vault: RunningVault) -> None:
    """Not exportable: the CA certificate (CA:true, keyCertSign, cRLSign) is merged into the
    vault, its secret holds no key, and every leaf is signed by the vault's sign operation."""
    ca = make_ca(vault)

    assert_ca_certificate(ca.certificate, path_length=0)
    assert ca.certificate.subject.get_attributes_for_oid(
        NameOID.ORGANIZATION_NAME)[0].value == "Acme, Inc."
    stored = vault.emulator.certificates["keyward-ca"]
    seed, current = stored.versions
    assert current.id == ca.version
    assert current.leaf == ca.certificate
    assert current.key is seed.key  # the CA version reuses the seed's key...
    assert not seed.enabled  # ...and the seed's own (non-CA) certificate is switched off
    assert not is_ca(seed.leaf)
    assert vault.emulator.policy_of("keyward-ca")["key_props"]["exportable"] is False
    assert len(sign_requests(vault)) == 1  # the CA certificate itself

    issued = ca.authority.issue(LEAF)

    assert sign_requests(vault)[-1] == f"/keys/keyward-ca/{ca.version}/sign"
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=ca.ca_pem,
                  now=datetime.now(UTC), spec=LEAF, trust_anchor=ca.ca_pem)
    with pytest.raises(CertificateAuthorityError, match="held remotely"):
        ca.authority.save(Path("/nonexistent/ca.crt"), Path("/nonexistent/ca.key"))


def test_an_exportable_ca_signs_locally(vault: RunningVault) -> None:
    """Exportable: the key is read from the CA version's secret once, and leaves are signed
    here, with no further sign request to the vault."""
    ca = make_ca(vault, CaRequest(common_name="exportable CA", exportable=True,
                                  path_length=None))
    signed_so_far = len(sign_requests(vault))

    issued = ca.authority.issue(LEAF)

    assert_ca_certificate(ca.certificate, path_length=None)
    assert len(sign_requests(vault)) == signed_so_far
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=ca.ca_pem,
                  now=datetime.now(UTC), spec=LEAF)


def test_an_rsa_ca_signs_with_rs256(vault: RunningVault) -> None:
    """An RSA key in the vault signs PKCS#1 v1.5 (RS256), both the CA and a CSR's leaf."""
    ca = make_ca(vault, CaRequest(common_name="rsa CA", key_type="rsa-2048"))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
           .sign(leaf_key, hashes.SHA256()))

    chain = ca.authority.sign_csr(csr.public_bytes(serialization.Encoding.PEM), LEAF)

    assert isinstance(ca.certificate.public_key(), rsa.RSAPublicKey)
    assert_ca_certificate(ca.certificate, path_length=0)
    leaf = x509.load_pem_x509_certificates(chain)[0]
    leaf.verify_directly_issued_by(ca.certificate)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == LEAF.common_name


def test_open_ca_signs_with_the_ca_the_vault_holds_now(vault: RunningVault) -> None:
    """After a restart the CA comes back from the vault (current version) and still signs."""
    made = make_ca(vault)

    opened = open_ca(vault.url, "keyward-ca", exportable=False,
                     credential=FixedTokenCredential(TOKEN), client_kwargs=connection(vault))
    issued = opened.authority.issue(LEAF)

    assert (opened.version, opened.certificate) == (made.version, made.certificate)
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=opened.ca_pem,
                  now=datetime.now(UTC), spec=LEAF)


def test_a_key_vault_ca_signs_a_key_vault_leaf(vault: RunningVault) -> None:
    """The CA plugs into the Key Vault issuer's external-CA mode: both keys stay in the vault."""
    ca = make_ca(vault)
    issuer = AzureKeyVaultIssuer(vault.url, "worker-cert", mode="external-ca",
                                 sign_csr=ca.authority.sign_csr, ca_pem=ca.ca_pem,
                                 credential=FixedTokenCredential(TOKEN),
                                 client_kwargs=connection(vault), polling_interval=0.01)

    issued = issuer.issue(LEAF)

    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=datetime.now(UTC), spec=LEAF, trust_anchor=ca.ca_pem)


def test_a_signature_that_does_not_verify_is_refused(vault: RunningVault) -> None:
    """A vault answer that is not a signature by the CA's key never becomes a certificate."""
    vault.emulator.tamper_signatures = True

    with pytest.raises(IssuerError, match="does not verify") as caught:
        make_ca(vault)
    assert not caught.value.retryable
    assert len(vault.emulator.certificates["keyward-ca"].versions) == 1  # nothing merged


def test_a_disabled_key_version_cannot_sign(vault: RunningVault) -> None:
    """The seed version is disabled after creation: its key no longer signs (403)."""
    ca = make_ca(vault)
    seed = vault.emulator.certificates["keyward-ca"].versions[0]
    public = ca.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    key = KeyVaultSigningKey(KeyVaultCertificateRef(vault.url, "keyward-ca",
                                                    credential=FixedTokenCredential(TOKEN),
                                                    client_kwargs=connection(vault)),
                             seed.id, public)

    with pytest.raises(IssuerError, match="HTTP 403") as caught:
        key.sign_sha256(bytes(32))
    assert not caught.value.retryable


def test_a_subject_key_vault_cannot_spell_is_refused_before_any_request(
        vault: RunningVault) -> None:
    """A double quote has no agreed spelling in Key Vault's subject syntax."""
    with pytest.raises(ValueError, match="double quote"):
        make_ca(vault, CaRequest(common_name='the "best" CA'))
    assert vault.emulator.requests == []


def test_the_vault_certificate_client_reads_the_ca_back(vault: RunningVault) -> None:
    """What other Key Vault consumers see: the current version is the CA certificate."""
    ca = make_ca(vault)
    with CertificateClient(vault.url, FixedTokenCredential(TOKEN), **connection(vault)) as client:
        current = client.get_certificate("keyward-ca")
    assert current.properties is not None
    assert current.properties.version == ca.version
    assert x509.load_der_x509_certificate(bytes(current.cer or b"")) == ca.certificate
