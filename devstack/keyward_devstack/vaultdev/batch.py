"""Batch requests for encrypt, decrypt and rewrap, and how their failures surface.

Vault decodes ``batch_input`` strictly: an item of the wrong shape fails the
whole request with a 500 and mapstructure's message. Items that decode but
cannot be processed get their own ``error`` instead, and
:func:`batch_reply` turns those into Vault's status rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.crypto import b64decode_go
from keyward_devstack.vaultdev.errors import (
    InternalError,
    UserError,
    bad_request,
    internal_error,
)
from keyward_devstack.vaultdev.keyring import decrypt_value, encrypt_value
from keyward_devstack.vaultdev.protocol import Reply
from keyward_devstack.vaultdev.state import TransitKey


@dataclass
class Item:
    """One entry of ``batch_input`` (a single request is a batch of one)."""

    plaintext: str = ""
    ciphertext: str = ""
    context: str = ""
    nonce: str = ""
    associated_data: str = ""
    reference: str = ""
    key_version: int = 0
    decoded_context: bytes = b""


@dataclass
class Result:
    """What happened to one item; ``internal`` marks failures Vault reports as 500."""

    ciphertext: str = ""
    plaintext: str = ""
    key_version: int = 0
    error: str = ""
    internal: bool = False

    def encrypted(self, reference: str) -> dict[str, Any]:
        """The item as encrypt and rewrap report it."""
        # Go's omitempty drops empty ciphertext, zero key_version, empty error.
        view: dict[str, Any] = {}
        if self.ciphertext:
            view["ciphertext"] = self.ciphertext
        if self.key_version:
            view["key_version"] = self.key_version
        if self.error:
            view["error"] = self.error
        view["reference"] = reference
        return view

    def decrypted(self, reference: str) -> dict[str, Any]:
        """The item as decrypt reports it (``plaintext`` is always present)."""
        view: dict[str, Any] = {"plaintext": self.plaintext}
        if self.error:
            view["error"] = self.error
        view["reference"] = reference
        return view


_STRING_FIELDS = ("context", "ciphertext", "nonce", "associated_data", "reference")


def _go_type(value: object) -> str:
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "json.Number"
    if isinstance(value, list):
        return "[]interface {}"
    if isinstance(value, dict):
        return "map[string]interface {}"
    return "string"


def decode_batch(raw: object, *, require: str | None) -> list[Item]:
    """Vault's ``decodeBatchRequestItems``: type errors fail the whole request (500)."""
    if not isinstance(raw, list):
        raise internal_error(
            f"failed to parse batch input: source data must be an array or slice, "
            f"got {_go_type(raw)}"
        )
    items: list[Item] = []
    problems: list[str] = []
    for index, element in enumerate(raw):
        if not isinstance(element, dict):
            raise internal_error(
                f"failed to parse batch input: [{index}] expected a map, got '{_go_type(element)}'"
            )
        item = Item()
        for name in _STRING_FIELDS:
            value = element.get(name)
            if value is None:
                continue
            if isinstance(value, str):
                setattr(item, name, value)
            else:
                problems.append(
                    f"'[{index}].{name}' expected type 'string', "
                    f"got unconvertible type '{_go_type(value)}'"
                )
        if "plaintext" in element:
            if isinstance(element["plaintext"], str):
                item.plaintext = element["plaintext"]
            else:
                problems.append(
                    f"'[{index}].plaintext' expected type 'string', "
                    f"got unconvertible type '{_go_type(element['plaintext'])}'"
                )
        elif require == "plaintext":
            problems.append(f"'[{index}].plaintext' missing plaintext to encrypt")
        if require == "ciphertext" and "ciphertext" not in element:
            problems.append(f"'[{index}].ciphertext' missing ciphertext to decrypt")
        version = element.get("key_version")
        if isinstance(version, int) and not isinstance(version, bool):
            item.key_version = version
        elif isinstance(version, float) and version.is_integer():
            item.key_version = int(version)
        elif version is not None:
            problems.append(
                f"'[{index}].key_version' expected type 'int', "
                f"got unconvertible type '{_go_type(version)}'"
            )
        items.append(item)
    if problems:
        listing = "\n".join(f"* {problem}" for problem in problems)
        raise internal_error(
            f"failed to parse batch input: {len(problems)} error(s) decoding:\n\n{listing}"
        )
    return items


def decode_item_fields(item: Item, result: Result) -> bool:
    """Decode an item's context and nonce; record a per-item error on failure."""
    for name in ("context", "nonce"):
        encoded = getattr(item, name)
        if not encoded:
            continue
        try:
            decoded = b64decode_go(encoded)
        except ValueError as exc:
            result.error = str(exc)
            return False
        if name == "context":
            item.decoded_context = decoded
    return True


def batch_reply(data: dict[str, Any], request: Mapping[str, Any], results: list[Result]) -> Reply:
    """Vault's ``batchRequestResponse``: a failed item fails the request, with data."""
    user_error = any(r.error and not r.internal for r in results)
    internal = any(r.internal for r in results)
    successes = any(not r.error for r in results)
    if not user_error and not internal:
        return Reply(data=data)
    status = 400 if user_error else 500
    warnings: list[str] = []
    if successes and fields.present(request, "partial_failure_response_code"):
        code = fields.integer(request, "partial_failure_response_code")
        # Vault allows 1-599; statuses that may not carry a body are refused here.
        if 200 <= code <= 599 and code not in (204, 304):
            status = code
        else:
            warnings.append(
                "invalid HTTP response code override from partial_failure_response_code, "
                f"reverting to {status}"
            )
    return Reply(data=data, status=status, warnings=warnings)


def single_ciphertext(result: Result) -> dict[str, Any]:
    """The ``data`` of a non-batch encrypt or rewrap."""
    return {"ciphertext": result.ciphertext, "key_version": result.key_version}


def single_failure(result: Result) -> None:
    """A non-batch request fails as a whole, with the item's error."""
    if result.internal:
        raise internal_error(result.error)
    raise bad_request(result.error)


def run_item(
    operation: Callable[[Result, TransitKey, Item], None],
    result: Result,
    key: TransitKey,
    item: Item,
) -> None:
    """Run one item's operation, turning its failure into a per-item error."""
    try:
        operation(result, key, item)
    except UserError as exc:
        result.error = exc.message
    except InternalError as exc:
        result.error = exc.message
        result.internal = True


def encrypt_item(result: Result, key: TransitKey, item: Item) -> None:
    """Encrypt one item into ``result``."""
    result.ciphertext, result.key_version = encrypt_value(
        key, item.key_version, item.decoded_context, item.plaintext, item.associated_data
    )


def decrypt_item(result: Result, key: TransitKey, item: Item) -> None:
    """Decrypt one item into ``result``."""
    result.plaintext = decrypt_value(
        key, item.decoded_context, item.ciphertext, item.associated_data
    )


def rewrap_item(result: Result, key: TransitKey, item: Item) -> None:
    """Decrypt and re-encrypt one item; as in Vault, internal failures fail the request."""
    try:
        plaintext = decrypt_value(key, item.decoded_context, item.ciphertext, "")
        result.ciphertext, result.key_version = encrypt_value(
            key, item.key_version, item.decoded_context, plaintext, ""
        )
    except UserError as exc:
        result.error = exc.message
    except InternalError as exc:
        raise internal_error(exc.message) from None
