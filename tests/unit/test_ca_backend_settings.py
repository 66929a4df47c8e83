"""``[certificate_authorities.<name>]`` from a TOML file: each backend's keys, and every
problem named as the full setting in one line (the loader's words, not pydantic's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyward.config import load_settings
from keyward.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keyward.toml"
    path.write_text(text)
    return path


VAULT_PKI = """
[certificate_authorities.pki]
backend = "vault-pki"
vault_pki_mount = "team/pki"
vault_pki_parent_mount = "root-pki"
state_dir = "{state}"
"""
KEY_VAULT = """
[certificate_authorities.kv]
backend = "azure-keyvault"
azure_vault_url = "https://ca.vault.azure.net"
azure_certificate_name = "keyward-ca"
azure_exportable = false
state_dir = "{state}"

[certificates.worker]
common_name = "worker"
issuer = "azure-keyvault"
azure_vault_url = "https://certs.vault.azure.net"
azure_certificate_name = "worker"
azure_mode = "key-vault-ca"
azure_ca = "kv"
directory = "{state}/worker"
"""


def test_a_vault_pki_ca_table_loads(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, VAULT_PKI.format(state=tmp_path)), env={})
    ca = settings.certificate_authorities["pki"]
    assert (ca.backend, ca.vault_pki_mount, ca.vault_pki_parent_mount, ca.state_directory) == (
        "vault-pki", "team/pki", "root-pki", tmp_path)
    assert ca.ca_cert is None


def test_a_key_vault_ca_and_a_leaf_it_signs_load(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, KEY_VAULT.format(state=tmp_path)), env={})
    assert settings.certificate_authorities["kv"].azure_certificate_name == "keyward-ca"
    issuer = settings.certificates["worker"].issuer
    assert (issuer.kind, issuer.azure_mode, issuer.azure_ca) == (  # type: ignore[union-attr]
        "azure-keyvault", "key-vault-ca", "kv")


@pytest.mark.parametrize(("text", "setting", "problem"), [
    (VAULT_PKI.replace('"team/pki"', '"../sys"'),
     "certificate_authorities.pki.vault_pki_mount", "must be a mount path"),
    (VAULT_PKI.replace('"root-pki"', '"root pki"'),
     "certificate_authorities.pki.vault_pki_parent_mount", "must be a mount path"),
    (VAULT_PKI.replace('"root-pki"', '"team/pki"'),
     "certificate_authorities.pki.vault_pki_parent_mount", "must be another mount"),
    (VAULT_PKI.replace('state_dir = "{state}"', ""),
     "certificate_authorities.pki.state_dir", "required with backend = 'vault-pki'"),
    (VAULT_PKI + 'ca_key = "/x"\n',
     "certificate_authorities.pki.ca_key", "does not apply with backend = 'vault-pki'"),
    ('[certificate_authorities.local]\nca_cert = "/x"\n',
     "certificate_authorities.local.ca_key", "required with backend = 'local'"),
    ('[certificate_authorities.x]\nbackend = "hsm"\n',
     "certificate_authorities.x.backend", "hsm"),
    (KEY_VAULT.replace('"https://ca.vault.azure.net"', '"https://ca.vault.azure.net/?x=1"'),
     "certificate_authorities.kv.azure_vault_url", "nothing after it"),
    (KEY_VAULT.replace('"keyward-ca"', '"keyward_ca"'),
     "certificate_authorities.kv.azure_certificate_name", "letters, digits and dashes"),
    (KEY_VAULT.replace('azure_ca = "kv"', 'azure_ca = "pki"'),
     "certificates.worker.azure_ca", "names no [certificate_authorities.pki]"),
    (KEY_VAULT.replace('azure_ca = "kv"\n', ""),
     "certificates.worker.azure_ca", "required with azure_mode = 'key-vault-ca'"),
    (KEY_VAULT.replace('azure_mode = "key-vault-ca"', 'azure_mode = "self"'),
     "certificates.worker.azure_ca", "only with azure_mode = 'key-vault-ca'"),
])
def test_each_problem_names_the_setting(tmp_path: Path, text: str, setting: str,
                                        problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text.format(state=tmp_path)), env={})
    assert caught.value.setting == setting
    assert problem in caught.value.problem
