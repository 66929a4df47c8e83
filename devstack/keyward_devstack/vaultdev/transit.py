"""The transit secrets engine: named keys, encryption, decryption and friends.

Endpoints, parameters, response fields, status codes and error texts follow
Vault's ``builtin/logical/transit`` and ``sdk/helper/keysutil``, including
its quirks, because callers are written against real Vault:

* encrypting to a missing key creates it (an "upsert"), derived when the
  request carries a ``context``;
* a batch where some items fail answers HTTP 400 (500 for internal failures)
  but still carries ``batch_results``, with ``partial_failure_response_code``
  to choose another status when some items succeeded; ``rewrap`` instead
  answers 200 and reports failures per item;
* reading a key lists only versions from ``min_decryption_version`` up, as
  older ones sit in Vault's archive, and ``trim`` deletes versions for good;
* ``auto_rotate_period`` is enforced by a background sweep
  (:func:`keyring.rotate_due_keys`) that rotates a key once its newest version is
  older than the period.

Only the AEAD key types (``aes128-gcm96``, ``aes256-gcm96``,
``chacha20-poly1305``) exist here; signing, HMAC, export, backup and
convergent encryption are not implemented and say so in their errors.
"""

from __future__ import annotations

import base64
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from keyward_devstack.vaultdev import fields
from keyward_devstack.vaultdev.batch import (
    Item,
    Result,
    batch_reply,
    decode_batch,
    decode_item_fields,
    decrypt_item,
    encrypt_item,
    rewrap_item,
    run_item,
    single_ciphertext,
    single_failure,
)
from keyward_devstack.vaultdev.crypto import b64decode_go
from keyward_devstack.vaultdev.errors import (
    InternalError,
    UserError,
    bad_request,
    internal_error,
    not_found,
)
from keyward_devstack.vaultdev.keyring import (
    MIN_AUTO_ROTATE_PERIOD,
    check_key_type,
    encrypt_value,
    key_view,
    new_key,
    rotate_key,
)
from keyward_devstack.vaultdev.protocol import Call, Operation, Reply
from keyward_devstack.vaultdev.routing import NAME, Route, dispatch
from keyward_devstack.vaultdev.state import SecretsMount, Store, TransitKey

ERR_NONCE_NOT_ALLOWED = "provided nonce not allowed for this key"
ERR_CONTEXT_MIXED = "context should be set either in all the request blocks or in none"
ERR_CONVERGENT = "convergent encryption is not supported by the keyward dev vault"

_KEY = f"keys/(?P<name>{NAME})"


class TransitBackend:
    """The endpoints of one transit mount."""

    def __init__(self, store: Store, mount: SecretsMount) -> None:
        self._store = store
        self._keys = mount.keys

    def handle(self, call: Call) -> Reply | None:
        """Serve one request addressed to this mount."""
        return dispatch(self._routes(), call)

    def _routes(self) -> list[Route]:
        update = Operation.UPDATE
        return [
            Route(re.compile("keys/?"), {Operation.LIST: self._list}),
            Route(
                re.compile(_KEY),
                {
                    Operation.READ: self._read,
                    update: self._create,
                    Operation.DELETE: self._delete,
                },
            ),
            Route(re.compile(f"{_KEY}/config"), {update: self._configure}),
            Route(re.compile(f"{_KEY}/rotate"), {update: self._rotate}),
            Route(re.compile(f"{_KEY}/trim"), {update: self._trim}),
            Route(re.compile(f"encrypt/(?P<name>{NAME})"), {update: self._encrypt}),
            Route(re.compile(f"decrypt/(?P<name>{NAME})"), {update: self._decrypt}),
            Route(re.compile(f"rewrap/(?P<name>{NAME})"), {update: self._rewrap}),
            Route(
                re.compile(f"datakey/(?P<kind>{NAME})/(?P<name>{NAME})"),
                {update: self._datakey},
            ),
        ]

    # keys ----------------------------------------------------------------------

    def _list(self, call: Call, match: re.Match[str]) -> Reply:
        if not self._keys:
            raise not_found()
        return Reply(data={"keys": sorted(self._keys)})

    def _read(self, call: Call, match: re.Match[str]) -> Reply:
        key = self._keys.get(match["name"])
        if key is None:
            raise not_found()
        return Reply(data=key_view(key))

    def _create(self, call: Call, match: re.Match[str]) -> Reply:
        name, data = match["name"], call.data
        derived = fields.boolean(data, "derived")
        auto_rotate_period = fields.duration(data, "auto_rotate_period")
        if auto_rotate_period != 0 and auto_rotate_period < MIN_AUTO_ROTATE_PERIOD:
            raise bad_request("auto rotate period must be 0 to disable or at least an hour")
        convergent = fields.boolean(data, "convergent_encryption")
        if convergent and not derived:
            raise bad_request("convergent encryption requires derivation to be enabled")
        key_type = fields.string(data, "type", "aes256-gcm96")
        check_key_type(key_type)
        if fields.integer(data, "key_size") != 0:
            raise bad_request(f"key_size is not valid for algorithm {key_type}")
        if convergent:
            raise bad_request(ERR_CONVERGENT)
        existing = self._keys.get(name)
        if existing is not None:
            return Reply(data=key_view(existing), warnings=[f"key {name} already existed"])
        key = new_key(
            name,
            key_type,
            now=call.now,
            derived=derived,
            exportable=fields.boolean(data, "exportable"),
            allow_plaintext_backup=fields.boolean(data, "allow_plaintext_backup"),
            auto_rotate_period=auto_rotate_period,
        )
        self._keys[name] = key
        self._store.save()
        return Reply(data=key_view(key))

    def _delete(self, call: Call, match: re.Match[str]) -> None:
        name = match["name"]
        key = self._keys.get(name)
        if key is None:
            raise bad_request(f"error deleting policy {name}: could not delete key; not found")
        if not key.deletion_allowed:
            raise bad_request(f"error deleting policy {name}: deletion is not allowed for this key")
        del self._keys[name]
        self._store.save()

    def _configure(self, call: Call, match: re.Match[str]) -> Reply:
        name, data = match["name"], call.data
        key = self._keys.get(name)
        if key is None:
            raise bad_request(f"no existing key named {name} could be found")
        # Work on a copy so a rejected request leaves the key untouched.
        candidate = dataclasses.replace(key)
        warnings: list[str] = []
        changed = _apply_versions(candidate, data, warnings)
        changed = _apply_flags(candidate, data) or changed
        if not changed:
            return Reply(data=key_view(candidate), warnings=warnings)
        if candidate.min_available_version > candidate.min_encryption_version:
            raise bad_request(
                "min encryption version should not be less than min available version"
            )
        if candidate.min_available_version > candidate.min_decryption_version:
            raise bad_request(
                "min decryption version should not be less then min available version"
            )
        self._keys[name] = candidate
        self._store.save()
        return Reply(data=key_view(candidate), warnings=warnings)

    def _rotate(self, call: Call, match: re.Match[str]) -> Reply:
        key = self._keys.get(match["name"])
        if key is None:
            raise bad_request("key not found")
        rotate_key(key, call.now)
        self._store.save()
        return Reply(data=key_view(key))

    def _trim(self, call: Call, match: re.Match[str]) -> Reply:
        key = self._keys.get(match["name"])
        if key is None:
            raise bad_request("invalid key name")
        if not fields.present(call.data, "min_available_version"):
            raise bad_request("missing min_available_version")
        wanted = fields.integer(call.data, "min_available_version")
        refusal = _trim_refusal(key, wanted)
        if refusal:
            raise bad_request(refusal)
        key.min_available_version = wanted
        for version in [v for v in key.versions if v < wanted]:
            del key.versions[version]
        self._store.save()
        return Reply(data=key_view(key))

    # encryption ----------------------------------------------------------------

    def _encrypt(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        batch = data.get("batch_input") is not None
        if batch:
            items = decode_batch(data["batch_input"], require="plaintext")
            if not items:
                raise bad_request("missing batch input to process")
        else:
            if not fields.present(data, "plaintext"):
                raise bad_request("missing plaintext to encrypt")
            items = [
                Item(
                    plaintext=fields.string(data, "plaintext"),
                    context=fields.string(data, "context"),
                    nonce=fields.string(data, "nonce"),
                    key_version=fields.integer(data, "key_version"),
                    associated_data=fields.string(data, "associated_data"),
                )
            ]
        results = [Result() for _ in items]
        context_set = bool(items[0].context)
        for item, result in zip(items, results, strict=True):
            if bool(item.context) != context_set:
                raise bad_request(ERR_CONTEXT_MIXED)
            try:
                b64decode_go(item.plaintext)
            except ValueError as exc:
                result.error = str(exc)
                continue
            decode_item_fields(item, result)
        key = self._keys.get(match["name"]) or self._upsert(
            match["name"], call, derived=context_set
        )
        for item, result in zip(items, results, strict=True):
            if result.error:
                continue
            if item.nonce:
                result.error = ERR_NONCE_NOT_ALLOWED
                continue
            run_item(encrypt_item, result, key, item)
        if batch:
            views = [r.encrypted(i.reference) for i, r in zip(items, results, strict=True)]
            return batch_reply({"batch_results": views}, data, results)
        if results[0].error:
            single_failure(results[0])
        return Reply(data=single_ciphertext(results[0]))

    def _upsert(self, name: str, call: Call, *, derived: bool) -> TransitKey:
        data = call.data
        if fields.boolean(data, "convergent_encryption"):
            if not derived:
                raise bad_request(
                    "convergent encryption requires derivation to be enabled, "
                    "so context is required"
                )
            raise bad_request(ERR_CONVERGENT)
        key_type = fields.string(data, "type", "aes256-gcm96")
        if key_type.startswith("ecdsa-"):
            raise bad_request(f"key type {key_type} not supported for this operation")
        check_key_type(key_type)
        key = new_key(name, key_type, now=call.now, derived=derived)
        self._keys[name] = key
        self._store.save()
        return key

    def _decrypt(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        batch, items = _ciphertext_items(
            data, require="ciphertext",
            single=lambda: {"associated_data": fields.string(data, "associated_data")})
        results, key = self._prepared(items, match["name"])
        for item, result in zip(items, results, strict=True):
            if not result.error:
                run_item(decrypt_item, result, key, item)
        if batch:
            views = [r.decrypted(i.reference) for i, r in zip(items, results, strict=True)]
            return batch_reply({"batch_results": views}, data, results)
        if results[0].error:
            single_failure(results[0])
        return Reply(data={"plaintext": results[0].plaintext})

    def _prepared(self, items: list[Item], name: str) -> tuple[list[Result], TransitKey]:
        """Per-item results with field errors filled in, and the key (decrypt and rewrap)."""
        results = self._prepare_decryption(items)
        key = self._keys.get(name)
        if key is None:
            raise bad_request("encryption key not found")
        return results, key

    @staticmethod
    def _prepare_decryption(items: list[Item]) -> list[Result]:
        results = [Result() for _ in items]
        context_set = bool(items[0].context)
        for item, result in zip(items, results, strict=True):
            if bool(item.context) != context_set:
                raise bad_request(ERR_CONTEXT_MIXED)
            if not item.ciphertext:
                result.error = "missing ciphertext to decrypt"
                continue
            decode_item_fields(item, result)
        return results

    def _rewrap(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        batch, items = _ciphertext_items(
            data, require=None,
            single=lambda: {"key_version": fields.integer(data, "key_version")})
        results, key = self._prepared(items, match["name"])
        for item, result in zip(items, results, strict=True):
            if result.error:
                continue
            if item.nonce:
                result.error = ERR_NONCE_NOT_ALLOWED
                continue
            rewrap_item(result, key, item)
        if batch:
            # Unlike encrypt and decrypt, Vault's rewrap answers 200 whatever failed.
            views = [r.encrypted(i.reference) for i, r in zip(items, results, strict=True)]
            return Reply(data={"batch_results": views})
        if results[0].error:
            raise bad_request(results[0].error)
        return Reply(data=single_ciphertext(results[0]))

    def _datakey(self, call: Call, match: re.Match[str]) -> Reply:
        data = call.data
        key_version = fields.integer(data, "key_version")
        context = _decode_parameter(data, "context")
        nonce = _decode_parameter(data, "nonce")
        bits = fields.integer(data, "bits", 256)
        if bits not in (128, 256, 512):
            raise bad_request("invalid bit length")
        kind = match["kind"]
        if kind not in ("plaintext", "wrapped"):
            raise bad_request("Invalid path, must be 'plaintext' or 'wrapped'")
        key = self._keys.get(match["name"])
        if key is None:
            raise bad_request("encryption key not found")
        if nonce:
            raise internal_error(ERR_NONCE_NOT_ALLOWED)
        material = os.urandom(bits // 8)
        encoded = base64.b64encode(material).decode("ascii")
        try:
            ciphertext, _ = encrypt_value(key, key_version, context, encoded, "")
        except UserError as exc:
            raise bad_request(exc.message) from None
        except InternalError as exc:
            raise internal_error(exc.message) from None
        reply: dict[str, Any] = {
            "key_version": key_version or key.latest_version,
            "ciphertext": ciphertext,
        }
        if kind == "plaintext":
            reply["plaintext"] = encoded
        return Reply(data=reply)


# --- helpers ---------------------------------------------------------------------


def _decode_parameter(data: Mapping[str, Any], name: str) -> bytes:
    encoded = fields.string(data, name)
    if not encoded:
        return b""
    try:
        return b64decode_go(encoded)
    except ValueError:
        raise bad_request(f"failed to base64-decode {name}") from None


def _apply_versions(key: TransitKey, data: Mapping[str, Any], warnings: list[str]) -> bool:
    changed = False
    if fields.present(data, "min_decryption_version"):
        wanted = fields.integer(data, "min_decryption_version")
        if wanted < 0:
            raise bad_request("min decryption version cannot be negative")
        if wanted == 0:
            wanted = 1
            warnings.append(
                "since Vault 0.3, transit key numbering starts at 1; forcing minimum to 1"
            )
        if wanted != key.min_decryption_version:
            if wanted > key.latest_version:
                raise bad_request(
                    f"cannot set min decryption version of {wanted}, "
                    f"latest key version is {key.latest_version}"
                )
            key.min_decryption_version = wanted
            changed = True
    if fields.present(data, "min_encryption_version"):
        wanted = fields.integer(data, "min_encryption_version")
        if wanted < 0:
            raise bad_request("min encryption version cannot be negative")
        if wanted != key.min_encryption_version:
            if wanted > key.latest_version:
                raise bad_request(
                    f"cannot set min encryption version of {wanted}, "
                    f"latest key version is {key.latest_version}"
                )
            key.min_encryption_version = wanted
            changed = True
    if 0 < key.min_encryption_version < key.min_decryption_version:
        raise bad_request(
            "cannot set min encryption/decryption values; min encryption version of "
            f"{key.min_encryption_version} must be greater than or equal to min decryption "
            f"version of {key.min_decryption_version}"
        )
    return changed


def _apply_flags(key: TransitKey, data: Mapping[str, Any]) -> bool:
    changed = False
    if fields.present(data, "deletion_allowed"):
        allowed = fields.boolean(data, "deletion_allowed")
        changed = changed or allowed != key.deletion_allowed
        key.deletion_allowed = allowed
    # exportable and allow_plaintext_backup can be switched on, never off.
    if fields.boolean(data, "exportable") and not key.exportable:
        key.exportable = changed = True
    if fields.boolean(data, "allow_plaintext_backup") and not key.allow_plaintext_backup:
        key.allow_plaintext_backup = changed = True
    if fields.present(data, "auto_rotate_period"):
        period = fields.duration(data, "auto_rotate_period")
        if period != 0 and period < MIN_AUTO_ROTATE_PERIOD:
            raise bad_request("auto rotate period must be 0 to disable or at least an hour")
        changed = changed or period != key.auto_rotate_period
        key.auto_rotate_period = period
    return changed


def _trim_refusal(key: TransitKey, wanted: int) -> str:
    if wanted < key.min_available_version:
        return "minimum available version cannot be decremented"
    if key.min_encryption_version == 0:
        return "minimum available version cannot be set when minimum encryption version is not set"
    if key.min_decryption_version == 0:
        return "minimum available version cannot be set when minimum decryption version is not set"
    if wanted > key.min_encryption_version:
        # Vault's own spelling, "minmum", is kept so messages match.
        return "minimum available version cannot be greater than minmum encryption version"
    if wanted > key.min_decryption_version:
        return "minimum available version cannot be greater than minimum decryption version"
    if wanted < 0:
        return "minimum available version cannot be negative"
    if wanted == 0:
        return "minimum available version should be positive"
    return ""


def _ciphertext_items(data: Mapping[str, Any], *, require: str | None,
                      single: Callable[[], dict[str, Any]]) -> tuple[bool, list[Item]]:
    """(is batch, items) for the endpoints that take ciphertexts: decrypt and rewrap.

    ``single`` gives the endpoint's own fields of a non-batch request; it is called only
    then, because Vault ignores top-level fields of a batch request.
    """
    if data.get("batch_input") is not None:
        items = decode_batch(data["batch_input"], require=require)
        if not items:
            raise bad_request("missing batch input to process")
        return True, items
    ciphertext = fields.string(data, "ciphertext")
    if not ciphertext:
        raise bad_request("missing ciphertext to decrypt")
    return False, [Item(ciphertext=ciphertext, context=fields.string(data, "context"),
                        nonce=fields.string(data, "nonce"), **single())]
