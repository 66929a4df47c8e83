"""Contract: PKI issuers — several CAs per mount, intermediates, chains, CA rotation.

Everything a CA rotation does to a Vault PKI mount, through hvac over HTTP: a new
root beside the old one, roles and paths choosing the issuer that signs, the
default issuer switched, an intermediate generated in one mount, signed in
another and set, chains read back, issuers renamed, revoked and deleted. Each
test makes its own mounts (random names) and removes them, so they run against
real Vault unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ALL_USAGES = "read-only,issuing-certificates,crl-signing,ocsp-signing"

Mount = Callable[[], str]


@pytest.fixture
def pki(root_client: hvac.Client) -> Iterator[Mount]:
    """Make empty PKI mounts for one test; all are disabled at the end."""
    made: list[str] = []

    def make() -> str:
        path = f"kw-pkiiss-{uuid.uuid4().hex[:8]}"
        root_client.sys.enable_secrets_engine("pki", path=path)
        made.append(path)
        return path

    yield make
    for path in made:
        root_client.sys.disable_secrets_engine(path)


def cert(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def common_name(certificate: x509.Certificate) -> str:
    return str(certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def root(client: hvac.Client, mount: str, name: str, **params: Any) -> dict[str, Any]:
    settings = {"key_type": "ec", "ttl": "720h", "issuer_name": name, **params}
    data: dict[str, Any] = client.secrets.pki.generate_root(
        "internal", f"{name} root", extra_params=settings, mount_point=mount)["data"]
    return data


def role(client: hvac.Client, mount: str, name: str, **params: Any) -> None:
    settings = {"allowed_domains": "example.test", "allow_subdomains": True, "key_type": "ec",
                **params}
    client.secrets.pki.create_or_update_role(name, extra_params=settings, mount_point=mount)


def issue(client: hvac.Client, mount: str, role_name: str, **params: Any) -> dict[str, Any]:
    data: dict[str, Any] = client.secrets.pki.generate_certificate(
        name=role_name, common_name="app.example.test", extra_params={"ttl": "1h", **params},
        mount_point=mount)["data"]
    return data


def intermediate(client: hvac.Client, parent: str, child: str, *,
                 with_root: bool) -> dict[str, Any]:
    """Generate a CSR in ``child``, sign it in ``parent``, set it in ``child``."""
    csr = client.secrets.pki.generate_intermediate(
        "internal", "keyward intermediate", extra_params={"key_type": "ec"},
        mount_point=child)["data"]["csr"]
    signed: dict[str, Any] = client.secrets.pki.sign_intermediate(
        csr, "keyward intermediate", extra_params={"ttl": "240h"}, mount_point=parent)["data"]
    bundle = signed["certificate"]
    if with_root:
        bundle += "\n" + signed["issuing_ca"]
    client.secrets.pki.set_signed_intermediate(bundle, mount_point=child)
    return signed


# one root --------------------------------------------------------------------------


def test_generated_root_is_the_default_issuer(root_client: hvac.Client, pki: Mount) -> None:
    """A new mount's first root is listed, is the default, and reads back as an issuer."""
    mount = pki()
    data = root(root_client, mount, "first")

    listed = root_client.secrets.pki.list_issuers(mount_point=mount)["data"]
    issuer = root_client.secrets.pki.read_issuer(data["issuer_id"], mount_point=mount)["data"]
    defaults = root_client.read(f"{mount}/config/issuers")["data"]

    assert listed["keys"] == [data["issuer_id"]]
    info = listed["key_info"][data["issuer_id"]]
    assert info["issuer_name"] == "first"
    assert info["is_default"] is True
    assert info["key_id"] == data["key_id"]
    assert info["serial_number"] == data["serial_number"]
    assert defaults["default"] == data["issuer_id"]
    assert issuer["issuer_name"] == "first"
    assert issuer["key_id"] == data["key_id"]
    assert cert(issuer["certificate"]) == cert(data["certificate"])
    assert [cert(item) for item in issuer["ca_chain"]] == [cert(data["certificate"])]
    assert issuer["usage"] == ALL_USAGES
    assert issuer["revoked"] is False
    assert issuer["leaf_not_after_behavior"] == "err"


def test_root_generation_answers_with_issuer_and_key_ids(root_client: hvac.Client,
                                                         pki: Mount) -> None:
    """root/generate answers with issuer_id, issuer_name, key_id and (exported) the key."""
    mount = pki()
    data = root_client.secrets.pki.generate_root(
        "exported", "exported root", extra_params={"key_type": "ec", "issuer_name": "ex"},
        mount_point=mount)["data"]

    assert data["issuer_name"] == "ex"
    assert data["issuer_id"]
    assert data["key_id"]
    assert data["private_key_type"] == "ec"
    key = serialization.load_pem_private_key(data["private_key"].encode(), None)
    assert key.public_key() == cert(data["certificate"]).public_key()


def test_a_taken_issuer_name_is_refused(root_client: hvac.Client, pki: Mount) -> None:
    """A second issuer cannot take a name already in use in the mount."""
    mount = pki()
    root(root_client, mount, "taken")

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root(root_client, mount, "taken")

    assert refused.value.errors == ["issuer name already in use"]


def test_reading_an_unknown_issuer_fails_as_vault_does(root_client: hvac.Client,
                                                       pki: Mount) -> None:
    """An issuer reference that names nothing is Vault's 500, naming the reference."""
    mount = pki()
    root(root_client, mount, "only")

    with pytest.raises(hvac.exceptions.InternalServerError) as failed:
        root_client.secrets.pki.read_issuer("no-such-issuer", mount_point=mount)

    assert "unable to find PKI issuer for reference: no-such-issuer" in failed.value.errors[0]


def test_issuing_without_any_ca_fails_as_vault_does(root_client: hvac.Client,
                                                    pki: Mount) -> None:
    """issue/<role> on a mount with no issuer is a 500 saying no default is configured."""
    mount = pki()
    role(root_client, mount, "web")

    with pytest.raises(hvac.exceptions.InternalServerError) as failed:
        issue(root_client, mount, "web")

    assert "no default issuer currently configured" in failed.value.errors[0]


# several roots: CA rotation -----------------------------------------------------------------


@pytest.fixture
def two_roots(root_client: hvac.Client, pki: Mount) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A mount with an old root (the default) and a new one beside it."""
    mount = pki()
    return mount, root(root_client, mount, "old"), root(root_client, mount, "new")


def test_a_second_root_joins_without_taking_the_default(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """Generating another root adds an issuer; the first stays the default (and the CA)."""
    mount, old, new = two_roots

    listed = root_client.secrets.pki.list_issuers(mount_point=mount)["data"]
    ca_pem = root_client.secrets.pki.read_ca_certificate(mount_point=mount)

    assert sorted(listed["keys"]) == sorted([old["issuer_id"], new["issuer_id"]])
    assert listed["key_info"][old["issuer_id"]]["is_default"] is True
    assert listed["key_info"][new["issuer_id"]]["is_default"] is False
    assert old["key_id"] != new["key_id"]
    assert cert(ca_pem) == cert(old["certificate"])


@pytest.mark.parametrize("issuer_ref", ["new", "id"])
def test_a_roles_issuer_ref_chooses_the_issuer(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
    issuer_ref: str,
) -> None:
    """issue/<role> signs with the issuer the role's issuer_ref names (by name or ID)."""
    mount, old, new = two_roots
    reference = new["issuer_id"] if issuer_ref == "id" else "new"
    role(root_client, mount, "on-new", issuer_ref=reference)
    role(root_client, mount, "on-default")

    on_new = issue(root_client, mount, "on-new")
    on_default = issue(root_client, mount, "on-default")

    assert root_client.secrets.pki.read_role("on-new", mount_point=mount)["data"][
        "issuer_ref"] == reference
    cert(on_new["certificate"]).verify_directly_issued_by(cert(new["certificate"]))
    assert cert(on_new["issuing_ca"]) == cert(new["certificate"])
    assert [cert(item) for item in on_new["ca_chain"]] == [cert(new["certificate"])]
    cert(on_default["certificate"]).verify_directly_issued_by(cert(old["certificate"]))


def test_the_issuer_path_overrides_the_roles_issuer(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """issuer/<ref>/issue/<role> signs with the issuer in the path, whatever the role says."""
    mount, _old, new = two_roots
    role(root_client, mount, "pinned-old", issuer_ref="old")

    data = root_client.write_data(f"{mount}/issuer/new/issue/pinned-old",
                                  data={"common_name": "app.example.test", "ttl": "1h"})["data"]

    cert(data["certificate"]).verify_directly_issued_by(cert(new["certificate"]))


def test_issuer_ref_in_an_issue_request_is_ignored(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """issue/<role> signs with the role's issuer even when the request names another (as
    Vault does: the per-request choice is the issuer/<ref>/issue/<role> path)."""
    mount, old, _new = two_roots
    role(root_client, mount, "on-old", issuer_ref="old")

    data = issue(root_client, mount, "on-old", issuer_ref="new")

    cert(data["certificate"]).verify_directly_issued_by(cert(old["certificate"]))


def test_a_role_naming_no_issuer_yet_is_kept_with_a_warning(root_client: hvac.Client,
                                                            pki: Mount) -> None:
    """A role may name an issuer that does not exist yet; the write warns, the read keeps it."""
    mount = pki()

    written = root_client.secrets.pki.create_or_update_role(
        "later", extra_params={"issuer_ref": "future", "allow_any_name": True},
        mount_point=mount)

    assert any("future" in warning for warning in written["warnings"])
    assert root_client.secrets.pki.read_role("later", mount_point=mount)["data"][
        "issuer_ref"] == "future"


def test_switching_the_default_issuer_moves_default_issuance(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """Writing config/issuers makes the new root the default: ca/pem and default roles follow."""
    mount, _old, new = two_roots
    role(root_client, mount, "follows")

    written = root_client.write_data(f"{mount}/config/issuers", data={"default": "new"})["data"]
    data = issue(root_client, mount, "follows")

    assert written["default"] == new["issuer_id"]
    assert root_client.read(f"{mount}/config/issuers")["data"]["default"] == new["issuer_id"]
    assert cert(root_client.secrets.pki.read_ca_certificate(mount_point=mount)) == \
        cert(new["certificate"])
    cert(data["certificate"]).verify_directly_issued_by(cert(new["certificate"]))


def test_renamed_issuer_is_found_by_its_new_name(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """update_issuer renames an issuer; the new name resolves, its usage is unchanged."""
    mount, _old, new = two_roots

    updated = root_client.secrets.pki.update_issuer(
        new["issuer_id"], extra_params={"issuer_name": "next-root"}, mount_point=mount)["data"]

    assert updated["issuer_name"] == "next-root"
    assert updated["usage"] == ALL_USAGES
    read = root_client.secrets.pki.read_issuer("next-root", mount_point=mount)["data"]
    assert read["issuer_id"] == new["issuer_id"]


def test_a_revoked_issuer_signs_nothing_more(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """revoke_issuer drops its issuing usage; issuing from it then fails."""
    mount, old, _new = two_roots
    role(root_client, mount, "web")

    revoked = root_client.secrets.pki.revoke_issuer("old", mount_point=mount)["data"]

    assert revoked["revoked"] is True
    assert "issuing-certificates" not in revoked["usage"].split(",")
    assert revoked["revocation_time"] > 0
    with pytest.raises(hvac.exceptions.InternalServerError):
        root_client.write_data(f"{mount}/issuer/old/issue/web",
                               data={"common_name": "app.example.test"})
    assert old["issuer_id"] in root_client.secrets.pki.list_issuers(mount_point=mount)[
        "data"]["keys"]


def test_deleting_the_default_issuer_leaves_no_default(
    root_client: hvac.Client, two_roots: tuple[str, dict[str, Any], dict[str, Any]],
) -> None:
    """Deleting the default issuer removes it and the default; the other issuer stays."""
    mount, old, new = two_roots

    root_client.secrets.pki.delete_issuer("old", mount_point=mount)

    listed = root_client.secrets.pki.list_issuers(mount_point=mount)["data"]
    assert listed["keys"] == [new["issuer_id"]]
    assert root_client.read(f"{mount}/config/issuers")["data"]["default"] == ""
    with pytest.raises(hvac.exceptions.InternalServerError):
        root_client.secrets.pki.read_issuer(old["issuer_id"], mount_point=mount)


# intermediates -------------------------------------------------------------------------------


def test_intermediate_csr_keeps_its_key_in_the_mount(root_client: hvac.Client,
                                                     pki: Mount) -> None:
    """intermediate/generate/internal answers a CSR and a key_id, never the key."""
    mount = pki()

    data = root_client.secrets.pki.generate_intermediate(
        "internal", "keyward intermediate", extra_params={"key_type": "ec"},
        mount_point=mount)["data"]

    csr = x509.load_pem_x509_csr(data["csr"].encode())
    assert csr.is_signature_valid
    assert csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "keyward intermediate"
    assert data["key_id"]
    assert "private_key" not in data


def test_exported_intermediate_returns_the_csrs_key(root_client: hvac.Client,
                                                    pki: Mount) -> None:
    """intermediate/generate/exported also answers the private key of the CSR."""
    mount = pki()

    data = root_client.secrets.pki.generate_intermediate(
        "exported", "exported intermediate", extra_params={"key_type": "ec"},
        mount_point=mount)["data"]

    key = serialization.load_pem_private_key(data["private_key"].encode(), None)
    assert key.public_key() == x509.load_pem_x509_csr(data["csr"].encode()).public_key()
    assert data["private_key_type"] == "ec"


def test_signed_intermediate_is_a_ca_chaining_to_the_root(root_client: hvac.Client,
                                                          pki: Mount) -> None:
    """root/sign-intermediate answers a CA certificate signed by the root, with its chain."""
    parent, child = pki(), pki()
    top = root(root_client, parent, "top")

    signed = intermediate(root_client, parent, child, with_root=False)

    certificate = cert(signed["certificate"])
    certificate.verify_directly_issued_by(cert(top["certificate"]))
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert common_name(certificate) == "keyward intermediate"
    assert cert(signed["issuing_ca"]) == cert(top["certificate"])
    assert [cert(item) for item in signed["ca_chain"]] == [certificate, cert(top["certificate"])]
    assert signed["serial_number"] in root_client.secrets.pki.list_certificates(
        mount_point=parent)["data"]["keys"]


def test_set_signed_with_its_root_gives_the_full_chain(root_client: hvac.Client,
                                                       pki: Mount) -> None:
    """Setting intermediate + root imports both; the intermediate (with key) is the default."""
    parent, child = pki(), pki()
    top = root(root_client, parent, "top")
    signed = intermediate(root_client, parent, child, with_root=True)
    role(root_client, child, "leaf")

    listed = root_client.secrets.pki.list_issuers(mount_point=child)["data"]
    defaults = [key for key, info in listed["key_info"].items() if info["is_default"]]
    data = issue(root_client, child, "leaf")
    chain = root_client.secrets.pki.read_ca_certificate_chain(mount_point=child)

    assert len(listed["keys"]) == 2
    assert [listed["key_info"][key]["serial_number"] for key in defaults] == \
        [signed["serial_number"]]
    assert cert(root_client.secrets.pki.read_ca_certificate(mount_point=child)) == \
        cert(signed["certificate"])
    assert [cert(block + "-----END CERTIFICATE-----")
            for block in chain.split("-----END CERTIFICATE-----")[:-1]] == \
        [cert(signed["certificate"]), cert(top["certificate"])]
    leaf = cert(data["certificate"])
    leaf.verify_directly_issued_by(cert(signed["certificate"]))
    assert [cert(item) for item in data["ca_chain"]] == \
        [cert(signed["certificate"]), cert(top["certificate"])]


def test_set_signed_answers_the_issuer_to_key_mapping(root_client: hvac.Client,
                                                      pki: Mount) -> None:
    """set-signed maps the new issuer to the key its CSR was made with; the root to none."""
    parent, child = pki(), pki()
    root(root_client, parent, "top")
    csr = root_client.secrets.pki.generate_intermediate(
        "internal", "mapped", extra_params={"key_type": "ec"}, mount_point=child)["data"]
    signed = root_client.secrets.pki.sign_intermediate(
        csr["csr"], "mapped", mount_point=parent)["data"]

    answer = root_client.secrets.pki.set_signed_intermediate(
        signed["certificate"] + "\n" + signed["issuing_ca"], mount_point=child)["data"]

    assert len(answer["imported_issuers"]) == 2
    assert sorted(answer["mapping"].values()) == ["", csr["key_id"]]


def test_set_signed_without_its_root_gives_a_short_chain(root_client: hvac.Client,
                                                         pki: Mount) -> None:
    """Setting only the intermediate: one issuer, and its chain is itself alone."""
    parent, child = pki(), pki()
    root(root_client, parent, "top")
    signed = intermediate(root_client, parent, child, with_root=False)

    listed = root_client.secrets.pki.list_issuers(mount_point=child)["data"]
    issuer = root_client.secrets.pki.read_issuer(listed["keys"][0], mount_point=child)["data"]

    assert len(listed["keys"]) == 1
    assert [cert(item) for item in issuer["ca_chain"]] == [cert(signed["certificate"])]


def test_a_new_intermediate_beside_the_old_one(root_client: hvac.Client, pki: Mount) -> None:
    """Rotating an intermediate: a second one set in the same mount, issued from by name."""
    parent, child = pki(), pki()
    root(root_client, parent, "top")
    first = intermediate(root_client, parent, child, with_root=False)
    second = intermediate(root_client, parent, child, with_root=False)
    listed = root_client.secrets.pki.list_issuers(mount_point=child)["data"]
    by_serial = {info["serial_number"]: key for key, info in listed["key_info"].items()}
    root_client.secrets.pki.update_issuer(by_serial[second["serial_number"]],
                                          extra_params={"issuer_name": "int-2"},
                                          mount_point=child)
    role(root_client, child, "leaf", issuer_ref="int-2")

    data = issue(root_client, child, "leaf")

    assert len(listed["keys"]) == 2
    assert listed["key_info"][by_serial[first["serial_number"]]]["is_default"] is True
    cert(data["certificate"]).verify_directly_issued_by(cert(second["certificate"]))


def test_signing_a_bad_csr_is_refused(root_client: hvac.Client, pki: Mount) -> None:
    """root/sign-intermediate with something that is no CSR is a 400 saying so."""
    mount = pki()
    root(root_client, mount, "top")

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.secrets.pki.sign_intermediate("not a csr", "x", mount_point=mount)

    assert refused.value.errors == ["csr contains no data"]


# reading certificates --------------------------------------------------------------------


def test_issued_certificates_are_listed_and_readable(root_client: hvac.Client,
                                                     pki: Mount) -> None:
    """LIST certs has the root and issued leaves; cert/<serial> reads one back."""
    mount = pki()
    top = root(root_client, mount, "top")
    role(root_client, mount, "web")
    leaf = issue(root_client, mount, "web")

    serials = root_client.secrets.pki.list_certificates(mount_point=mount)["data"]["keys"]
    read = root_client.secrets.pki.read_certificate(leaf["serial_number"], mount_point=mount)[
        "data"]

    assert {top["serial_number"], leaf["serial_number"]} <= set(serials)
    assert cert(read["certificate"]) == cert(leaf["certificate"])
    assert read["revocation_time"] == 0


def test_the_ca_chain_of_a_root_is_the_root(root_client: hvac.Client, pki: Mount) -> None:
    """ca_chain and cert/ca_chain of a root mount are the root alone."""
    mount = pki()
    top = root(root_client, mount, "top")

    bare = root_client.secrets.pki.read_ca_certificate_chain(mount_point=mount)
    json_chain = root_client.read(f"{mount}/cert/ca_chain")["data"]

    assert cert(bare) == cert(top["certificate"])
    assert cert(json_chain["ca_chain"]) == cert(top["certificate"])
    assert cert(json_chain["certificate"]) == cert(top["certificate"])


def test_reading_an_unknown_serial_is_404(root_client: hvac.Client, pki: Mount) -> None:
    """cert/<serial> for a serial the mount never issued: not found."""
    mount = pki()
    root(root_client, mount, "top")

    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.pki.read_certificate("01:02:03", mount_point=mount)


# configuration, revocation, CRLs ---------------------------------------------------------------


def test_config_urls_read_back_and_appear_in_issued_certificates(root_client: hvac.Client,
                                                                 pki: Mount) -> None:
    """config/urls round-trips, and issued leaves carry the AIA and CRL distribution URLs."""
    mount = pki()
    urls = {"issuing_certificates": ["http://127.0.0.1:8200/v1/pki/ca"],
            "crl_distribution_points": ["http://127.0.0.1:8200/v1/pki/crl"]}
    root_client.secrets.pki.set_urls(urls, mount_point=mount)
    root(root_client, mount, "top")
    role(root_client, mount, "web")

    read = root_client.secrets.pki.read_urls(mount_point=mount)["data"]
    leaf = cert(issue(root_client, mount, "web")["certificate"])

    assert read["issuing_certificates"] == urls["issuing_certificates"]
    assert read["crl_distribution_points"] == urls["crl_distribution_points"]
    assert read["ocsp_servers"] == []
    aia = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [item.access_location.value for item in aia] == urls["issuing_certificates"]
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [point.full_name[0].value for point in points] == urls["crl_distribution_points"]


def test_a_malformed_url_is_refused(root_client: hvac.Client, pki: Mount) -> None:
    """config/urls refuses something that is not a URL, naming the field."""
    mount = pki()

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.secrets.pki.set_urls({"ocsp_servers": ["not a url"]}, mount_point=mount)

    assert "ocsp_servers" in refused.value.errors[0]


def test_config_crl_reads_back_what_was_set(root_client: hvac.Client, pki: Mount) -> None:
    """config/crl keeps the expiry sent and Vault's defaults for the rest."""
    mount = pki()

    root_client.secrets.pki.set_crl_configuration(expiry="48h", mount_point=mount)
    read = root_client.secrets.pki.read_crl_configuration(mount_point=mount)["data"]

    assert read["expiry"] == "48h"
    assert read["disable"] is False
    assert read["auto_rebuild"] is False


def test_revoked_serial_is_on_the_crl(root_client: hvac.Client, pki: Mount) -> None:
    """revoke puts the serial on the issuer's CRL and cert/<serial> shows the revocation."""
    mount = pki()
    top = root(root_client, mount, "top")
    role(root_client, mount, "web")
    leaf = issue(root_client, mount, "web")

    revoked = root_client.secrets.pki.revoke_certificate(leaf["serial_number"],
                                                         mount_point=mount)["data"]
    crl = x509.load_pem_x509_crl(root_client.secrets.pki.read_crl(mount_point=mount).encode())
    read = root_client.secrets.pki.read_certificate(leaf["serial_number"], mount_point=mount)[
        "data"]

    assert revoked["state"] == "revoked"
    assert crl.get_revoked_certificate_by_serial_number(
        cert(leaf["certificate"]).serial_number) is not None
    assert crl.is_signature_valid(cert(top["certificate"]).public_key())
    assert read["revocation_time"] == revoked["revocation_time"]


def test_an_issuer_cannot_revoke_itself_as_a_leaf(root_client: hvac.Client,
                                                  pki: Mount) -> None:
    """revoke with an issuer's own serial is refused (use issuer/<ref>/revoke)."""
    mount = pki()
    top = root(root_client, mount, "top")

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.secrets.pki.revoke_certificate(top["serial_number"], mount_point=mount)

    assert "to its own CRL is not allowed" in refused.value.errors[0]


def test_sign_role_signs_the_callers_csr(root_client: hvac.Client, pki: Mount) -> None:
    """sign/<role> signs a CSR within the role's names; the key never reaches Vault."""
    mount = pki()
    top = root(root_client, mount, "top")
    role(root_client, mount, "web", key_type="any")
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.example.test")]))
           .sign(key, hashes.SHA256()))

    data = root_client.secrets.pki.sign_certificate(
        "web", csr.public_bytes(serialization.Encoding.PEM).decode(), "app.example.test",
        extra_params={"ttl": "1h"}, mount_point=mount)["data"]

    signed = cert(data["certificate"])
    signed.verify_directly_issued_by(cert(top["certificate"]))
    assert signed.public_key() == key.public_key()
    assert "private_key" not in data
