"""AzureKeyVaultIssuer and the Key Vault store through the real Azure SDK against the emulator.

No Azure AD exists here: a tiny ``TokenCredential`` hands out a fixed token, and the
emulator checks that exactly that token arrives after the 401 challenge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest
from azure.keyvault.certificates import (
    CertificateClient,
    CertificateContentType,
    CertificatePolicy,
    CertificatePolicyAction,
    KeyType,
    LifetimeAction,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from temporalio.testing import ActivityEnvironment

from activities.certificates import CertificateActivities
from keyward.config import CertificateSettings, Settings, load_settings
from keyward.contracts import failures
from keyward.contracts.certificates import CertificateRef
from keyward.errors import KeywardError
from keyward.issuers.azure_keyvault import AzureKeyVaultIssuer, validity_in_months
from keyward.issuers.base import IssuerError
from keyward.issuers.factory import build_issuer
from keyward.pki.ca import CertificateAuthority, CertificateAuthorityError
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import validate_pair
from keyward.services.certificates import Certificates, spec_for
from keyward.stores.azure_keyvault import import_to_key_vault
from keyward.stores.factory import store_for
from keyward_devstack.processes import free_port
from tests.emulators.azure_keyvault import RunningVault
from tests.issuers.akv_support import (
    TOKEN,
    FixedTokenCredential,
    connection,
    forget_challenges,
    running_vault,
)
from tests.tls_material import ServerTLS, make_server_tls

SPEC = CertificateSpec(name="worker", common_name="worker-1.keyward.test",
                       dns_names=("worker-1.keyward.test", "worker.internal"))


# -- test doubles -------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class SigningCA:
    """Root → intermediate; signs CSRs with the intermediate, as a real issuing CA does."""

    def __init__(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = self._ca_cert(_name("keyward test root"), self.root_key, self.root_key,
                                  _name("keyward test root"), now, path_length=1)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = self._ca_cert(_name("keyward test issuing CA"), self.key,
                                          self.root_key, self.root.subject, now, path_length=0)
        self.csrs: list[x509.CertificateSigningRequest] = []

    @staticmethod
    def _ca_cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey,
                 signer: ec.EllipticCurvePrivateKey, issuer: x509.Name, now: dt.datetime,
                 *, path_length: int) -> x509.Certificate:
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=1))
                .not_valid_after(now + timedelta(days=365))
                .add_extension(x509.BasicConstraints(ca=True, path_length=path_length),
                               critical=True)
                .sign(signer, hashes.SHA256()))

    def root_pem(self) -> bytes:
        return self.root.public_bytes(serialization.Encoding.PEM)

    def sign_csr(self, csr_der: bytes, spec: CertificateSpec) -> bytes:
        csr = x509.load_der_x509_csr(csr_der)
        self.csrs.append(csr)
        now = dt.datetime.now(dt.UTC)
        builder = (x509.CertificateBuilder().subject_name(csr.subject)
                   .issuer_name(self.intermediate.subject).public_key(csr.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=1))
                   .not_valid_after(now + spec.lifetime)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                                  critical=False))
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        leaf = builder.add_extension(san, critical=False).sign(self.key, hashes.SHA256())
        return (leaf.public_bytes(serialization.Encoding.PEM)
                + self.intermediate.public_bytes(serialization.Encoding.PEM))


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _forget_challenges() -> None:
    forget_challenges()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> ServerTLS:
    return make_server_tls(Path(tmp_path_factory.mktemp("akv-tls")))


@pytest.fixture
def vault(tls: ServerTLS) -> Iterator[RunningVault]:
    """A fresh emulator per test (the challenge test needs a vault nobody has talked to)."""
    with running_vault(tls) as running:
        yield running


@pytest.fixture
def credential() -> FixedTokenCredential:
    return FixedTokenCredential(TOKEN)


def make_issuer(vault: RunningVault, credential: FixedTokenCredential, *,
                name: str = "worker-cert", **options: Any) -> AzureKeyVaultIssuer:
    client_kwargs = connection(vault, **options.pop("client_kwargs", {}))
    options.setdefault("mode", "self")
    return AzureKeyVaultIssuer(vault.url, name, credential=credential,
                               client_kwargs=client_kwargs, polling_interval=0.05,
                               **options)


def sdk_client(vault: RunningVault, credential: FixedTokenCredential) -> CertificateClient:
    return CertificateClient(vault.url, credential, **connection(vault))


def load(issued: IssuedCertificate) -> tuple[list[x509.Certificate], Any]:
    chain = x509.load_pem_x509_certificates(issued.certificate_pem)
    key = serialization.load_pem_private_key(issued.private_key_pem, password=None)
    return chain, key


def assert_no_secrets(error: BaseException) -> None:
    """Neither the token nor key material may reach an error message (or its cause)."""
    texts = [str(error), repr(error)]
    if error.__cause__ is not None:
        texts += [str(error.__cause__), repr(error.__cause__)]
    for text in texts:
        assert TOKEN not in text
        assert "PRIVATE KEY" not in text
        assert "Bearer " + TOKEN[:8] not in text


def san_values(certificate: x509.Certificate, kind: type[x509.GeneralName]) -> list[Any]:
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return list(san.get_values_for_type(kind))  # type: ignore[call-overload]


def ekus(certificate: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


# -- issuing --------------------------------------------------------------------------------------


def test_self_mode_returns_a_matching_certificate_and_key_for_the_spec(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """Self mode yields a self-signed leaf with the spec's CN, SANs and clientAuth, and its key."""
    issued = make_issuer(vault, credential).issue(SPEC)

    (leaf,), key = load(issued)
    assert issued.private_key_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == leaf.public_key()
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SPEC.common_name
    assert sorted(san_values(leaf, x509.DNSName)) == sorted(SPEC.dns_names)
    assert ekus(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert leaf.issuer == leaf.subject
    assert issued.ca_pem == issued.certificate_pem  # a self-signed leaf is its own anchor
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc >= timedelta(days=89)


def test_self_mode_waits_for_the_pending_operation_to_complete(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """The issuer polls the pending operation until Key Vault reports it completed."""
    vault.emulator.self_signed_polls = 3
    make_issuer(vault, credential).issue(SPEC)

    polls = [r for r in vault.emulator.requests
             if r.method == "GET" and r.path.endswith("/pending") and r.status == 200]
    assert len(polls) == 4


def test_rsa_key_and_both_usages_reach_the_certificate(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """key_type rsa-2048 and usage both become an RSA-2048 key with serverAuth+clientAuth."""
    spec = CertificateSpec(name="srv", common_name="frontend.keyward.test", usage="both",
                           key_type="rsa-2048")
    issued = make_issuer(vault, credential).issue(spec)

    (leaf,), key = load(issued)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert set(ekus(leaf)) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_ip_address_sans_are_issued(vault: RunningVault,
                                    credential: FixedTokenCredential) -> None:
    """IP SANs in the spec reach the certificate (API 2025-07-01 and later)."""
    spec = CertificateSpec(name="w", common_name="w.keyward.test", ip_addresses=("10.0.0.7",))
    (leaf,), _ = load(make_issuer(vault, credential).issue(spec))

    assert [str(ip) for ip in san_values(leaf, x509.IPAddress)] == ["10.0.0.7"]


def test_ip_address_sans_are_refused_on_an_api_version_without_them(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """With an older pinned API version a spec with IPs fails clearly, before any request."""
    spec = CertificateSpec(name="w", common_name="w.keyward.test", ip_addresses=("10.0.0.7",))
    issuer = make_issuer(vault, credential, client_kwargs={"api_version": "7.5"})

    with pytest.raises(IssuerError, match="IP address SANs") as caught:
        issuer.issue(spec)
    assert not caught.value.retryable
    assert vault.emulator.requests == []


def test_external_ca_flow_merges_the_signed_chain(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """The vault's CSR is signed by the CA, merged, and the result chains to that CA."""
    ca = SigningCA()
    issued = make_issuer(vault, credential, mode="external-ca", sign_csr=ca.sign_csr,
                         ca_pem=ca.root_pem()).issue(SPEC)

    (csr,) = ca.csrs
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == f"CN={SPEC.common_name}"
    (leaf, intermediate), key = load(issued)
    assert key.public_key() == leaf.public_key() == csr.public_key()
    leaf.verify_directly_issued_by(intermediate)
    intermediate.verify_directly_issued_by(ca.root)
    assert issued.ca_pem == ca.root_pem()
    stored = vault.emulator.certificates["worker-cert"]
    assert stored.pending is not None
    assert stored.pending.status == "completed"
    assert [c.subject for c in stored.versions[-1].chain] == [
        leaf.subject, intermediate.subject, ca.root.subject]


def test_external_ca_flow_with_keywards_own_ca(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """keyward's local CA plugs in as the signer; the leaf chains to its root."""
    ca = CertificateAuthority.bootstrap("keyward test local CA")
    spec = CertificateSpec(name="w", common_name="w.keyward.test", dns_names=("w.keyward.test",),
                           lifetime=timedelta(days=30))

    issued = make_issuer(vault, credential, mode="external-ca", sign_csr=ca.sign_csr,
                         ca_pem=ca.ca_pem).issue(spec)

    (leaf,), key = load(issued)
    leaf.verify_directly_issued_by(ca.certificate)
    assert key.public_key() == leaf.public_key()
    assert issued.ca_pem == ca.ca_pem
    assert ekus(leaf) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_failing_signer_is_not_retryable_unless_it_says_so(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """Signer errors are permanent, except an IssuerError the signer marked retryable."""
    def broken(csr_der: bytes, spec: CertificateSpec) -> bytes:
        raise CertificateAuthorityError("CA is not valid now")

    def busy(csr_der: bytes, spec: CertificateSpec) -> bytes:
        raise IssuerError("remote CA busy", retryable=True)

    with pytest.raises(IssuerError, match="CA is not valid now") as caught:
        make_issuer(vault, credential, mode="external-ca", sign_csr=broken).issue(SPEC)
    assert not caught.value.retryable
    with pytest.raises(IssuerError, match="remote CA busy") as caught:
        make_issuer(vault, credential, mode="external-ca", sign_csr=busy).issue(SPEC)
    assert caught.value.retryable


def test_a_signer_answering_for_another_key_is_not_retryable(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A signed certificate whose key is not the CSR's is refused before merging."""
    ca = SigningCA()
    stranger = ec.generate_private_key(ec.SECP256R1())

    def wrong_signer(csr_der: bytes, spec: CertificateSpec) -> bytes:
        csr = (x509.CertificateSigningRequestBuilder().subject_name(_name("stranger"))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName("stranger")]),
                              critical=False).sign(stranger, hashes.SHA256()))
        return ca.sign_csr(csr.public_bytes(serialization.Encoding.DER), spec)

    with pytest.raises(IssuerError, match="different key") as caught:
        make_issuer(vault, credential, mode="external-ca", sign_csr=wrong_signer).issue(SPEC)
    assert not caught.value.retryable
    assert not any(r.path.endswith("/merge") for r in vault.emulator.requests)


def test_external_ca_replaces_an_abandoned_csr_request(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A pending "Unknown" request left by a crashed attempt is deleted, not a permanent 409."""
    with sdk_client(vault, credential) as client:
        client.begin_create_certificate("worker-cert", CertificatePolicy(
            issuer_name="Unknown", subject="CN=left-over")).result()
    ca = SigningCA()

    issued = make_issuer(vault, credential, mode="external-ca", sign_csr=ca.sign_csr,
                         ca_pem=ca.root_pem()).issue(SPEC)

    (leaf, _), _ = load(issued)
    assert leaf.subject.rfc4514_string() == f"CN={SPEC.common_name}"
    assert any(r.status == 409 for r in vault.emulator.requests)


def test_self_creation_still_running_in_the_vault_is_retryable(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """Key Vault's 409 while its own "Self" creation runs is transient: retryable."""
    vault.emulator.self_signed_polls = 1000
    with sdk_client(vault, credential) as client:
        # A raw create, so no SDK poller thread keeps polling after the test.
        response = client.send_request(HttpRequest(
            "POST", "/certificates/worker-cert/create",
            json={"policy": {"issuer": {"name": "Self"}, "x509_props": {"subject": "CN=busy"}}}))
    assert response.status_code == 202

    with pytest.raises(IssuerError, match="in progress") as caught:
        make_issuer(vault, credential).issue(SPEC)
    assert caught.value.retryable
    assert_no_secrets(caught.value)


# -- authentication ---------------------------------------------------------------------------


def test_requests_follow_the_bearer_challenge(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """The first request is unauthenticated and challenged; every later one carries the token."""
    make_issuer(vault, credential).issue(SPEC)

    first, *rest = vault.emulator.requests
    assert first.authorization is None
    assert first.status == 401
    assert first.api_version
    assert rest
    # The secret client discovers the challenge for itself too (its own cache).
    unauthenticated = vault.emulator.unauthenticated_requests()
    assert [r.path.split("/")[1] for r in unauthenticated] == ["certificates", "secrets"]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in rest if r not in unauthenticated)
    assert credential.requests
    assert all(scopes == ("https://vault.azure.net/.default",) and
               tenant == vault.emulator.tenant_id for scopes, tenant in credential.requests)


def test_a_rejected_token_is_not_retryable(vault: RunningVault) -> None:
    """A token the vault refuses is a configuration problem, and its text stays out of errors."""
    issuer = make_issuer(vault, FixedTokenCredential("not-" + TOKEN))

    with pytest.raises(IssuerError, match="401") as caught:
        issuer.issue(SPEC)
    assert not caught.value.retryable
    assert "worker-cert" in str(caught.value)
    assert vault.url in str(caught.value)
    assert_no_secrets(caught.value)


# -- export failures -------------------------------------------------------------------------------


def test_a_non_exportable_key_is_not_retryable(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A certificate whose policy keeps the key in the vault fails clearly and permanently."""
    with sdk_client(vault, credential) as client:
        client.begin_create_certificate("worker-cert", CertificatePolicy(
            issuer_name="Self", subject="CN=locked", exportable=False,
            content_type=CertificateContentType.pem, key_type=KeyType.ec),
            _polling_interval=0.05).result()

    with pytest.raises(IssuerError, match="exportable") as caught:
        make_issuer(vault, credential).export_current()
    assert not caught.value.retryable
    assert_no_secrets(caught.value)


def test_a_forbidden_secret_read_is_not_retryable(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A 403 on the backing secret (no secrets/get permission) is permanent and says so."""
    vault.emulator.deny_secret_get = True

    with pytest.raises(IssuerError, match="403") as caught:
        make_issuer(vault, credential).issue(SPEC)
    assert not caught.value.retryable
    assert "export" in str(caught.value)
    assert_no_secrets(caught.value)


def test_an_unreachable_vault_is_retryable(tls: ServerTLS,
                                           credential: FixedTokenCredential) -> None:
    """Nothing listening at the vault address is a transient failure."""
    url = f"https://127.0.0.1:{free_port()}"
    issuer = AzureKeyVaultIssuer(url, "worker-cert", mode="self", credential=credential,
                                 client_kwargs={"verify_challenge_resource": False,
                                                "connection_verify": str(tls.ca_cert),
                                                "retry_total": 0})

    with pytest.raises(IssuerError) as caught:
        issuer.issue(SPEC)
    assert caught.value.retryable
    assert url in str(caught.value)
    assert_no_secrets(caught.value)


@pytest.mark.parametrize("status", [429, 503])
def test_throttling_and_server_errors_are_retryable(
        vault: RunningVault, credential: FixedTokenCredential, status: int) -> None:
    """429 and 5xx from the vault are worth retrying."""
    issuer = make_issuer(vault, credential)
    vault.emulator.inject_statuses = [status]

    with pytest.raises(IssuerError, match=str(status)) as caught:
        issuer.issue(SPEC)
    assert caught.value.retryable


def test_a_vault_outside_azure_needs_the_challenge_check_disabled(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """Without verify_challenge_resource=False the SDK refuses the local vault: not retryable."""
    issuer = AzureKeyVaultIssuer(vault.url, "worker-cert", mode="self", credential=credential,
                                 client_kwargs={"connection_verify": vault.ca_path,
                                                "retry_total": 0})

    with pytest.raises(IssuerError, match="challenge") as caught:
        issuer.issue(SPEC)
    assert not caught.value.retryable


# -- policy -----------------------------------------------------------------------------------


def test_lifetime_action_lands_in_the_stored_policy(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """AutoRenew at a lifetime percentage is what the vault stores and reports back."""
    make_issuer(vault, credential, lifetime_action="AutoRenew",
                lifetime_percentage=75).issue(SPEC)

    assert vault.emulator.policy_of("worker-cert")["lifetime_actions"] == [
        {"trigger": {"lifetime_percentage": 75}, "action": {"action_type": "AutoRenew"}}]
    with sdk_client(vault, credential) as client:
        policy = client.get_certificate_policy("worker-cert")
    assert policy.lifetime_actions is not None
    (action,) = policy.lifetime_actions
    assert (action.action, action.lifetime_percentage) == ("AutoRenew", 75)
    assert policy.exportable is True
    assert policy.content_type == CertificateContentType.pem
    assert policy.validity_in_months == 3


def test_email_contacts_days_before_expiry_for_an_external_ca(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """EmailContacts by days before expiry is accepted for merged certificates."""
    ca = SigningCA()
    make_issuer(vault, credential, mode="external-ca", sign_csr=ca.sign_csr,
                lifetime_action="EmailContacts", days_before_expiry=10).issue(SPEC)

    assert vault.emulator.policy_of("worker-cert")["lifetime_actions"] == [
        {"trigger": {"days_before_expiry": 10}, "action": {"action_type": "EmailContacts"}}]


def test_auto_renew_is_refused_for_an_external_ca() -> None:
    """Key Vault cannot renew what an outside CA signs, so the combination is a config error."""
    with pytest.raises(ValueError, match="auto-renew"):
        AzureKeyVaultIssuer("https://v.vault.azure.net", "c", mode="external-ca",
                            credential=FixedTokenCredential(TOKEN), sign_csr=SigningCA().sign_csr,
                            lifetime_action="AutoRenew", lifetime_percentage=80)


@pytest.mark.parametrize(("lifetime", "months"), [
    (timedelta(hours=1), 1), (timedelta(days=30), 1), (timedelta(days=31), 2),
    (timedelta(days=90), 3), (timedelta(days=365), 12), (timedelta(days=366), 13)])
def test_validity_rounds_up_to_whole_months(lifetime: timedelta, months: int) -> None:
    """Key Vault counts validity in whole months; keyward rounds average months up."""
    assert validity_in_months(lifetime) == months


def test_days_before_expiry_beyond_the_validity_is_refused(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """Key Vault allows days_before_expiry up to 27 per month of validity; more fails early."""
    issuer = make_issuer(vault, credential, lifetime_action="EmailContacts",
                         days_before_expiry=90)

    with pytest.raises(IssuerError, match="days_before_expiry") as caught:
        issuer.issue(SPEC)  # 90 days of lifetime = 3 months → at most 81 days
    assert not caught.value.retryable
    assert vault.emulator.requests == []


def test_policy_update_sets_named_sections_and_keeps_the_rest(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A policy PATCH through the SDK changes the lifetime action and leaves the key rules."""
    make_issuer(vault, credential).issue(SPEC)

    with sdk_client(vault, credential) as client:
        client.update_certificate_policy("worker-cert", CertificatePolicy(
            lifetime_actions=[LifetimeAction(CertificatePolicyAction.email_contacts,
                                             days_before_expiry=5)]))
        policy = client.get_certificate_policy("worker-cert")

    assert policy.lifetime_actions is not None
    assert [(a.action, a.days_before_expiry) for a in policy.lifetime_actions] == [
        ("EmailContacts", 5)]
    assert policy.exportable is True
    assert policy.key_curve_name == "P-256"


@pytest.mark.parametrize(("arguments", "problem"), [
    ({"vault_url": "http://v.vault.azure.net"}, "https"),
    ({"certificate_name": "not_valid"}, "certificate name"),
    ({"mode": "external-ca"}, "sign_csr"),
    ({"lifetime_action": "EmailContacts"}, "exactly one"),
    ({"lifetime_action": "EmailContacts", "lifetime_percentage": 100}, "1-99"),
    ({"lifetime_percentage": 80}, "needs lifetime_action"),
])
def test_configuration_mistakes_fail_at_construction(arguments: dict[str, Any],
                                                     problem: str) -> None:
    """Settings Key Vault would refuse are rejected when the issuer is built, not mid-renewal."""
    values: dict[str, Any] = {"vault_url": "https://v.vault.azure.net",
                              "certificate_name": "worker-cert", "mode": "self",
                              "credential": FixedTokenCredential(TOKEN), **arguments}
    with pytest.raises(ValueError, match=problem):
        AzureKeyVaultIssuer(values.pop("vault_url"), values.pop("certificate_name"), **values)


# -- import ---------------------------------------------------------------------------------------


def test_import_round_trip(vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A certificate imported as PEM reads back, through the issuer, with the same key and chain."""
    ca = SigningCA()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name("imported.keyward.test"))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("imported.keyward.test")]),
                          critical=False)
           .sign(key, hashes.SHA256()))
    issued = IssuedCertificate(
        certificate_pem=ca.sign_csr(csr.public_bytes(serialization.Encoding.DER), SPEC),
        private_key_pem=key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()),
        ca_pem=ca.root_pem())

    certificate_id = import_to_key_vault(vault.url, "imported", issued, credential=credential,
                                         client_kwargs=connection(vault))

    version = vault.emulator.certificates["imported"].versions[-1]
    assert certificate_id == f"{vault.url}/certificates/imported/{version.id}"
    back = make_issuer(vault, credential, name="imported", ca_pem=ca.root_pem()).export_current()
    assert back.certificate_pem == issued.certificate_pem
    assert load(back)[1].private_numbers() == key.private_numbers()
    assert vault.emulator.policy_of("imported")["secret_props"]["contentType"] == (
        "application/x-pem-file")


def test_import_refuses_a_key_that_does_not_match(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A mismatched key is caught before upload, without echoing either PEM."""
    issued = make_issuer(vault, credential).issue(SPEC)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())

    with pytest.raises(IssuerError, match="does not match") as caught:
        import_to_key_vault(vault.url, "imported", IssuedCertificate(
            issued.certificate_pem, other), credential=credential,
            client_kwargs=connection(vault))
    assert not caught.value.retryable
    assert_no_secrets(caught.value)


def test_a_pkcs12_backed_certificate_is_exported_too(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """A certificate whose secret is PKCS#12 (Key Vault's default) still yields PEM key+chain."""
    ca = SigningCA()
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name("pfx.keyward.test"))
           .add_extension(x509.SubjectAlternativeName([x509.DNSName("pfx.keyward.test")]),
                          critical=False)
           .sign(key, hashes.SHA256()))
    leaf, intermediate = x509.load_pem_x509_certificates(
        ca.sign_csr(csr.public_bytes(serialization.Encoding.DER), SPEC))
    pfx = pkcs12.serialize_key_and_certificates(b"pfx", key, leaf, [intermediate],
                                                serialization.NoEncryption())
    with sdk_client(vault, credential) as client:
        client.import_certificate("pfx", pfx)

    back = make_issuer(vault, credential, name="pfx").export_current()

    chain, exported_key = load(back)
    assert chain == [leaf, intermediate]
    assert exported_key.private_numbers() == key.private_numbers()
    assert back.ca_pem is None  # the root was never in the vault and no ca_pem was given
    assert vault.emulator.policy_of("pfx")["secret_props"]["contentType"] == (
        "application/x-pkcs12")


def test_renewal_activities_install_into_and_read_back_from_key_vault(
        vault: RunningVault, credential: FixedTokenCredential, tmp_path: Path) -> None:
    """install = "azure-keyvault": the renewal activities import the pair, then inspect it."""
    ca = CertificateAuthority.bootstrap("akv test CA")
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    cert = CertificateSettings(common_name="keyward-worker", ca_cert=tmp_path / "ca.crt",
                               ca_key=tmp_path / "ca.key", install="azure-keyvault",
                               azure_vault_url=vault.url, azure_certificate_name="worker-cert",
                               lifetime_hours=24)
    settings = dataclasses.replace(Settings(), certificates={"worker": cert})
    activities = CertificateActivities(
        settings, build_issuer,
        azure_options={"credential": credential, "client_kwargs": connection(vault)})
    env = ActivityEnvironment()
    assert not env.run(activities.inspect, CertificateRef("worker")).present
    installed = env.run(activities.issue_and_install, CertificateRef("worker"))
    assert installed.installed_to  # the new Key Vault version's id
    seen = env.run(activities.inspect, CertificateRef("worker"))
    assert seen.present
    assert seen.serial == installed.serial
    assert seen.problem is None


# -- the whole distinguished name ---------------------------------------------------------------

NAMED = dataclasses.replace(SPEC, organization=("Acme, Inc.", "Acme Labs"),
                            organizational_unit=("Platform",), country="DE", state="Berlin",
                            locality="Berlin-Mitte", lifetime=timedelta(days=30))


def subject_values(certificate: x509.Certificate) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for attribute in certificate.subject:
        values.setdefault(attribute.rfc4514_attribute_name, []).append(str(attribute.value))
    return values


def test_the_whole_subject_reaches_the_policy_and_the_certificate(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """C, ST, L, two Os (one with a comma) and OU go into the policy in Key Vault's own
    syntax, and the certificate Key Vault signs carries them and passes validation."""
    issued = make_issuer(vault, credential).issue(NAMED)

    assert vault.emulator.policy_of("worker-cert")["x509_props"]["subject"] == (
        'CN=worker-1.keyward.test, OU=Platform, O="Acme, Inc.", O=Acme Labs, '
        "L=Berlin-Mitte, S=Berlin, C=DE")
    (leaf,), _ = load(issued)
    assert subject_values(leaf) == {"C": ["DE"], "ST": ["Berlin"], "L": ["Berlin-Mitte"],
                                    "O": ["Acme Labs", "Acme, Inc."], "OU": ["Platform"],
                                    "CN": ["worker-1.keyward.test"]}
    validate_pair(issued.certificate_pem, issued.private_key_pem, ca_pem=issued.ca_pem,
                  now=dt.datetime.now(dt.UTC), spec=NAMED)


def test_the_rfc_4514_spelling_of_a_comma_is_not_what_key_vault_reads(
        vault: RunningVault, credential: FixedTokenCredential) -> None:
    """Why the issuer quotes instead: Key Vault refuses ``O=Acme\\, Inc.`` as no X.500
    name (Microsoft documents the quoted form; the emulator reads subjects as Key Vault)."""
    rfc4514 = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
                         x509.NameAttribute(NameOID.COMMON_NAME, "w")]).rfc4514_string()
    with sdk_client(vault, credential) as client, pytest.raises(HttpResponseError) as caught:
        client.begin_create_certificate("w", CertificatePolicy(issuer_name="Self",
                                                               subject=rfc4514))
    assert caught.value.status_code == 400
    assert "not a valid X500 name" in str(caught.value)


class CommonNameOnlyCA:
    """An outside CA that signs the vault's CSR with the common name only, as many do."""

    def __init__(self) -> None:
        self.ca = CertificateAuthority.bootstrap("CN-only CA")

    def sign_csr(self, csr_der: bytes, spec: CertificateSpec) -> bytes:
        return self.ca.sign_csr(csr_der, CertificateSpec(
            name=spec.name, common_name=spec.common_name, dns_names=spec.dns_names,
            lifetime=spec.lifetime))


def test_a_key_vault_certificate_without_the_asked_for_subject_is_not_installed(
        vault: RunningVault, credential: FixedTokenCredential, tmp_path: Path) -> None:
    """Renewal refuses a certificate that lacks the O, OU, … the settings ask for, naming
    each, and leaves the installed files alone."""
    outside = CommonNameOnlyCA()
    cert = CertificateSettings(common_name=NAMED.common_name, dns_names=NAMED.dns_names,
                               organization=NAMED.organization, country="DE",
                               directory=tmp_path / "certs", ca_cert=tmp_path / "ca.crt",
                               ca_key=tmp_path / "ca.key", lifetime_hours=24)
    certificates = Certificates(
        dataclasses.replace(Settings(), certificates={"worker": cert}),
        lambda name, _cert: make_issuer(vault, credential, mode="external-ca",
                                        sign_csr=outside.sign_csr, ca_pem=outside.ca.ca_pem),
        store_for)

    with pytest.raises(KeywardError) as caught:
        certificates.issue_and_install("worker")

    assert caught.value.failure_type == failures.CERTIFICATE_INVALID
    assert "NOT installed" in str(caught.value)
    assert "subject C is missing, spec 'worker' wants ['DE']" in str(caught.value)
    assert "subject O is missing, spec 'worker' wants ['Acme, Inc.', 'Acme Labs']" in str(
        caught.value)
    assert not (tmp_path / "certs").exists()


# -- Key Vault's lifetime action from settings --------------------------------------------------


@pytest.mark.parametrize(("table", "action", "days", "percentage"), [
    ({"azure_lifetime_action": "AutoRenew", "azure_days_before_expiry": 30},
     "AutoRenew", 30, None),
    ({"azure_lifetime_action": "EmailContacts", "azure_lifetime_percentage": 75},
     "EmailContacts", None, 75),
    ({"azure_mode": "external-ca", "azure_lifetime_action": "EmailContacts",
      "azure_days_before_expiry": 10}, "EmailContacts", 10, None),
])
def test_the_lifetime_action_in_the_settings_is_the_vaults_policy(
        vault: RunningVault, credential: FixedTokenCredential, tmp_path: Path,
        table: dict[str, Any], action: str, days: int | None, percentage: int | None) -> None:
    """azure_lifetime_action with its trigger, from a settings file, through the issuer the
    factory builds, is what the vault's policy holds afterwards (read with the SDK)."""
    ca = CertificateAuthority.bootstrap("akv lifetime CA")
    ca.save(tmp_path / "ca.crt", tmp_path / "ca.key")
    lines = {"common_name": "keyward-worker", "issuer": "azure-keyvault",
             "azure_vault_url": vault.url, "azure_certificate_name": "worker-cert",
             "directory": str(tmp_path / "certs"), "lifetime_hours": 2160, **table}
    if table.get("azure_mode") == "external-ca":
        lines |= {"ca_cert": str(tmp_path / "ca.crt"), "ca_key": str(tmp_path / "ca.key")}
    path = tmp_path / "keyward.toml"
    path.write_text("[certificates.worker]\n" + "".join(
        f"{key} = {value!r}\n".replace("'", '"') for key, value in lines.items()))
    cert = load_settings(path, env={}).certificates["worker"]

    issuer = build_issuer("worker", cert, azure_options={
        "credential": credential, "client_kwargs": connection(vault), "polling_interval": 0.01})
    issuer.issue(spec_for("worker", cert))

    with sdk_client(vault, credential) as client:
        policy = client.get_certificate_policy("worker-cert")
    assert policy.lifetime_actions is not None
    assert [(a.action, a.days_before_expiry, a.lifetime_percentage)
            for a in policy.lifetime_actions] == [(action, days, percentage)]
