"""Vault names that may reach a URL: validated where they enter, quoted where they are used.

A Transit key name arrives from places keyward does not control: the metadata of a
payload anyone can craft (``temporal workflow start --input-meta keyward-key=…``), a
workflow input, a codec-server request. Put into a URL unchecked, ``../keys/x/rotate``
makes keyward POST wherever it likes with its own Vault token. So every name is held to
Vault's own rule for the path segment it fills before any request is built, and is
percent-quoted as one segment as well (belt and braces: a name that passes the rule has
nothing to quote).

Vault's rule is ``framework.GenericNameRegex``: ``\\w(([\\w-.@]+)?\\w)?`` in Go, where
``\\w`` is ASCII ``[0-9A-Za-z_]``. Python's ``\\w`` is Unicode, so the class is spelt out.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import quote

from keyward.errors import KeywardError

#: Vault's GenericNameRegex with ASCII word characters.
_NAME: Final = re.compile(r"[0-9A-Za-z_](?:[0-9A-Za-z_\-.@]*[0-9A-Za-z_])?")
#: One segment of a mount path: Vault accepts more, keyward needs no more than this.
_MOUNT_SEGMENT: Final = re.compile(r"[0-9A-Za-z_\-.]+")
#: No Vault limit; a bound keeps hostile input from growing caches and log lines.
MAX_NAME_LENGTH: Final = 128


class InvalidVaultName(KeywardError, ValueError):
    """A key name or mount path that Vault's naming rule does not allow."""


def check_key_name(name: object, *, what: str = "Transit key name") -> str:
    """``name`` if it is a valid Vault key name, else :class:`InvalidVaultName`."""
    if not isinstance(name, str):
        raise InvalidVaultName(f"{what} must be a string, got {type(name).__name__}")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidVaultName(f"{what} is longer than {MAX_NAME_LENGTH} characters")
    if _NAME.fullmatch(name) is None:
        raise InvalidVaultName(
            f"{what} {_shown(name)} is not a Vault name: letters, digits and _ at both ends, "
            "and - . @ only inside")
    return name


def is_key_name(name: object) -> bool:
    try:
        check_key_name(name)
    except InvalidVaultName:
        return False
    return True


def check_mount(mount: object) -> str:
    """``mount`` if it is a mount path like ``transit`` or ``team/transit``."""
    if not isinstance(mount, str):
        raise InvalidVaultName(f"mount path must be a string, got {type(mount).__name__}")
    segments = mount.split("/")
    if len(mount) > MAX_NAME_LENGTH or not all(
            _MOUNT_SEGMENT.fullmatch(part) and part not in (".", "..") for part in segments):
        raise InvalidVaultName(
            f"mount path {_shown(mount)} must be segments of letters, digits, _ - . joined by "
            "/ (no leading or trailing /, no '.' or '..' segment)")
    return mount


def segment(name: str) -> str:
    """``name`` percent-quoted as one URL path segment (``/`` included)."""
    return quote(name, safe="")


def _shown(value: str) -> str:
    """A hostile value as it may appear in an error: bounded, and printable."""
    text = value if len(value) <= 64 else value[:64] + "…"
    return ascii(text)
