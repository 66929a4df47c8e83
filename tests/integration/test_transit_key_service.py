"""The Transit-key service on its own (no Temporal): what starter.py and the activities call."""

from __future__ import annotations

import hvac
import pytest

from keyward.contracts import failures
from keyward.errors import KeywardError
from keyward.services.transit_keys import TransitKeys
from keyward.vault.errors import VaultNotFound
from keyward.vault.names import InvalidVaultName


def test_reads_rotates_once_and_raises_the_floor(vault_client: hvac.Client,
                                                transit_key: str) -> None:
    """Compare-and-rotate rotates only from the expected version; the floor only rises and
    never above the latest version (refused with the InvalidFloor failure type)."""
    keys = TransitKeys(vault_client)
    assert keys.read(transit_key, "transit").latest_version == 1
    assert keys.rotate_if_current(transit_key, "transit", expected_latest=1).latest_version == 2
    assert keys.rotate_if_current(transit_key, "transit", expected_latest=1).latest_version == 2
    assert keys.raise_floor(transit_key, "transit", 2, trim=False).min_decryption_version == 2
    assert keys.raise_floor(transit_key, "transit", 1, trim=False).min_decryption_version == 2
    with pytest.raises(KeywardError) as refused:
        keys.raise_floor(transit_key, "transit", 3, trim=False)
    assert refused.value.failure_type == failures.INVALID_FLOOR
    assert not refused.value.retryable


def test_errors_are_keyward_errors_and_bad_names_never_reach_vault(
        vault_client: hvac.Client) -> None:
    """A missing key is a permanent VaultNotFound; a name outside Vault's rule is refused
    before any request."""
    keys = TransitKeys(vault_client)
    with pytest.raises(VaultNotFound):
        keys.read("no-such-key-here", "transit")
    with pytest.raises(InvalidVaultName):
        keys.read("../keys/victim/rotate", "transit")
