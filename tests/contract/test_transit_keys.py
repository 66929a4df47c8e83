"""Contract: managing transit keys (create, read, list, rotate, configure, trim, delete)."""

from __future__ import annotations

import hvac
import hvac.exceptions
import pytest

from tests.contract.support import b64


def test_created_key_reads_back_with_vaults_fields(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A new key is aes256-gcm96 at version 1 and reads back with Vault's fields."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    data = root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)["data"]

    assert data["name"] == key_name
    assert data["type"] == "aes256-gcm96"
    assert data["latest_version"] == 1
    assert data["min_decryption_version"] == 1
    assert data["min_encryption_version"] == 0
    assert data["min_available_version"] == 0
    assert data["auto_rotate_period"] == 0
    assert data["deletion_allowed"] is False
    assert data["derived"] is False
    assert data["exportable"] is False
    assert data["supports_encryption"] is True
    assert data["supports_decryption"] is True
    assert list(data["keys"]) == ["1"]
    assert isinstance(data["keys"]["1"], int)


def test_reading_a_missing_key_is_404(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Reading a key that does not exist is a 404 (hvac InvalidPath)."""
    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)


def test_listing_keys_names_the_created_key(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """LIST on keys/ returns the key names, as hvac's list_keys sends it."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    listed = root_client.secrets.transit.list_keys(mount_point=transit_mount)["data"]["keys"]

    assert key_name in listed


def test_rotation_answers_with_the_new_version(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Rotating answers with the key's info, now at version 2."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    rotated = root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)

    assert rotated["data"]["latest_version"] == 2
    assert sorted(rotated["data"]["keys"]) == ["1", "2"]


def test_rotating_a_missing_key_is_400(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Rotating a key that does not exist is refused with 400."""
    with pytest.raises(hvac.exceptions.InvalidRequest, match="key not found"):
        root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)


def test_chacha20_key_reports_its_type(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A chacha20-poly1305 key is created with that type."""
    root_client.secrets.transit.create_key(
        key_name, key_type="chacha20-poly1305", mount_point=transit_mount
    )

    data = root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)["data"]

    assert data["type"] == "chacha20-poly1305"


def test_unknown_key_type_is_400(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Creating a key of a type Vault does not know is refused."""
    with pytest.raises(hvac.exceptions.InvalidRequest, match="unknown key type"):
        root_client.adapter.post(f"/v1/{transit_mount}/keys/{key_name}", json={"type": "rot13"})


def test_auto_rotate_period_reads_back_in_seconds(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """auto_rotate_period given as a duration string reads back as seconds."""
    root_client.secrets.transit.create_key(
        key_name, auto_rotate_period="24h", mount_point=transit_mount
    )

    data = root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)["data"]

    assert data["auto_rotate_period"] == 86400


def test_auto_rotate_period_under_an_hour_is_refused_at_creation(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A key cannot be created to rotate more often than hourly."""
    with pytest.raises(hvac.exceptions.InvalidRequest, match="at least an hour"):
        root_client.secrets.transit.create_key(
            key_name, auto_rotate_period="30m", mount_point=transit_mount
        )


def test_auto_rotate_period_under_an_hour_is_refused_in_config(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Configuring an existing key to rotate more often than hourly is refused."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="at least an hour"):
        root_client.secrets.transit.update_key_configuration(
            key_name, auto_rotate_period="59m", mount_point=transit_mount
        )


def test_auto_rotate_period_zero_turns_rotation_off(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """auto_rotate_period "0" switches automatic rotation off again."""
    root_client.secrets.transit.create_key(
        key_name, auto_rotate_period="1h", mount_point=transit_mount
    )

    configured = root_client.secrets.transit.update_key_configuration(
        key_name, auto_rotate_period="0", mount_point=transit_mount
    )

    assert configured["data"]["auto_rotate_period"] == 0


def test_min_decryption_version_cannot_pass_the_latest_version(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """min_decryption_version above the latest version is refused."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="cannot set min decryption version"):
        root_client.secrets.transit.update_key_configuration(
            key_name, min_decryption_version=2, mount_point=transit_mount
        )


def test_min_encryption_version_below_min_decryption_is_refused(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """min_encryption_version may not fall below min_decryption_version."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)

    # hvac refuses this combination itself, so the request is sent directly.
    with pytest.raises(hvac.exceptions.InvalidRequest, match="must be greater than or equal"):
        root_client.adapter.post(
            f"/v1/{transit_mount}/keys/{key_name}/config",
            json={"min_decryption_version": 2, "min_encryption_version": 1},
        )


def test_reading_a_key_lists_versions_from_min_decryption_version(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Versions below min_decryption_version disappear from the key's listing."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.update_key_configuration(
        key_name, min_decryption_version=2, mount_point=transit_mount
    )

    data = root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)["data"]

    assert list(data["keys"]) == ["2"]


def _key_at_version_three(root_client: hvac.Client, mount: str, name: str) -> None:
    root_client.secrets.transit.create_key(name, mount_point=mount)
    root_client.secrets.transit.rotate_key(name, mount_point=mount)
    root_client.secrets.transit.rotate_key(name, mount_point=mount)


def test_trim_needs_min_encryption_version_set(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Trimming is refused while min_encryption_version is 0 (always latest)."""
    _key_at_version_three(root_client, transit_mount, key_name)
    root_client.secrets.transit.update_key_configuration(
        key_name, min_decryption_version=2, mount_point=transit_mount
    )

    with pytest.raises(hvac.exceptions.InvalidRequest, match="minimum encryption version"):
        root_client.secrets.transit.trim_key(key_name, min_version=2, mount_point=transit_mount)


def test_trim_cannot_pass_min_decryption_version(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Trimming beyond min_decryption_version is refused."""
    _key_at_version_three(root_client, transit_mount, key_name)
    root_client.secrets.transit.update_key_configuration(
        key_name, min_decryption_version=2, min_encryption_version=3, mount_point=transit_mount
    )

    with pytest.raises(hvac.exceptions.InvalidRequest, match="minimum decryption version"):
        root_client.secrets.transit.trim_key(key_name, min_version=3, mount_point=transit_mount)


def test_trim_removes_older_versions_for_good(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """After trimming, min_decryption_version cannot go back below the trimmed point."""
    _key_at_version_three(root_client, transit_mount, key_name)
    root_client.secrets.transit.update_key_configuration(
        key_name, min_decryption_version=2, min_encryption_version=3, mount_point=transit_mount
    )

    trimmed = root_client.secrets.transit.trim_key(
        key_name, min_version=2, mount_point=transit_mount
    )

    assert trimmed["data"]["min_available_version"] == 2
    with pytest.raises(hvac.exceptions.InvalidRequest, match="min available version"):
        root_client.secrets.transit.update_key_configuration(
            key_name, min_decryption_version=1, mount_point=transit_mount
        )


def test_key_is_kept_while_deletion_is_not_allowed(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Deleting a key without deletion_allowed is refused and the key stays."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="deletion is not allowed"):
        root_client.secrets.transit.delete_key(key_name, mount_point=transit_mount)
    assert root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)["data"]


def test_key_is_deleted_once_deletion_is_allowed(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """With deletion_allowed set, deleting removes the key."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.update_key_configuration(
        key_name, deletion_allowed=True, mount_point=transit_mount
    )

    root_client.secrets.transit.delete_key(key_name, mount_point=transit_mount)

    with pytest.raises(hvac.exceptions.InvalidPath):
        root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)


def test_encrypting_to_a_missing_key_creates_it(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Encrypting with an unknown key name creates the key (Vault's upsert)."""
    root_client.secrets.transit.encrypt_data(key_name, b64(b"hello"), mount_point=transit_mount)

    data = root_client.secrets.transit.read_key(key_name, mount_point=transit_mount)["data"]

    assert data["latest_version"] == 1
    assert data["type"] == "aes256-gcm96"
