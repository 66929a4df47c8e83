"""Settings: one typed object from TOML + environment, with errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyward.config import CodecSettings, load_settings
from keyward.errors import ConfigError
from keyward.secrets import Secret


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keyward.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_env() -> None:
    """With nothing configured, settings are the documented defaults."""
    settings = load_settings(env={})
    assert settings.vault.address == "http://127.0.0.1:8200"
    assert settings.codec.mode == "envelope"
    assert settings.temporal.task_queue == "keyward"
    assert settings.source == "defaults"


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


def test_config_file_from_environment_variable(tmp_path: Path) -> None:
    """$KEYWARD_CONFIG names the file when --config is not given."""
    path = write(tmp_path, '[logging]\nlevel = "debug"\n')
    assert load_settings(env={"KEYWARD_CONFIG": str(path)}).logging.level == "DEBUG"


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


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML gives a ConfigError naming the file and the position."""
    path = write(tmp_path, "[vault\naddress = \n")
    with pytest.raises(ConfigError, match=r"keyward\.toml is not valid TOML.*line 1"):
        load_settings(path, env={})


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A --config path that does not exist is reported, not silently replaced by defaults."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


def test_secrets_are_masked_in_repr_and_errors(tmp_path: Path) -> None:
    """A token never appears in repr() of the settings or in a validation error."""
    token = "hvs.supersecretvalue1234567890"
    settings = load_settings(env={"VAULT_TOKEN": token})
    assert token not in repr(settings)
    assert token not in str(settings.vault)
    path = write(tmp_path, '[vault]\napprole_secret_id = 12345\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, env={})
    assert "12345" not in str(caught.value)


def test_ca_cert_must_exist(tmp_path: Path) -> None:
    """VAULT_CACERT pointing at a missing file fails at load, not at the first TLS handshake."""
    with pytest.raises(ConfigError, match=r"vault\.ca_cert"):
        load_settings(env={"VAULT_CACERT": str(tmp_path / "missing.pem")})


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
    assert worker.issuer == "local-ca"
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


def test_temporal_tls_pair_goes_together(tmp_path: Path) -> None:
    """A client certificate without its key (or the reverse) is refused at load."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[temporal]\ntls_cert = "c.pem"\n'), env={})
    assert caught.value.setting == "temporal.tls_key"
