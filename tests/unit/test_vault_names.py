"""Vault names that reach a URL: Vault's own naming rule, a length bound, one quoted segment."""

from __future__ import annotations

import pytest

from keyward.vault.names import (
    MAX_NAME_LENGTH,
    InvalidVaultName,
    check_key_name,
    check_mount,
    is_key_name,
    segment,
)


@pytest.mark.parametrize("name", ["k", "payments", "a_b", "team-a.key@v2", "A1", "_",
                                  "x" * MAX_NAME_LENGTH])
def test_vault_names_are_accepted_unchanged(name: str) -> None:
    """Names that Vault's GenericNameRegex allows (and fit the bound) come back unchanged."""
    assert check_key_name(name) == name
    assert is_key_name(name) is True


@pytest.mark.parametrize("name", ["", "../keys/x/rotate", "a/b", "-a", "a-", ".a", "a.",
                                  "a b", "ключ", "a\n", "x" * (MAX_NAME_LENGTH + 1), 5, None,
                                  b"k"])
def test_other_names_are_refused(name: object) -> None:
    """Traversal, separators, blanks, non-ASCII letters, a punctuation mark at either end,
    over-long names and non-strings are not key names."""
    with pytest.raises(InvalidVaultName):
        check_key_name(name)
    assert is_key_name(name) is False


def test_the_length_bound_is_128() -> None:
    """A key name may have 128 characters, not 129 (hostile input stays bounded)."""
    assert MAX_NAME_LENGTH == 128
    with pytest.raises(InvalidVaultName, match="longer than 128 characters"):
        check_key_name("x" * 129)


def test_errors_name_what_was_checked_and_show_the_value_bounded() -> None:
    """The error says which name it was, shows at most 64 characters and escapes the rest."""
    with pytest.raises(InvalidVaultName) as raised:
        check_key_name("é" + "-" * 100, what="codec key")
    message = str(raised.value)
    assert message.startswith("codec key '\\xe9" + "-" * 63 + "\\u2026'")
    with pytest.raises(InvalidVaultName) as exact:
        check_key_name("-" * 64)
    assert "'" + "-" * 64 + "'" in str(exact.value)
    assert "\\u2026" not in str(exact.value)
    with pytest.raises(InvalidVaultName) as longer:
        check_key_name("-" * 65)
    assert "'" + "-" * 64 + "\\u2026'" in str(longer.value)
    with pytest.raises(InvalidVaultName, match="must be a string, got int"):
        check_key_name(5)


@pytest.mark.parametrize("mount", ["transit", "team/transit", "a-b_c.d", "a/b/c",
                                   "x" * MAX_NAME_LENGTH])
def test_mount_paths_are_accepted(mount: str) -> None:
    """Mount paths are segments of letters, digits, ``_ - .`` joined by ``/``."""
    assert check_mount(mount) == mount


@pytest.mark.parametrize("mount", ["", "/transit", "transit/", "a//b", "..", "a/../b", ".",
                                   "a/./b", "a b", "x" * (MAX_NAME_LENGTH + 1), 3])
def test_odd_mount_paths_are_refused(mount: object) -> None:
    """Empty segments, ``.`` and ``..``, other characters, over-long paths and non-strings."""
    with pytest.raises(InvalidVaultName):
        check_mount(mount)


def test_a_segment_is_fully_quoted() -> None:
    """A segment is quoted with no safe characters, ``/`` included."""
    assert segment("a/b ..?") == "a%2Fb%20..%3F"
