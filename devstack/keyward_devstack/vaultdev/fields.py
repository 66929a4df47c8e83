"""Reading typed parameters out of a request body the way Vault's framework does.

Vault is lenient about JSON types: ``"true"`` is a boolean, ``"5"`` is an
integer, a comma-separated string is a list. Clients rely on that (hvac sends
some lists as comma-joined strings), so each reader here accepts what Vault's
field types accept and rejects the rest with a 400.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyward_devstack.vaultdev.durations import DurationError, parse_seconds
from keyward_devstack.vaultdev.errors import VaultApiError, bad_request

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _conversion_error(key: str, raw: object, reason: str) -> VaultApiError:
    return bad_request(
        f'Field validation failed: error converting input {raw!r} for field "{key}": {reason}'
    )


def present(data: Mapping[str, Any], key: str) -> bool:
    """Whether ``key`` was sent with a value (JSON ``null`` counts as absent)."""
    return data.get(key) is not None


def string(data: Mapping[str, Any], key: str, default: str = "") -> str:
    """A string parameter; numbers and booleans are converted as Vault does."""
    raw = data.get(key)
    if raw is None:
        return default
    if isinstance(raw, str):
        return raw
    if isinstance(raw, bool):
        return "1" if raw else "0"
    if isinstance(raw, int | float):
        return str(raw)
    raise _conversion_error(key, raw, "expected a string")


def integer(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    """An integer parameter, from a JSON number or a numeric string."""
    raw = data.get(key)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw.strip()) if raw.strip() else default
        except ValueError:
            raise _conversion_error(key, raw, "not an integer") from None
    raise _conversion_error(key, raw, "not an integer")


def boolean(data: Mapping[str, Any], key: str, default: bool = False) -> bool:
    """A boolean parameter; accepts Go's ``strconv.ParseBool`` spellings."""
    raw = data.get(key)
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float):
        return raw != 0
    if isinstance(raw, str):
        if raw in _TRUE:
            return True
        if raw in _FALSE:
            return False
    raise _conversion_error(key, raw, "not a boolean")


def duration(data: Mapping[str, Any], key: str, default: int = 0) -> int:
    """A duration parameter in whole seconds (``3600``, ``"1h"``, ``"90m"``)."""
    raw = data.get(key)
    if raw is None:
        return default
    try:
        return parse_seconds(raw)
    except DurationError as exc:
        raise _conversion_error(key, raw, str(exc)) from None


def string_list(data: Mapping[str, Any], key: str) -> list[str] | None:
    """A list of strings from a JSON list or a comma-separated string.

    Returns None when the parameter was not sent, so updates can tell
    "leave alone" from "set to empty".
    """
    raw = data.get(key)
    if raw is None:
        return None
    if isinstance(raw, str):
        items: list[object] = list(raw.split(","))
    elif isinstance(raw, list):
        items = list(raw)
    else:
        raise _conversion_error(key, raw, "expected a list of strings")
    result: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise _conversion_error(key, raw, "expected a list of strings")
        if item.strip():
            result.append(item.strip())
    return result


def first_present(data: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` present in ``data`` (for deprecated aliases)."""
    for key in keys:
        if present(data, key):
            return key
    return None
