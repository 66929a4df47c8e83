"""Which namespaces a key's decryption floor must look at: all that hold its payloads."""

from __future__ import annotations

from pathlib import Path

import pytest

from keyward.config import Settings, load_settings
from keyward.errors import ConfigError
from keyward.rotation.inputs import namespaces_using


def settings_from(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "keyward.toml"
    path.write_text(text)
    return load_settings(path, env={})


def test_mapped_previous_and_same_name_namespaces_are_checked(tmp_path: Path) -> None:
    """codec.keys, codec.previous_keys (old histories) and the same-name namespace all count."""
    settings = settings_from(tmp_path, """
        [codec]
        keys = { orders = "payments", billing = "billing-v2" }
        previous_keys = { billing = ["payments"] }
    """)
    assert namespaces_using(settings, "payments") == ["billing", "orders", "payments"]
    assert namespaces_using(settings, "billing-v2") == ["billing", "billing-v2"]


def test_remapped_namespace_no_longer_uses_its_own_name(tmp_path: Path) -> None:
    """A namespace mapped elsewhere is not implied by a key named like it."""
    settings = settings_from(tmp_path, '[codec]\nkeys = { orders = "payments" }\n')
    assert namespaces_using(settings, "orders") == []


def test_rotation_namespaces_replaces_the_same_name_guess(tmp_path: Path) -> None:
    """rotation.namespaces names the unmapped users of a key instead of the same-name guess
    (which would keep the floor down for good when no such namespace exists), and can
    never drop a namespace that codec.keys or codec.previous_keys names."""
    settings = settings_from(tmp_path, """
        [codec]
        keys = { orders = "payments" }
        previous_keys = { legacy = ["payments"] }
        [rotation]
        namespaces = { payments = [], shared = ["team-a", "team-b"] }
    """)
    assert namespaces_using(settings, "payments") == ["legacy", "orders"]
    assert namespaces_using(settings, "shared") == ["team-a", "team-b"]


@pytest.mark.parametrize("text", [
    '[codec]\nkeys = { default = "../keys/x/rotate" }\n',
    '[codec]\nprevious_keys = { default = ["a/b"] }\n',
    '[rotation]\nkeys = { "x y" = 10 }\n',
    '[rotation]\nnamespaces = { "../sys" = [] }\n',
    '[vault]\ntransit_mount = "transit/../sys"\n',
])
def test_key_names_and_mounts_in_settings_are_vault_names(tmp_path: Path, text: str) -> None:
    """A key name or mount that is not a Vault name is a settings error, not a URL."""
    with pytest.raises(ConfigError):
        settings_from(tmp_path, text)
