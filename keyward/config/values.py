"""The kinds of value settings hold, each read from what TOML or the environment gives.

``Positive``, ``Port``, ``Mount``, ``Strings``, ``MaybePath`` and the rest: annotated types
whose validators accept a TOML value or an environment variable's string (``"30"``,
``"true"``, ``"a,b"``, ``"ns1=key1,ns2=key2"``) and report a problem in the words
operators see (``must be greater than 0 (got -1)``). Every section uses them, so they live
in one place; so does :func:`files_exist`, the disk check behind ``check_files``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import urlparse

from pydantic import AfterValidator, BeforeValidator

from keyward.config_errors import problem, problem_with_value
from keyward.errors import ConfigError
from keyward.secrets import Secret
from keyward.vault.names import InvalidVaultName, check_key_name, check_mount


def checked_by(check: Callable[[Any], str | None]) -> AfterValidator:
    def run(value: Any) -> Any:
        if value is not None and (found := check(value)):
            raise problem_with_value(found)
        return value

    return AfterValidator(run)


def _blank_is_none(value: Any) -> Any:
    """An optional setting given as ``""`` (``KEYWARD_VAULT__CA_CERT=``) is not set."""
    return None if value == "" else value


def _not_a_bool(value: Any) -> Any:
    # pydantic would read true as 1; a number setting given a boolean is a mistake.
    if isinstance(value, bool):
        raise problem_with_value("must be a number")
    return value


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _flag(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise problem_with_value("must be true or false")


def _strings(value: Any) -> Any:
    """A list of strings; from the environment, comma-separated."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise problem_with_value("must be a list of strings")
    return tuple(item.strip() for item in items if item.strip())


def _names(value: Any) -> Any:
    """One name or a list of them; a string is one name, commas and all ("Acme, Inc.")."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise problem_with_value("must be a string or a list of strings")
    if not all(item.strip() for item in items):
        raise problem_with_value("must not be empty")
    return tuple(item.strip() for item in items)


def _country(value: Any) -> Any:
    """An ISO 3166 alpha-2 code: two ASCII letters, written in capitals as X.509 has them."""
    if value is None or value == "":
        return None
    if not (isinstance(value, str) and len(value) == 2 and value.isascii()
            and value.isalpha()):
        raise problem_with_value("must be a two-letter ISO 3166 country code such as 'DE'")
    return value.upper()


def at_most(characters: int) -> AfterValidator:
    """Each string (or the one string) no longer than ``characters`` (X.520's upper bounds)."""
    def check(value: Any) -> str | None:
        items = (value,) if isinstance(value, str) else value
        if any(len(item) > characters for item in items):
            return f"must be at most {characters} characters"
        return None

    return checked_by(check)


def table(value: Any) -> Any:
    """A table; from the environment, ``ns1=key1,ns2=key2``."""
    if isinstance(value, str):
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in value.split(","))):
            left, sep, right = item.partition("=")
            if not sep or not left.strip():
                raise problem(f"must look like 'namespace=key,...' (got {item!r})")
            pairs[left.strip()] = right.strip()
        return pairs
    if not isinstance(value, dict):
        raise problem(f"must be a table of strings (got {value!r})")
    return value


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _fraction(value: Any) -> str | None:
    return None if 0 < value <= 1 else "must be greater than 0 and at most 1"


def _port(value: Any) -> str | None:
    return None if 0 < value < 65536 else "must be a TCP port between 1 and 65535"


def http_url(value: Any) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return "must be an http:// or https:// URL"
    return None


def _mount(value: Any) -> str | None:
    try:
        check_mount(value)
    except InvalidVaultName:
        return "must be a mount path like 'transit' or 'team/transit' (no leading/trailing /)"
    return None


def _non_empty(value: Any) -> str | None:
    return None if value else "must not be empty"


def key_name(value: str) -> str:
    try:
        return check_key_name(value)
    except InvalidVaultName as exc:
        raise problem(str(exc)) from None


_BLANK_IS_NONE: Final = BeforeValidator(_blank_is_none)
NUMBER: Final = BeforeValidator(_not_a_bool)

Number = Annotated[float, NUMBER]
Positive = Annotated[float, NUMBER, checked_by(_positive)]
PositiveInt = Annotated[int, NUMBER, checked_by(_positive)]
Fraction = Annotated[float, NUMBER, checked_by(_fraction)]
Port = Annotated[int, NUMBER, checked_by(_port)]
Flag = Annotated[bool, BeforeValidator(_flag)]
NonEmpty = Annotated[str, checked_by(_non_empty)]
Mount = Annotated[str, checked_by(_mount)]
MaybeMount = Annotated[str | None, _BLANK_IS_NONE, checked_by(_mount)]
HttpUrl = Annotated[str, checked_by(http_url)]
ConfigPath = Annotated[Path, AfterValidator(Path.expanduser)]
Strings = Annotated[tuple[str, ...], BeforeValidator(_strings)]
KeyName = Annotated[str, AfterValidator(key_name)]
MaybeText = Annotated[str | None, _BLANK_IS_NONE]
MaybePath = Annotated[ConfigPath | None, _BLANK_IS_NONE]
MaybeSecret = Annotated[Secret | None, _BLANK_IS_NONE]
MaybeHours = Annotated[Number | None, _BLANK_IS_NONE]
MaybeInt = Annotated[int | None, _BLANK_IS_NONE, NUMBER]
#: Subject attributes (X.520 upper bounds, RFC 5280 appendix A): O and OU up to 64
#: characters each, one or several; ST and L one of up to 128; C two letters.
Names64 = Annotated[tuple[str, ...], BeforeValidator(_names), at_most(64)]
MaybeName128 = Annotated[str | None, _BLANK_IS_NONE, at_most(128)]
MaybeCountry = Annotated[str | None, BeforeValidator(_country)]


def files_exist(section: str, settings: object, *names: str) -> None:
    """The explicit disk check :func:`load_settings` runs (constructors never do)."""
    for name in names:
        path = getattr(settings, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"{section}.{name}", f"file not found: {path}")

