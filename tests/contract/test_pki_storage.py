"""The dev server's PKI storage: restarts, disabled mounts, and state files it wrote before.

These exercise the keyward dev server itself (its data directory), so they are
skipped against real Vault, except the in-process migration test, which never
needs one.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hvac
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyward_devstack.vaultdev.app import build_app
from keyward_devstack.vaultdev.config import DevVaultConfig
from tests.contract.support import DevVaultProcess


def test_issuers_default_and_chains_survive_a_restart(dev_vault: DevVaultProcess,
                                                      root_client: hvac.Client) -> None:
    """Two roots, a switched default and an intermediate's chain read back the same after a
    restart, and the mount still issues from the chosen issuer."""
    parent, child = (f"kw-pkirst-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for path in (parent, child):
        root_client.sys.enable_secrets_engine("pki", path=path)
    try:
        pki = root_client.secrets.pki
        pki.generate_root("internal", "old", extra_params={"key_type": "ec", "ttl": "720h",
                                                           "issuer_name": "old"},
                          mount_point=parent)
        pki.generate_root("internal", "new", extra_params={"key_type": "ec", "ttl": "720h",
                                                           "issuer_name": "new"},
                          mount_point=parent)
        root_client.write_data(f"{parent}/config/issuers", data={"default": "new"})
        csr = pki.generate_intermediate("internal", "int", extra_params={"key_type": "ec"},
                                        mount_point=child)["data"]["csr"]
        signed = pki.sign_intermediate(csr, "int", extra_params={"ttl": "240h"},
                                       mount_point=parent)["data"]
        pki.set_signed_intermediate(signed["certificate"] + "\n" + signed["issuing_ca"],
                                    mount_point=child)
        before = {path: pki.list_issuers(mount_point=path)["data"] for path in (parent, child)}
        chain_before = pki.read_ca_certificate_chain(mount_point=child)

        dev_vault.stop()
        dev_vault.start()

        after = {path: pki.list_issuers(mount_point=path)["data"] for path in (parent, child)}
        assert after == before
        assert pki.read_ca_certificate_chain(mount_point=child) == chain_before
        pki.create_or_update_role("web", extra_params={"allow_any_name": True, "key_type": "ec"},
                                  mount_point=parent)
        leaf = pki.generate_certificate("web", "app.example.test", extra_params={"ttl": "1h"},
                                        mount_point=parent)["data"]
        assert leaf["issuing_ca"] == signed["issuing_ca"]
    finally:
        for path in (parent, child):
            root_client.sys.disable_secrets_engine(path)


def test_disabling_a_pki_mount_deletes_its_certificates(dev_vault: DevVaultProcess,
                                                        root_client: hvac.Client) -> None:
    """Disabling a PKI mount removes its issued certificates from the data directory too."""
    path = f"kw-pkidel-{uuid.uuid4().hex[:8]}"
    root_client.sys.enable_secrets_engine("pki", path=path)
    root_client.secrets.pki.generate_root("internal", "short-lived",
                                          extra_params={"key_type": "ec"}, mount_point=path)
    before = set(dev_vault.data_dir.glob("pki-*.certs"))
    assert before

    root_client.sys.disable_secrets_engine(path)

    assert len(set(dev_vault.data_dir.glob("pki-*.certs"))) == len(before) - 1


def _legacy_state(now: datetime) -> tuple[dict[str, Any], str]:
    """A mount as the dev server stored it before multiple issuers: the key inside the issuer."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "legacy root")])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode().rstrip("\n")
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode().rstrip("\n")
    issuer_id, key_id = str(uuid.uuid4()), str(uuid.uuid4())
    state = {
        "default_issuer": issuer_id,
        "issuers": {issuer_id: {"issuer_id": issuer_id, "key_id": key_id, "name": "",
                                "certificate": pem, "private_key": key_pem}},
        "roles": {"web": {"allowed_domains": ["example.test"], "allow_subdomains": True,
                          "allow_bare_domains": False, "allow_any_name": False,
                          "allow_localhost": True, "allow_ip_sans": True,
                          "enforce_hostnames": True, "server_flag": True, "client_flag": True,
                          "key_type": "ec", "key_bits": 256, "ttl": 0, "max_ttl": 0}},
    }
    return state, pem


async def test_a_state_file_from_before_multiple_issuers_still_works(tmp_path: Path) -> None:
    """A mount saved by the single-issuer dev server keeps its CA, key and roles after upgrade."""
    config = DevVaultConfig(data_dir=tmp_path / "data", root_token="root")
    headers = {"X-Vault-Token": "root"}
    async with TestClient(TestServer(build_app(config))) as client:
        enabled = await client.post("/v1/sys/mounts/pki", json={"type": "pki"}, headers=headers)
        assert enabled.status == 204
        mounts = await (await client.get("/v1/sys/mounts", headers=headers)).json()
        mount_uuid = mounts["data"]["pki/"]["uuid"]
    state, pem = _legacy_state(datetime.now(UTC))
    (config.data_dir / f"pki-{mount_uuid}.json").write_text(json.dumps(state))

    async with TestClient(TestServer(build_app(config))) as client:
        ca_pem = await (await client.get("/v1/pki/ca/pem", headers=headers)).text()
        listed = await (await client.get("/v1/pki/issuers?list=true", headers=headers)).json()
        issued = await client.post("/v1/pki/issue/web", headers=headers,
                                   json={"common_name": "app.example.test", "ttl": "1h"})
        body = await issued.json()

    assert ca_pem == pem
    assert list(listed["data"]["keys"]) == list(state["issuers"])
    assert issued.status == 200
    leaf = x509.load_pem_x509_certificate(body["data"]["certificate"].encode())
    leaf.verify_directly_issued_by(x509.load_pem_x509_certificate(pem.encode()))
