"""Contract: transit encryption, decryption, batches, data keys and rewrapping."""

from __future__ import annotations

import base64

import hvac
import hvac.exceptions
import pytest

from tests.contract.support import b64, unb64


def _encrypt(
    root_client: hvac.Client, mount: str, name: str, plaintext: bytes, **extra: object
) -> str:
    reply = root_client.secrets.transit.encrypt_data(
        name, b64(plaintext), mount_point=mount, **extra
    )
    return str(reply["data"]["ciphertext"])


def _decrypt(
    root_client: hvac.Client, mount: str, name: str, ciphertext: str, **extra: object
) -> bytes:
    reply = root_client.secrets.transit.decrypt_data(name, ciphertext, mount_point=mount, **extra)
    return unb64(reply["data"]["plaintext"])


def test_ciphertext_has_vaults_format(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A ciphertext is vault:v1: and base64 of a 12-byte nonce, the data and a 16-byte tag."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    reply = root_client.secrets.transit.encrypt_data(
        key_name, b64(b"12345"), mount_point=transit_mount
    )

    ciphertext = reply["data"]["ciphertext"]
    assert reply["data"]["key_version"] == 1
    assert ciphertext.startswith("vault:v1:")
    assert len(base64.b64decode(ciphertext.removeprefix("vault:v1:"))) == 12 + 5 + 16


def test_ciphertext_decrypts_to_the_plaintext(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Decrypting returns the exact plaintext bytes."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    ciphertext = _encrypt(root_client, transit_mount, key_name, b"\x00payload\xff")

    assert _decrypt(root_client, transit_mount, key_name, ciphertext) == b"\x00payload\xff"


def test_old_ciphertext_still_decrypts_after_rotation(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A ciphertext from version 1 decrypts after the key rotates to version 2."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    old = _encrypt(root_client, transit_mount, key_name, b"before rotation")
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)

    new = _encrypt(root_client, transit_mount, key_name, b"after rotation")

    assert new.startswith("vault:v2:")
    assert _decrypt(root_client, transit_mount, key_name, old) == b"before rotation"


def test_raising_min_decryption_version_refuses_old_ciphertext(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Once min_decryption_version passes a ciphertext's version it is refused as too old."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    old = _encrypt(root_client, transit_mount, key_name, b"v1 data")
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.update_key_configuration(
        key_name, min_decryption_version=2, mount_point=transit_mount
    )

    with pytest.raises(hvac.exceptions.InvalidRequest, match="too old") as refused:
        _decrypt(root_client, transit_mount, key_name, old)
    assert "disallowed by policy" in str(refused.value)


def test_encryption_with_an_older_version_on_request(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """key_version selects an older version for encryption when policy allows it."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)

    reply = root_client.secrets.transit.encrypt_data(
        key_name, b64(b"x"), key_version=1, mount_point=transit_mount
    )

    assert reply["data"]["key_version"] == 1
    assert reply["data"]["ciphertext"].startswith("vault:v1:")


def test_encryption_below_min_encryption_version_is_refused(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Asking to encrypt with a version below min_encryption_version is refused."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)
    root_client.secrets.transit.update_key_configuration(
        key_name, min_encryption_version=2, mount_point=transit_mount
    )

    with pytest.raises(hvac.exceptions.InvalidRequest, match="minimum encryption key version"):
        root_client.secrets.transit.encrypt_data(
            key_name, b64(b"x"), key_version=1, mount_point=transit_mount
        )


def test_decrypting_with_an_unknown_key_is_400(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Decrypting with a key that does not exist says the key was not found."""
    with pytest.raises(hvac.exceptions.InvalidRequest, match="encryption key not found"):
        _decrypt(root_client, transit_mount, key_name, "vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")


def test_tampered_ciphertext_fails_authentication(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A ciphertext with a flipped bit fails AEAD authentication."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    ciphertext = _encrypt(root_client, transit_mount, key_name, b"integrity")
    raw = bytearray(base64.b64decode(ciphertext.removeprefix("vault:v1:")))
    raw[-1] ^= 0x01
    tampered = "vault:v1:" + base64.b64encode(bytes(raw)).decode()

    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        _decrypt(root_client, transit_mount, key_name, tampered)


@pytest.mark.parametrize(
    ("ciphertext", "reason"),
    [
        ("not-a-ciphertext", "invalid ciphertext: no prefix"),
        ("vault:vx:AAAA", "invalid ciphertext: version number could not be decoded"),
        ("vault:v9:AAAA", "invalid ciphertext: version is too new"),
        ("vault:v1:%%%%", "invalid ciphertext: could not decode base64"),
    ],
)
def test_malformed_ciphertext_is_refused_with_vaults_reason(
    root_client: hvac.Client, transit_mount: str, key_name: str, ciphertext: str, reason: str
) -> None:
    """Malformed ciphertexts are refused with the reason Vault gives."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match=reason):
        _decrypt(root_client, transit_mount, key_name, ciphertext)


def test_associated_data_round_trips(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A ciphertext bound to associated data decrypts with the same associated data."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    aad = b64(b"namespace=default")
    ciphertext = _encrypt(root_client, transit_mount, key_name, b"bound", associated_data=aad)

    assert (
        _decrypt(root_client, transit_mount, key_name, ciphertext, associated_data=aad) == b"bound"
    )


def test_wrong_associated_data_fails(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Decrypting with different associated data fails authentication."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    ciphertext = _encrypt(
        root_client, transit_mount, key_name, b"bound", associated_data=b64(b"namespace=a")
    )

    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        _decrypt(
            root_client, transit_mount, key_name, ciphertext, associated_data=b64(b"namespace=b")
        )


def test_chacha20_key_round_trips(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A chacha20-poly1305 key encrypts and decrypts."""
    root_client.secrets.transit.create_key(
        key_name, key_type="chacha20-poly1305", mount_point=transit_mount
    )
    ciphertext = _encrypt(root_client, transit_mount, key_name, b"chacha")

    assert _decrypt(root_client, transit_mount, key_name, ciphertext) == b"chacha"


def test_derived_key_round_trips_with_its_context(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A derived key encrypts and decrypts when both sides send the same context."""
    root_client.secrets.transit.create_key(key_name, derived=True, mount_point=transit_mount)
    context = b64(b"tenant-1")
    ciphertext = _encrypt(root_client, transit_mount, key_name, b"derived", context=context)

    assert _decrypt(root_client, transit_mount, key_name, ciphertext, context=context) == b"derived"


def test_derived_key_needs_a_context(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Encrypting with a derived key but no context is refused."""
    root_client.secrets.transit.create_key(key_name, derived=True, mount_point=transit_mount)

    with pytest.raises(hvac.exceptions.InvalidRequest, match="missing 'context'"):
        _encrypt(root_client, transit_mount, key_name, b"no context")


def test_batch_results_keep_input_order_and_references(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A batch answers one result per item, in input order, echoing each reference."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    items = [{"plaintext": b64(f"item {i}".encode()), "reference": f"ref-{i}"} for i in range(3)]

    encrypted = root_client.secrets.transit.encrypt_data(
        key_name, batch_input=items, mount_point=transit_mount
    )["data"]["batch_results"]
    decrypted = root_client.secrets.transit.decrypt_data(
        key_name,
        ciphertext=None,
        batch_input=[
            {"ciphertext": r["ciphertext"], "reference": r["reference"]} for r in encrypted
        ],
        mount_point=transit_mount,
    )["data"]["batch_results"]

    assert [r["reference"] for r in encrypted] == ["ref-0", "ref-1", "ref-2"]
    assert [r["key_version"] for r in encrypted] == [1, 1, 1]
    assert [unb64(r["plaintext"]) for r in decrypted] == [b"item 0", b"item 1", b"item 2"]
    assert [r["reference"] for r in decrypted] == ["ref-0", "ref-1", "ref-2"]


def test_batch_with_a_bad_item_is_400_carrying_every_result(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """One bad item makes the batch a 400 whose body still has every item's result."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    items = [
        {"plaintext": b64(b"good"), "reference": "good"},
        {"plaintext": "!!not base64!!", "reference": "bad"},
    ]

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.secrets.transit.encrypt_data(
            key_name, batch_input=items, mount_point=transit_mount
        )

    body = refused.value.json
    assert body is not None
    good, bad = body["data"]["batch_results"]
    assert good["ciphertext"].startswith("vault:v1:")
    assert good["reference"] == "good"
    assert "error" not in good
    assert "illegal base64 data" in bad["error"]
    assert bad["reference"] == "bad"
    assert "ciphertext" not in bad


def test_batch_decrypt_reports_each_failed_item(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A batch decrypt with one tampered item is a 400 naming that item's failure."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    good = _encrypt(root_client, transit_mount, key_name, b"fine")

    with pytest.raises(hvac.exceptions.InvalidRequest) as refused:
        root_client.secrets.transit.decrypt_data(
            key_name,
            ciphertext=None,
            batch_input=[{"ciphertext": good}, {"ciphertext": "vault:v1:AAAA"}],
            mount_point=transit_mount,
        )

    results = refused.value.json["data"]["batch_results"]
    assert unb64(results[0]["plaintext"]) == b"fine"
    assert results[1]["error"]


def test_datakey_plaintext_is_what_its_ciphertext_decrypts_to(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """The plaintext of a data key equals the decryption of its wrapped ciphertext."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    datakey = root_client.secrets.transit.generate_data_key(
        key_name, key_type="plaintext", mount_point=transit_mount
    )["data"]

    assert len(unb64(datakey["plaintext"])) == 32
    assert datakey["key_version"] == 1
    unwrapped = _decrypt(root_client, transit_mount, key_name, datakey["ciphertext"])
    assert unwrapped == unb64(datakey["plaintext"])


def test_wrapped_datakey_carries_no_plaintext(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A wrapped data key has a ciphertext only, and the requested size."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)

    datakey = root_client.secrets.transit.generate_data_key(
        key_name, key_type="wrapped", bits=512, mount_point=transit_mount
    )["data"]

    assert "plaintext" not in datakey
    assert len(_decrypt(root_client, transit_mount, key_name, datakey["ciphertext"])) == 64


def test_datakey_for_a_missing_key_is_400(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """A data key cannot be made with a key that does not exist."""
    with pytest.raises(hvac.exceptions.InvalidRequest, match="encryption key not found"):
        root_client.secrets.transit.generate_data_key(
            key_name, key_type="plaintext", mount_point=transit_mount
        )


def test_rewrap_moves_ciphertext_to_the_latest_version(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Rewrapping re-encrypts an old ciphertext under the newest version, same plaintext."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    old = _encrypt(root_client, transit_mount, key_name, b"rewrap me")
    root_client.secrets.transit.rotate_key(key_name, mount_point=transit_mount)

    rewrapped = root_client.secrets.transit.rewrap_data(key_name, old, mount_point=transit_mount)[
        "data"
    ]

    assert rewrapped["key_version"] == 2
    assert rewrapped["ciphertext"].startswith("vault:v2:")
    assert _decrypt(root_client, transit_mount, key_name, rewrapped["ciphertext"]) == b"rewrap me"


def test_rewrap_cannot_handle_associated_data(
    root_client: hvac.Client, transit_mount: str, key_name: str
) -> None:
    """Rewrap takes no associated data, so AAD-bound ciphertext fails authentication."""
    root_client.secrets.transit.create_key(key_name, mount_point=transit_mount)
    bound = _encrypt(root_client, transit_mount, key_name, b"bound", associated_data=b64(b"aad"))

    with pytest.raises(hvac.exceptions.InvalidRequest, match="message authentication failed"):
        root_client.secrets.transit.rewrap_data(key_name, bound, mount_point=transit_mount)
