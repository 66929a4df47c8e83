"""Secure defaults: settings that would expose a credential or the codec are refused.

Each insecure choice is still possible, but only by a setting that says so in words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keyward.config import is_loopback_host, load_settings
from keyward.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keyward.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("address", ["http://vault.example:8200", "http://10.0.0.7:8200",
                                     "http://vault:8200", "http://127.0.0.1.evil.example:8200",
                                     "http://[2001:db8::1]:8200"])
def test_remote_plain_http_vault_is_refused(tmp_path: Path, address: str) -> None:
    """vault.address may not be plain http:// to another host: the Vault token would cross
    the network in clear."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f'[vault]\naddress = "{address}"\n'), env={})
    assert caught.value.setting == "vault.address"
    assert "vault.allow_insecure_http" in str(caught.value)


def test_remote_plain_http_vault_from_vault_addr_is_refused(tmp_path: Path) -> None:
    """The same holds when the address comes from VAULT_ADDR."""
    with pytest.raises(ConfigError, match=r"vault\.address"):
        load_settings(write(tmp_path, ""), env={"VAULT_ADDR": "http://vault.example:8200"})


@pytest.mark.parametrize("address", ["http://127.0.0.1:8200", "http://localhost:8200",
                                     "http://[::1]:8200", "https://vault.example:8200"])
def test_loopback_http_and_any_https_vault_are_accepted(tmp_path: Path, address: str) -> None:
    """Loopback http:// (the dev Vault) and https:// anywhere are fine."""
    settings = load_settings(write(tmp_path, f'[vault]\naddress = "{address}"\n'), env={})
    assert settings.vault.address == address


def test_remote_plain_http_vault_with_explicit_setting(tmp_path: Path) -> None:
    """vault.allow_insecure_http = true is the explicit way to accept remote http://."""
    settings = load_settings(write(tmp_path, ""), env={
        "VAULT_ADDR": "http://vault:8200", "KEYWARD_VAULT__ALLOW_INSECURE_HTTP": "true"})
    assert settings.vault.address == "http://vault:8200"


def test_remote_plain_http_jwks_is_refused(tmp_path: Path) -> None:
    """codec_server.jwks_url may not be plain http:// to another host: whoever alters the
    response chooses the keys that decide who may decrypt."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[codec_server]\njwks_url = "http://idp.example/jwks"\n'),
                      env={})
    assert caught.value.setting == "codec_server.jwks_url"
    assert "codec_server.allow_insecure_http" in str(caught.value)


def test_jwks_over_https_loopback_or_explicitly_insecure_is_accepted(tmp_path: Path) -> None:
    """https:// anywhere, http:// on loopback, or remote http:// with the explicit setting."""
    for text in ('jwks_url = "https://idp.example/jwks"\n',
                 'jwks_url = "http://127.0.0.1:9000/jwks"\n',
                 'jwks_url = "http://idp:9000/jwks"\nallow_insecure_http = true\n'):
        settings = load_settings(write(tmp_path, f"[codec_server]\n{text}"), env={})
        assert settings.codec_server.jwks_url is not None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.7", "codec.example"])  # noqa: S104
def test_no_auth_codec_server_on_a_non_loopback_address_is_an_error(tmp_path: Path,
                                                                     host: str) -> None:
    """codec_server.auth = "none" may only listen on loopback: otherwise anyone who reaches
    the address decrypts every namespace. An error, not a warning."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, f'[codec_server]\nauth = "none"\nhost = "{host}"\n'),
                      env={})
    assert caught.value.setting == "codec_server.host"


def test_no_auth_codec_server_off_loopback_only_with_explicit_setting(tmp_path: Path) -> None:
    """codec_server.allow_no_auth_off_loopback = true is the explicit (container) escape."""
    settings = load_settings(write(tmp_path, '[codec_server]\nauth = "none"\nhost = "0.0.0.0"\n'
                                   "allow_no_auth_off_loopback = true\n"), env={})
    assert settings.codec_server.auth == "none"


def test_jwt_codec_server_may_listen_anywhere(tmp_path: Path) -> None:
    """With auth = "jwt" (the default) any address is fine."""
    settings = load_settings(write(tmp_path, '[codec_server]\nhost = "0.0.0.0"\n'), env={})
    assert settings.codec_server.host == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.1.2.3", True), ("localhost", True), ("LocalHost", True),
    ("::1", True), ("[::1]", True), ("0.0.0.0", False), ("::", False),  # noqa: S104
    ("localhost.evil.example", False), ("127.0.0.1.evil.example", False), ("", False),
    ("evil@127.0.0.1", False), ("127.0.0.1/x", False)])
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    """Only localhost, 127.0.0.0/8 and ::1 are loopback; look-alikes are not."""
    assert is_loopback_host(host) is loopback


def test_dev_stack_only_on_loopback(tmp_path: Path) -> None:
    """devstack.host must be loopback: the local stack serves a codec server without auth
    and a dev Vault whose root token travels over plain http."""
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, '[devstack]\nhost = "0.0.0.0"\n'), env={})
    assert caught.value.setting == "devstack.host"
