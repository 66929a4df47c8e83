"""Settings: one typed object from TOML + environment, with errors that name the setting."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keyward.config import (
    AzureKeyVaultInstall,
    AzureKeyVaultIssuerSettings,
    CertificateSettings,
    CertManagerIssuerSettings,
    CodecServerSettings,
    CodecSettings,
    FilesInstall,
    KubernetesSecretInstall,
    LocalCaIssuerSettings,
    Settings,
    TemporalSettings,
    VaultPkiIssuerSettings,
    VaultSettings,
    _Sources,
    load_settings,
)
from keyward.errors import ConfigError
from keyward.secrets import Secret

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "hvs.supersecretvalue1234567890"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keyward.toml"
    path.write_text(text)
    return path


def certificate_table(**values: str) -> str:
    lines = {"common_name": "w", "ca_cert": "ca.pem", "ca_key": "ca.key",
             "directory": "certs/w"} | values
    return "[certificates.w]\n" + "".join(f'{k} = "{v}"\n' for k, v in lines.items() if v)


def test_defaults_without_file_or_env() -> None:
    """With nothing configured, settings are the documented defaults."""
    settings = load_settings(env={})
    assert settings.vault.address == "http://127.0.0.1:8200"
    assert settings.codec.mode == "envelope"
    assert settings.temporal.task_queue == "keyward"
    assert settings.source == "defaults"
    assert settings == Settings()


def test_file_values_are_typed(tmp_path: Path) -> None:
    """TOML values land in typed fields."""
    path = write(tmp_path, """
[vault]
address = "https://vault.example:8200"
timeout_seconds = 3
transit_mount = "team/transit"
[codec]
mode = "direct"
compression = false
keys = { "payments" = "payments-key" }
""")
    settings = load_settings(path, env={})
    assert settings.vault.address == "https://vault.example:8200"
    assert settings.vault.timeout_seconds == 3.0
    assert settings.vault.transit_mount == "team/transit"
    assert settings.codec.mode == "direct"
    assert settings.codec.compression is False
    assert settings.codec.key_for("payments") == "payments-key"
    assert settings.codec.key_for("other") == "other"


def test_environment_overrides_file(tmp_path: Path) -> None:
    """VAULT_* and KEYWARD_<SECTION>__<SETTING> variables win over the file."""
    path = write(tmp_path, '[vault]\naddress = "https://file:8200"\n[codec]\nmode = "direct"\n')
    env = {"VAULT_ADDR": "https://env:8200", "VAULT_TOKEN": "hvs.fromenvironment0000000000",
           "KEYWARD_CODEC__MODE": "envelope", "KEYWARD_CODEC__KEYS": "a=k1, b=k2",
           "KEYWARD_DEVSTACK__TRANSIT_KEYS": "default,payments"}
    settings = load_settings(path, env=env)
    assert settings.vault.address == "https://env:8200"
    assert settings.vault.token == Secret("hvs.fromenvironment0000000000")
    assert settings.codec.mode == "envelope"
    assert settings.codec.keys == {"a": "k1", "b": "k2"}
    assert settings.devstack.transit_keys == ("default", "payments")


def test_keyward_variables_win_over_vault_variables(tmp_path: Path) -> None:
    """Precedence, highest first: KEYWARD_VAULT__*, then VAULT_*, then the file, then defaults."""
    path = write(tmp_path, '[vault]\naddress = "https://file:8200"\nnamespace = "file-ns"\n'
                           "timeout_seconds = 4\n")
    settings = load_settings(path, env={"VAULT_ADDR": "https://vault-addr:8200",
                                        "KEYWARD_VAULT__ADDRESS": "https://keyward:8200",
                                        "VAULT_NAMESPACE": "env-ns"})
    assert settings.vault.address == "https://keyward:8200"
    assert settings.vault.namespace == "env-ns"
    assert settings.vault.timeout_seconds == 4.0
    assert settings.vault.transit_mount == "transit"


def test_each_vault_variable_sets_its_setting(tmp_path: Path) -> None:
    """VAULT_ADDR, VAULT_TOKEN, VAULT_CACERT and VAULT_NAMESPACE, as the vault CLI reads them."""
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here, only that it exists")
    settings = load_settings(env={"VAULT_ADDR": "https://v:8200", "VAULT_TOKEN": TOKEN,
                                  "VAULT_CACERT": str(ca), "VAULT_NAMESPACE": "team"})
    assert settings.vault == VaultSettings(address="https://v:8200", token=Secret(TOKEN),
                                           ca_cert=ca, namespace="team")
    assert settings.source == "defaults + $VAULT_ADDR + $VAULT_TOKEN + $VAULT_CACERT" \
                              " + $VAULT_NAMESPACE"


def test_empty_vault_variables_are_not_set() -> None:
    """An exported but empty VAULT_ADDR is the shell's leftover, not an address."""
    settings = load_settings(env={"VAULT_ADDR": "", "VAULT_TOKEN": ""})
    assert settings.vault.address == "http://127.0.0.1:8200"
    assert settings.vault.token is None
    assert settings.source == "defaults"


@pytest.mark.parametrize(("var", "value", "section", "setting", "expected"), [
    ("KEYWARD_TEMPORAL__TASK_QUEUE", "q", "temporal", "task_queue", "q"),
    ("KEYWARD_VAULT__TIMEOUT_SECONDS", "2.5", "vault", "timeout_seconds", 2.5),
    ("KEYWARD_CODEC__DATAKEY_MAX_USES", "1000", "codec", "datakey_max_uses", 1000),
    ("KEYWARD_CODEC_SERVER__PORT", "9000", "codec_server", "port", 9000),
    ("KEYWARD_ROTATION__KEYS", "default=4e7", "rotation", "keys", {"default": 4e7}),
    ("KEYWARD_DEVSTACK__STATE_DIR", "/srv/state", "devstack", "state_dir", Path("/srv/state")),
    ("KEYWARD_METRICS__PORT", "9464", "metrics", "port", 9464),
    ("KEYWARD_LOGGING__FORMAT", "json", "logging", "format", "json"),
    ("KEYWARD_logging__LEVEL", "debug", "logging", "level", "DEBUG"),
])
def test_keyward_variables_reach_every_section(var: str, value: str, section: str,
                                               setting: str, expected: object) -> None:
    """KEYWARD_<SECTION>__<SETTING> sets that section's setting, typed; the section and
    setting part may be in any case."""
    settings = load_settings(env={var: value})
    assert getattr(getattr(settings, section), setting) == expected
    assert settings.source == f"defaults + ${var}"


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("TRUE", True), ("yes", True), ("on", True), ("1", True),
    ("false", False), ("no", False), ("Off", False), ("0", False)])
def test_booleans_from_the_environment(value: str, expected: bool) -> None:
    """true/false, yes/no, on/off and 1/0 (any case) are the words for a boolean."""
    assert load_settings(env={"KEYWARD_CODEC__COMPRESSION": value}).codec.compression is expected


@pytest.mark.parametrize("value", ["maybe", "t", "2", ""])
def test_other_words_are_not_booleans(value: str) -> None:
    """Anything else is refused, naming the setting."""
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"KEYWARD_CODEC__COMPRESSION": value})
    assert str(caught.value) == f"invalid setting codec.compression: must be true or false " \
                                f"(got {value!r})"


def test_lists_and_tables_from_the_environment() -> None:
    """Lists are comma-separated (blanks dropped), tables are ns=key pairs; tuples of keys in
    a table take one key per namespace."""
    settings = load_settings(env={
        "KEYWARD_CODEC_SERVER__JWT_AUDIENCE": "a, b,,",
        "KEYWARD_CODEC__PREVIOUS_KEYS": "legacy=old, other=older",
        "KEYWARD_ROTATION__NAMESPACES": "payments=",
    })
    assert settings.codec_server.jwt_audience == ("a", "b")
    assert settings.codec.previous_keys == {"legacy": ("old",), "other": ("older",)}
    assert settings.rotation.namespaces == {"payments": ()}
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"KEYWARD_CODEC__KEYS": "a=k1,b"})
    assert str(caught.value) == "invalid setting codec.keys: must look like " \
                                "'namespace=key,...' (got 'b')"


def test_an_empty_variable_unsets_an_optional_setting(tmp_path: Path) -> None:
    """KEYWARD_<SECTION>__<SETTING>= (empty) clears an optional setting the file set."""
    path = write(tmp_path, '[vault]\nnamespace = "team"\n')
    assert load_settings(path, env={"KEYWARD_VAULT__NAMESPACE": ""}).vault.namespace is None


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    """$KEYWARD_CONFIG names the file when --config is not given."""
    path = write(tmp_path, '[logging]\nlevel = "debug"\n')
    assert load_settings(env={"KEYWARD_CONFIG": str(path)}).logging.level == "DEBUG"


def test_config_argument_wins_over_the_variable(tmp_path: Path) -> None:
    """--config (the path argument) is read, not $KEYWARD_CONFIG."""
    chosen = tmp_path / "chosen.toml"
    chosen.write_text('[logging]\nlevel = "error"\n')
    other = write(tmp_path, '[logging]\nlevel = "debug"\n')
    settings = load_settings(chosen, env={"KEYWARD_CONFIG": str(other)})
    assert settings.logging.level == "ERROR"
    assert settings.source == str(chosen)


def test_keyward_toml_in_the_working_directory(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config or $KEYWARD_CONFIG, ./keyward.toml is read if it is there."""
    monkeypatch.chdir(tmp_path)
    assert load_settings(env={}).source == "defaults"
    write(tmp_path, '[temporal]\ntask_queue = "from-cwd"\n')
    settings = load_settings(env={})
    assert settings.temporal.task_queue == "from-cwd"
    assert settings.source == "keyward.toml"


@pytest.mark.parametrize(
    ("text", "env", "setting"),
    [
        ('[vault]\naddress = "vault.example"\n', {}, "vault.address"),
        ('[vault]\ntimeout_seconds = -1\n', {}, "vault.timeout_seconds"),
        ('[vault]\ntimeout_seconds = "soon"\n', {}, "vault.timeout_seconds"),
        ('[vault]\nauth_method = "ldap"\n', {}, "vault.auth_method"),
        ('[vault]\nadress = "http://x"\n', {}, "vault.adress"),
        ('[vault]\ntransit_mount = "/transit/"\n', {}, "vault.transit_mount"),
        ('[codec]\ncompression = "maybe"\n', {}, "codec.compression"),
        ('[codec]\ndatakey_max_uses = 8589934592\n', {}, "codec.datakey_max_uses"),
        ('[devstack]\ntemporal_port = 70000\n', {}, "devstack.temporal_port"),
        ('[nonsense]\nx = 1\n', {}, "nonsense"),
        ("", {"KEYWARD_CODEC__MODE": "fast"}, "codec.mode"),
        ("", {"KEYWARD_BOGUS__X": "1"}, "KEYWARD_BOGUS__X"),
        ("", {"VAULT_ADDR": "not a url"}, "vault.address"),
    ],
)
def test_bad_values_name_the_setting(tmp_path: Path, text: str, env: dict[str, str],
                                     setting: str) -> None:
    """Every bad value raises ConfigError whose message starts with the setting's name."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env=env)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(f"invalid setting {setting}:")


@pytest.mark.parametrize(("text", "env", "message"), [
    ('[vault]\ntimeout_seconds = "soon"\n', {},
     "vault.timeout_seconds: must be a number (got 'soon')"),
    ("", {"KEYWARD_VAULT__TIMEOUT_SECONDS": "soon"},
     "vault.timeout_seconds: must be a number (got 'soon')"),
    ('[vault]\ntimeout_seconds = true\n', {}, "vault.timeout_seconds: must be a number (got True)"),
    ('[vault]\ntimeout_seconds = 0\n', {}, "vault.timeout_seconds: must be greater than 0 (got 0)"),
    ('[vault]\nauth_method = "ldap"\n', {},
     "vault.auth_method: must be one of 'token', 'approle', 'kubernetes' (got 'ldap')"),
    ('[logging]\nlevel = "verbose"\n', {},
     "logging.level: must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR' (got 'verbose')"),
    ('[devstack]\ntemporal_port = 70000\n', {},
     "devstack.temporal_port: must be a TCP port between 1 and 65535 (got 70000)"),
    ('[codec]\ndatakey_max_uses = 8589934592\n', {},
     "codec.datakey_max_uses: must not exceed 2^32 (NIST SP 800-38D bound for one AES-GCM key)"),
    ('[temporal]\ntls_cert = "c.pem"\n', {}, "temporal.tls_key: tls_cert and tls_key go together"),
    ('[vault]\nca_cert = 5\n', {}, "vault.ca_cert: must be a file path (got 5)"),
    ('[codec]\nkeys = { "ns" = "" }\n', {}, "codec.keys.ns: must name a Transit key"),
    ('[rotation]\nkeys = { "default" = -5 }\n', {},
     "rotation.keys.default: expected encryptions per day must be greater than 0"),
    ('[rotation]\nvault_backstop = "on"\n', {},
     "rotation.vault_backstop: must be one of 'reconcile', 'keep-existing', 'off' (got 'on')"),
    ('[rotation]\nvault_backstop_factor = 1.5\n', {},
     "rotation.vault_backstop_factor: must be a finite number greater than 1.5: keyward's own "
     "schedule lets a version reach 1.5 intervals (got 1.5)"),
    ('', {"KEYWARD_ROTATION__VAULT_BACKSTOP_FACTOR": "inf"},
     "rotation.vault_backstop_factor: must be a finite number greater than 1.5: keyward's own "
     "schedule lets a version reach 1.5 intervals (got inf)"),
    ('vault = 3\n', {}, "vault: must be a [vault] table in {path}"),
    ('[certificates]\nw = 3\n', {}, "certificates.w: must be a table (got 3)"),
])
def test_error_texts(tmp_path: Path, text: str, env: dict[str, str], message: str) -> None:
    """The one-line texts operators see (README, runbooks): setting, problem, the value."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env=env)
    assert str(caught.value) == "invalid setting " + message.format(path=path)


def test_the_vault_backstop_reconciles_at_twice_the_interval_unless_told_otherwise(
        tmp_path: Path) -> None:
    """By default schedules apply reconciles the backstop at factor 2; the file and the
    environment choose another mode or factor."""
    default = load_settings(write(tmp_path, ""), env={})
    assert (default.rotation.vault_backstop, default.rotation.vault_backstop_factor) == \
        ("reconcile", 2.0)
    chosen = load_settings(write(tmp_path, '[rotation]\nvault_backstop = "keep-existing"\n'),
                           env={"KEYWARD_ROTATION__VAULT_BACKSTOP_FACTOR": "3"})
    assert (chosen.rotation.vault_backstop, chosen.rotation.vault_backstop_factor) == \
        ("keep-existing", 3.0)
    off = load_settings(write(tmp_path, ""), env={"KEYWARD_ROTATION__VAULT_BACKSTOP": "off"})
    assert off.rotation.vault_backstop == "off"


def test_a_bad_variable_stops_the_worker_with_one_line_and_exit_2(tmp_path: Path) -> None:
    """The real entry script: `keyward: invalid setting …` on stderr, nothing else, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "VAULT_"))}
    env["KEYWARD_VAULT__TIMEOUT_SECONDS"] = "soon"
    result = subprocess.run([sys.executable, str(ROOT / "worker.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.stderr.splitlines() == [
        "keyward: invalid setting vault.timeout_seconds: must be a number (got 'soon')"]
    assert result.returncode == 2
    assert result.stdout == ""


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML gives a ConfigError naming the file and the position."""
    path = write(tmp_path, "[vault\naddress = \n")
    with pytest.raises(ConfigError, match=r"keyward\.toml is not valid TOML.*line 1"):
        load_settings(path, env={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A --config path that does not exist is reported, not silently replaced by defaults."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})
    with pytest.raises(ConfigError, match="not a regular file"):
        load_settings(tmp_path, env={})


@pytest.mark.parametrize(("text", "env", "setting", "known"), [
    ('[vault]\nca_crt = "ca.pem"\n', {}, "vault.ca_crt", "known in [vault]: address, "),
    ("", {"KEYWARD_VAULT__CA_CRT": "ca.pem"}, "vault.ca_crt", "known in [vault]: address, "),
    ("", {"KEYWARD_CODEC__KEYS__ORDERS": "k"}, "codec.keys__orders",
     "known in [codec]: mode, compression, keys, "),
    ("", {"KEYWARD_CERTIFICATES__W__COMMON_NAME": "w"}, "KEYWARD_CERTIFICATES__W__COMMON_NAME",
     "unknown section 'certificates'; known: temporal, vault, "),
    ('[valt]\naddress = "https://v"\n', {}, "valt", "unknown section in "),
    (certificate_table(trust_anchr="pin.pem"), {}, "certificates.w.trust_anchr",
     "known in [certificates.w]: common_name, "),
])
def test_unknown_settings_are_refused_in_every_source(
        tmp_path: Path, text: str, env: dict[str, str], setting: str, known: str) -> None:
    """A misspelt section, setting or certificate key is an error that says what exists,
    never a silent fallback to a default (here: the pin that would not be checked)."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), env=env)
    assert caught.value.setting == setting
    assert known in caught.value.problem


def test_secrets_are_masked_in_repr_and_errors(tmp_path: Path) -> None:
    """A token never appears in repr() of the settings or in a validation error."""
    settings = load_settings(env={"VAULT_TOKEN": TOKEN})
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.vault)
    assert isinstance(settings.vault.token, Secret)
    assert settings.vault.token.reveal() == TOKEN
    path = write(tmp_path, '[vault]\napprole_secret_id = 12345\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert "12345" not in str(caught.value)


@pytest.mark.parametrize(("values", "secret"), [
    ({"token": 1234567890123}, "1234567890123"),
    ({"approle_secret_id": [TOKEN]}, TOKEN),
    ({"token_": TOKEN}, TOKEN),
    ({"token": TOKEN, "address": "not a url"}, TOKEN)])
def test_no_secret_in_any_error(values: dict[str, Any], secret: str) -> None:
    """Whatever is wrong around a secret, its value is in neither the message nor the
    exception chain (pydantic's own error, which quotes inputs, is not attached)."""
    with pytest.raises(ConfigError) as caught:
        Settings(vault=values)  # type: ignore[arg-type]
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_ca_cert_must_exist(tmp_path: Path) -> None:
    """VAULT_CACERT pointing at a missing file fails at load, not at the first TLS handshake."""
    with pytest.raises(ConfigError, match=r"vault\.ca_cert"):
        load_settings(env={"VAULT_CACERT": str(tmp_path / "missing.pem")})


def test_constructing_settings_does_no_file_io(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings built in code may name files that do not exist (yet): no constructor looks.
    Loading the same paths from a file refuses each missing one, naming it."""
    missing = tmp_path / "missing.pem"

    def no_disk(*_: object, **__: object) -> bool:
        raise AssertionError("a settings constructor touched the disk")

    with monkeypatch.context() as patched:
        for name in ("is_file", "exists", "stat", "open", "read_bytes", "read_text"):
            patched.setattr(Path, name, no_disk)
        settings = Settings(
            vault=VaultSettings(ca_cert=missing),
            codec_server=CodecServerSettings(tls_cert=missing, tls_key=missing,
                                             tls_client_ca=missing, jwt_public_key=missing),
            certificates={"w": CertificateSettings(
                common_name="w", issuer=LocalCaIssuerSettings(ca_cert=missing, ca_key=missing),
                install=FilesInstall(directory=tmp_path), trust_anchor=missing)})
        dataclasses.replace(settings, temporal=TemporalSettings(tls_cert=missing,
                                                                tls_key=missing))
    for text, setting in [
            (f'[vault]\nca_cert = "{missing}"\n', "vault.ca_cert"),
            (f'[codec_server]\ntls_cert = "{missing}"\ntls_key = "{missing}"\n',
             "codec_server.tls_cert"),
            (f'[codec_server]\njwt_public_key = "{missing}"\n', "codec_server.jwt_public_key"),
            (certificate_table(trust_anchor=str(missing)), "certificates.w.trust_anchor")]:
        with pytest.raises(ConfigError) as caught:
            load_settings(write(tmp_path, text), env={})
        assert (caught.value.setting, caught.value.problem) == (setting,
                                                                f"file not found: {missing}")


def test_constructors_and_replace_validate() -> None:
    """Settings built in code are held to the same rules, and say so as ConfigError."""
    with pytest.raises(ConfigError, match=r"codec\.keys\.ns"):
        CodecSettings(keys={"ns": ""})
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(VaultSettings(), address="http://vault.example:8200")
    assert caught.value.setting == "vault.address"
    with pytest.raises(ConfigError) as caught:
        dataclasses.replace(Settings(), certificates={"w": {"common_name": ""}})  # type: ignore[dict-item]
    assert caught.value.setting == "certificates.w.common_name"


def test_codec_rejects_empty_key_names() -> None:
    """A namespace mapped to an empty key name is refused."""
    with pytest.raises(ConfigError, match=r"codec\.keys\.ns"):
        CodecSettings(keys={"ns": ""})


def test_mapping_values_are_typed(tmp_path: Path) -> None:
    """Table values are checked per entry and named by their full path."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[codec]\nkeys = { "ns" = 1 }\n'), env={})
    assert caught.value.setting == "codec.keys.ns"
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[rotation]\nkeys = { "default" = -5 }\n'), env={})
    assert caught.value.setting == "rotation.keys.default"
    rates = load_settings(write(tmp_path, '[rotation]\nkeys = { "default" = 4e7 }\n'), env={})
    assert rates.rotation.keys == {"default": 40_000_000.0}


def test_certificate_tables(tmp_path: Path) -> None:
    """[certificates.<name>] tables become typed settings; missing issuer fields are named."""
    path = write(tmp_path, """
[certificates.worker]
common_name = "keyward-worker"
ca_cert = "ca.pem"
ca_key = "ca.key"
directory = "certs/worker"
lifetime_hours = 24
""")
    worker = load_settings(path, env={}).certificates["worker"]
    assert worker.common_name == "keyward-worker"
    # issuer = "local-ca" and install = "files" are the defaults, read as typed variants.
    assert worker.issuer == LocalCaIssuerSettings(ca_cert=Path("ca.pem"), ca_key=Path("ca.key"))
    assert worker.install == FilesInstall(directory=Path("certs/worker"))
    assert worker.lifetime_hours == 24.0
    bad = write(tmp_path, '[certificates.x]\ncommon_name = "x"\nissuer = "vault-pki"\n'
                          'directory = "d"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(bad, env={})
    assert caught.value.setting == "certificates.x.vault_pki_role"
    nameless = write(tmp_path, '[certificates.y]\ndirectory = "d"\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(nameless, env={})
    assert caught.value.setting == "certificates.y.common_name"


@pytest.mark.parametrize(("table", "issuer", "install"), [
    ({"issuer": "vault-pki", "vault_pki_role": "r", "vault_pki_mount": "team/pki",
      "ca_cert": "", "ca_key": ""},
     VaultPkiIssuerSettings(vault_pki_role="r", vault_pki_mount="team/pki"),
     FilesInstall(directory=Path("certs/w"))),
    ({"issuer": "cert-manager", "kubernetes_namespace": "ns", "cert_manager_issuer": "ca",
      "cert_manager_issuer_kind": "ClusterIssuer", "ca_cert": "", "ca_key": "", "directory": "",
      "install": "kubernetes-secret", "kubernetes_secret": "w-tls"},
     CertManagerIssuerSettings(kubernetes_namespace="ns", cert_manager_issuer="ca",
                               cert_manager_issuer_kind="ClusterIssuer"),
     KubernetesSecretInstall(kubernetes_namespace="ns", kubernetes_secret="w-tls")),
    ({"issuer": "azure-keyvault", "azure_vault_url": "https://kv", "azure_certificate_name": "w",
      "azure_mode": "external-ca", "install": "azure-keyvault", "directory": ""},
     AzureKeyVaultIssuerSettings(azure_vault_url="https://kv", azure_certificate_name="w",
                                 azure_mode="external-ca", ca_cert=Path("ca.pem"),
                                 ca_key=Path("ca.key")),
     AzureKeyVaultInstall(azure_vault_url="https://kv", azure_certificate_name="w")),
])
def test_flat_certificate_keys_become_the_typed_variants(
        tmp_path: Path, table: dict[str, str], issuer: object, install: object) -> None:
    """The keys operators write (issuer = …, install = …, and each one's settings, flat in
    the table) are sorted into the issuer and install they belong to; a key both use
    (kubernetes_namespace, azure_vault_url) serves both."""
    cert = load_settings(write(tmp_path, certificate_table(**table)), env={}).certificates["w"]
    assert (cert.issuer, cert.install) == (issuer, install)


@pytest.mark.parametrize(("values", "setting", "problem"), [
    ({"issuer": "vault-pki"}, "vault_pki_role", "required when issuer = 'vault-pki'"),
    ({"issuer": "cert-manager", "kubernetes_namespace": "ns"}, "cert_manager_issuer",
     "required when issuer = 'cert-manager'"),
    ({"issuer": "local-ca", "ca_cert": "ca.pem"}, "ca_key", "required when issuer = 'local-ca'"),
    ({"issuer": "local-ca", "ca_cert": "ca.pem", "ca_key": "ca.key", "install": "files"},
     "directory", "required when install = 'files'"),
    ({"issuer": "vault-pki", "vault_pki_role": "r", "install": "kubernetes-secret",
      "kubernetes_namespace": "ns"}, "kubernetes_secret",
     "required when install = 'kubernetes-secret'"),
    ({"issuer": "azure-keyvault", "azure_vault_url": "https://kv", "azure_certificate_name": "w",
      "azure_mode": "external-ca", "directory": "d"}, "ca_cert",
     "required with azure_mode = 'external-ca' (the signing CA)"),
    ({"issuer": "azure-keyvault", "azure_vault_url": "https://kv", "azure_certificate_name": "w",
      "ca_cert": "ca.pem", "directory": "d"}, "ca_cert",
     "only with azure_mode = 'external-ca' (Key Vault signs in 'self' mode)"),
    ({"issuer": "local-ca", "ca_cert": "ca.pem", "ca_key": "ca.key", "directory": "d",
      "vault_pki_role": "r"}, "vault_pki_role",
     "does not apply with issuer = 'local-ca' and install = 'files'"),
    ({"issuer": "local-ca", "ca_cert": "ca.pem", "ca_key": "ca.key", "directory": "d",
      "kubernetes_secret": "s"}, "kubernetes_secret",
     "does not apply with issuer = 'local-ca' and install = 'files'"),
    ({"issuer": "acme", "directory": "d"}, "issuer",
     "must be one of 'local-ca', 'vault-pki', 'azure-keyvault', 'cert-manager' (got 'acme')"),
    ({"issuer": "local-ca", "ca_cert": "ca.pem", "ca_key": "ca.key", "install": "s3"},
     "install", "must be one of 'files', 'kubernetes-secret', 'azure-keyvault' (got 's3')"),
    ({"issuer": VaultPkiIssuerSettings(vault_pki_role="r"), "vault_pki_mount": "other",
      "directory": "d"}, "vault_pki_mount",
     "issuer is given as a whole; set vault_pki_mount in it"),
])
def test_impossible_issuer_and_install_combinations_cannot_be_constructed(
        values: dict[str, Any], setting: str, problem: str) -> None:
    """An issuer or install target missing what it needs, or given what belongs to another,
    is refused when the certificate is constructed (in code as from a file), naming the key."""
    with pytest.raises(ConfigError) as caught:
        CertificateSettings(common_name="w", **values)
    assert (caught.value.setting, caught.value.problem) == (setting, problem)
    with pytest.raises(ConfigError) as caught:
        Settings(certificates={"w": {"common_name": "w", **values}})  # type: ignore[dict-item]
    assert (caught.value.setting, caught.value.problem) == (f"certificates.w.{setting}", problem)


def test_a_variant_on_its_own_needs_its_settings() -> None:
    """Each issuer and install class is itself complete: no optional left to re-check."""
    with pytest.raises(ConfigError) as caught:
        LocalCaIssuerSettings(ca_cert=Path("ca.pem"))  # type: ignore[call-arg]
    assert (caught.value.setting, caught.value.problem) == ("ca_key", "required")
    with pytest.raises(ConfigError) as caught:
        KubernetesSecretInstall(kubernetes_namespace="ns")  # type: ignore[call-arg]
    assert caught.value.setting == "kubernetes_secret"


def test_the_known_certificate_keys_are_the_classes_keys() -> None:
    """The list an unknown-key error prints holds every key a variant reads, and no other."""
    variants = (LocalCaIssuerSettings, VaultPkiIssuerSettings, AzureKeyVaultIssuerSettings,
                CertManagerIssuerSettings, FilesInstall, KubernetesSecretInstall,
                AzureKeyVaultInstall)
    keys = {field.name for cls in (CertificateSettings, *variants)
            for field in dataclasses.fields(cls)} - {"kind"}
    assert set(CertificateSettings.settings_names) == keys
    assert len(CertificateSettings.settings_names) == len(keys)


def test_every_section_has_a_source_table() -> None:
    """pydantic-settings reads one table per section (and the certificates) for Settings."""
    sections = {field.name for field in dataclasses.fields(Settings)} - {"source"}
    assert set(_Sources.model_fields) == sections


def test_temporal_tls_pair_goes_together(tmp_path: Path) -> None:
    """A client certificate without its key (or the reverse) is refused at load."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[temporal]\ntls_cert = "c.pem"\n'), env={})
    assert caught.value.setting == "temporal.tls_key"


def test_the_rest_of_the_subject_is_read_from_a_certificate_table(tmp_path: Path) -> None:
    """organization / organizational_unit: one name (commas and all) or a list; country
    two letters, in capitals; state and locality one name each."""
    path = write(tmp_path, certificate_table() + 'organization = "Acme, Inc."\n'
                 'organizational_unit = ["Ops", "Security"]\ncountry = "de"\n'
                 'state = "Berlin"\nlocality = "Berlin-Mitte"\n')
    cert = load_settings(path, env={}).certificates["w"]
    assert (cert.organization, cert.organizational_unit, cert.country, cert.state,
            cert.locality) == (("Acme, Inc.",), ("Ops", "Security"), "DE", "Berlin",
                               "Berlin-Mitte")
    bare = load_settings(write(tmp_path, certificate_table()), env={}).certificates["w"]
    assert (bare.organization, bare.organizational_unit, bare.country, bare.state,
            bare.locality) == ((), (), None, None, None)


AZURE = {"issuer": "azure-keyvault", "azure_vault_url": "https://kv.vault.azure.net",
         "azure_certificate_name": "w", "ca_cert": "", "ca_key": ""}


@pytest.mark.parametrize(("lines", "message"), [
    ('country = "DEU"\n',
     "certificates.w.country: must be a two-letter ISO 3166 country code such as 'DE' "
     "(got 'DEU')"),
    ('country = "D1"\n',
     "certificates.w.country: must be a two-letter ISO 3166 country code such as 'DE' "
     "(got 'D1')"),
    (f'organization = "{"x" * 65}"\n',
     f"certificates.w.organization: must be at most 64 characters (got '{'x' * 65}')"),
    (f'state = "{"x" * 129}"\n',
     f"certificates.w.state: must be at most 128 characters (got '{'x' * 129}')"),
    ('organizational_unit = ["Ops", " "]\n',
     "certificates.w.organizational_unit: must not be empty (got ['Ops', ' '])"),
    ('organization = 5\n',
     "certificates.w.organization: must be a string or a list of strings (got 5)"),
])
def test_bad_subject_values_are_refused_with_one_line(tmp_path: Path, lines: str,
                                                      message: str) -> None:
    """Each subject attribute is checked against X.520's bounds at load."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, certificate_table() + lines), env={})
    assert str(caught.value) == "invalid setting " + message


@pytest.mark.parametrize("field", ["organization", "organizational_unit", "country", "state",
                                   "locality"])
def test_vault_pki_refuses_subject_attributes_because_the_role_decides(tmp_path: Path,
                                                                        field: str) -> None:
    """Vault's pki/issue cannot set O, OU, C, ST or L: asking for one is a load error that
    says which role field decides it, not a certificate silently issued without it."""
    role_field = {"organizational_unit": "ou", "state": "province"}.get(field, field)
    table = certificate_table(issuer="vault-pki", vault_pki_role="workers", ca_cert="",
                              ca_key="", **{field: "DE"})
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, table), env={})
    assert caught.value.setting == f"certificates.w.{field}"
    assert caught.value.problem == (
        f"issuer = 'vault-pki' cannot set it: Vault's pki/issue takes only the common name, "
        f"and the role's '{role_field}' field decides what every certificate it issues "
        f"carries (vault write pki/roles/workers {role_field}=…); remove {field} here")


def test_key_vault_refuses_a_subject_its_syntax_cannot_carry(tmp_path: Path) -> None:
    """A double quote (or backslash) has no agreed spelling in Key Vault's subject string."""
    table = certificate_table(**AZURE) + """organization = 'Say "cheese"'\n"""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, table), env={})
    assert caught.value.setting == "certificates.w.organization"
    assert "double quote or a backslash" in caught.value.problem


def test_key_vaults_lifetime_action_is_read_into_the_issuer(tmp_path: Path) -> None:
    """azure_lifetime_action and its trigger belong to the azure-keyvault issuer."""
    table = certificate_table(**AZURE, azure_lifetime_action="AutoRenew") + \
        "azure_days_before_expiry = 30\n"
    issuer = load_settings(write(tmp_path, table), env={}).certificates["w"].issuer
    assert issuer == AzureKeyVaultIssuerSettings(
        azure_vault_url="https://kv.vault.azure.net", azure_certificate_name="w",
        azure_lifetime_action="AutoRenew", azure_days_before_expiry=30)


@pytest.mark.parametrize(("values", "lines", "message"), [
    ({"azure_lifetime_action": "AutoRenew", "azure_mode": "external-ca", "ca_cert": "ca.pem",
      "ca_key": "ca.key"}, "azure_days_before_expiry = 30\n",
     "certificates.w.azure_lifetime_action: Key Vault can only auto-renew certificates it "
     "signs (Self or a partner CA), not ones merged from an external CA"),
    ({"azure_lifetime_action": "EmailContacts"}, "",
     "certificates.w.azure_lifetime_action: give exactly one of azure_lifetime_percentage "
     "and azure_days_before_expiry"),
    ({"azure_lifetime_action": "EmailContacts"},
     "azure_days_before_expiry = 5\nazure_lifetime_percentage = 80\n",
     "certificates.w.azure_lifetime_action: give exactly one of azure_lifetime_percentage "
     "and azure_days_before_expiry"),
    ({"azure_lifetime_action": "AutoRenew"}, "azure_lifetime_percentage = 100\n",
     "certificates.w.azure_lifetime_percentage: azure_lifetime_percentage must be 1-99, "
     "not 100"),
    ({"azure_lifetime_action": "AutoRenew"}, "azure_days_before_expiry = 0\n",
     "certificates.w.azure_days_before_expiry: azure_days_before_expiry must be at least 1, "
     "not 0"),
    ({}, "azure_days_before_expiry = 5\n",
     "certificates.w.azure_days_before_expiry: azure_days_before_expiry needs "
     "azure_lifetime_action"),
    ({"azure_lifetime_action": "AutoRenew"}, "azure_days_before_expiry = 90\n",
     "certificates.w.azure_days_before_expiry: azure_days_before_expiry=90 exceeds what Key "
     "Vault accepts for a 3-month certificate (81)"),
    ({"azure_lifetime_action": "Renew"}, "azure_days_before_expiry = 5\n",
     "certificates.w.azure_lifetime_action: must be one of 'AutoRenew', 'EmailContacts' "
     "(got 'Renew')"),
    ({"azure_lifetime_action": "AutoRenew"}, 'azure_days_before_expiry = "soon"\n',
     "certificates.w.azure_days_before_expiry: must be a number (got 'soon')"),
])
def test_a_lifetime_action_key_vault_would_refuse_is_a_load_error(
        tmp_path: Path, values: dict[str, str], lines: str, message: str) -> None:
    """What the issuer (and Key Vault after it) would refuse mid-renewal is refused at load,
    in one line naming the setting (90 days of lifetime are 3 months, 81 days at most)."""
    table = certificate_table(**{**AZURE, **values}, lifetime_hours="") + \
        "lifetime_hours = 2160\n" + lines
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, table), env={})
    assert str(caught.value) == "invalid setting " + message


def test_lifetime_action_settings_need_the_key_vault_issuer(tmp_path: Path) -> None:
    """azure_lifetime_action is the azure-keyvault issuer's: with the local CA it is refused."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, certificate_table(azure_lifetime_action="AutoRenew")),
                      env={})
    assert (caught.value.setting, caught.value.problem) == (
        "certificates.w.azure_lifetime_action",
        "does not apply with issuer = 'local-ca' and install = 'files'")


def test_a_bad_lifetime_action_stops_the_worker_with_one_line_and_exit_2(tmp_path: Path) -> None:
    """The real entry script, with the setting in ./keyward.toml: one line, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "VAULT_"))}
    write(tmp_path, certificate_table(**AZURE, azure_mode="external-ca",
                                      azure_lifetime_action="AutoRenew") +
          "azure_lifetime_percentage = 80\n")
    result = subprocess.run([sys.executable, str(ROOT / "worker.py")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.stderr.splitlines() == [
        "keyward: invalid setting certificates.w.azure_lifetime_action: Key Vault can only "
        "auto-renew certificates it signs (Self or a partner CA), not ones merged from an "
        "external CA"]
    assert result.returncode == 2
