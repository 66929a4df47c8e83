"""Settings problems in keyward's words: pydantic's validation errors as one ConfigError.

A settings class raises :class:`ConfigError` (``invalid setting vault.timeout_seconds:
must be a number (got 'soon')``), never pydantic's ValidationError, whose text is meant
for developers and may quote a secret. The validators in ``keyward.config`` report
through :func:`problem` and :func:`problem_with_value`; everything else pydantic
itself reports is translated here, by error type, into the texts operators have been
seeing (and the runbooks list).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Final, get_args, get_origin

from pydantic import ValidationError
from pydantic_core import ErrorDetails, PydanticCustomError

from keyward.errors import ConfigError
from keyward.secrets import Secret

#: A problem shown as it is (a rule about several settings, a name Vault refuses).
PROBLEM: Final = "keyward"
#: A problem about one value, shown with the value: "must be greater than 0 (got -1)".
PROBLEM_WITH_VALUE: Final = "keyward_value"

_MASK: Final = "'**********'"
_SECRET_WORDS: Final = ("token", "secret", "password", "key_material")
_NUMBER_ERRORS: Final = frozenset({"float_parsing", "float_type", "int_parsing", "int_type",
                                   "finite_number"})


def problem(text: str, *, at: str = "") -> PydanticCustomError:
    """A problem in a validator; ``at`` names the setting when a whole class raises it."""
    return PydanticCustomError(PROBLEM, "{problem}", {"problem": text, "at": at})


def problem_with_value(text: str) -> PydanticCustomError:
    """A problem with one value, which the message then shows (unless it is a secret)."""
    return PydanticCustomError(PROBLEM_WITH_VALUE, "{problem}", {"problem": text, "at": ""})


def config_error(exc: ValidationError, root: type[Any], prefix: str) -> ConfigError:
    """The first of ``exc``'s errors, raised validating ``root``, as a ConfigError.

    ``prefix`` is where ``root`` sits in the settings (``"vault"`` for VaultSettings,
    ``""`` for Settings itself), so the setting is named by its full dotted path.
    """
    error = exc.errors()[0]
    place = _Place.find(root, error["loc"])
    context = error.get("ctx") or {}
    if context.get("at"):
        place.names.append(str(context["at"]))
    setting = ".".join(part for part in (prefix, *place.names) if part) or prefix or "settings"
    return ConfigError(setting, _problem_text(error, place, setting))


@dataclasses.dataclass
class _Place:
    """Where an error's location points: the names an operator writes, and what is there."""

    names: list[str]
    #: The settings class that holds the last name (for "known in [...]" lists).
    owner: Any
    #: The annotation of the value there (None past the known settings).
    annotation: Any
    #: The (field, tag) of the issuer/install variant the location went through.
    variant: tuple[str, str] | None = None

    @classmethod
    def find(cls, root: type[Any], loc: tuple[int | str, ...]) -> _Place:
        place = cls(names=[], owner=root, annotation=root)
        parts = [part for part in loc if isinstance(part, str) and part != "[key]"]
        while parts:
            part = parts.pop(0)
            current = place.annotation
            fields = _fields(current)
            if fields is not None:
                place.owner = current
                if part not in fields:
                    place.names.append(part)
                    place.annotation = None
                    continue
                annotation = _strip(fields[part].annotation)
                members = _variants(annotation)
                if members and parts and parts[0] in members:
                    # Inside an issuer/install variant: its settings are the certificate's
                    # own flat names (certificates.w.ca_cert), not …issuer.local-ca.ca_cert.
                    tag = parts.pop(0)
                    place.variant = (part, tag)
                    place.annotation = members[tag]
                    continue
                place.names.append(part)
                place.annotation = annotation
            elif get_origin(current) is dict:
                place.names.append(part)
                place.annotation = _strip(get_args(current)[1])
            else:
                place.names.append(part)
                place.annotation = None
        return place

    @property
    def secret(self) -> bool:
        return self.annotation is Secret or any(
            word in name for name in self.names[-1:] for word in _SECRET_WORDS)

    def known(self) -> str:
        names = getattr(self.owner, "settings_names", None) or tuple(_fields(self.owner) or ())
        return ", ".join(names)


def _problem_text(error: ErrorDetails, place: _Place, setting: str) -> str:
    kind = error["type"]
    context = error.get("ctx") or {}
    value = error.get("input")
    shown = _MASK if place.secret else repr(value)
    if kind == PROBLEM:
        return str(context["problem"])
    if kind == PROBLEM_WITH_VALUE:
        return f"{context['problem']} (got {shown})"
    if kind == "missing":
        if place.variant is not None:
            return f"required when {place.variant[0]} = {place.variant[1]!r}"
        return "required"
    if kind in ("unexpected_keyword_argument", "extra_forbidden"):
        parent = setting.rpartition(".")[0]
        return f"unknown setting; known in [{parent}]: {place.known()}" if parent \
            else f"unknown setting; known: {place.known()}"
    if kind in _NUMBER_ERRORS:
        return f"must be a number (got {shown})"
    if kind == "int_from_float":
        return f"must be a whole number (got {shown})"
    if kind == "string_type":
        return "must be a string" if place.secret else f"must be a string (got {shown})"
    if kind == "literal_error":
        expected = str(context.get("expected", "")).replace(" or ", ", ")
        return f"must be one of {expected} (got {shown})"
    if kind == "union_tag_invalid":
        return f"must be one of {context.get('expected_tags')} (got {context.get('tag')!r})"
    if kind in ("path_type", "path_parsing"):
        return f"must be a file path (got {shown})"
    if kind in ("dict_type", "mapping_type", "dataclass_type", "dataclass_args_type",
                "model_type", "model_attributes_type"):
        return "must be a table" if place.secret else f"must be a table (got {shown})"
    if kind in ("tuple_type", "list_type", "iterable_type"):
        return f"must be a list of strings (got {shown})"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false (got {shown})"
    return str(error["msg"])


def _fields(annotation: Any) -> dict[str, Any] | None:
    fields = getattr(annotation, "__pydantic_fields__", None)
    return fields if isinstance(fields, dict) else None


def _strip(annotation: Any) -> Any:
    """``Annotated[X | None, ...]`` → ``X``: the type a value is checked against."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if get_origin(annotation) in (types.UnionType, typing.Union):
            options = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(options) == 1:
                annotation = options[0]
                continue
        return annotation


def _variants(annotation: Any) -> dict[str, Any]:
    """The members of a union of settings classes by their ``kind`` tag, else nothing."""
    if get_origin(annotation) not in (types.UnionType, typing.Union):
        return {}
    members: dict[str, Any] = {}
    for option in get_args(annotation):
        fields = _fields(option)
        if fields is None or "kind" not in fields:
            return {}
        members[str(fields["kind"].default)] = option
    return members
