"""What makes a class a settings section: :func:`settings_class`.

Every section of keyward's settings is declared with it, so they all behave alike: frozen
pydantic dataclasses with keyword-only fields, unknown settings refused, and a constructor
that raises :class:`~keyward.errors.ConfigError` naming the setting in full instead of
pydantic's ValidationError (whose text may quote a secret; the wording is
``keyward.config_errors``'s). It lives apart from the sections so each of them can import
it without importing the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar, cast, dataclass_transform

import pydantic.dataclasses
from pydantic import ConfigDict, Field, ValidationError

from keyward.config_errors import config_error

_T = TypeVar("_T")


@dataclass_transform(kw_only_default=True, frozen_default=True,
                     field_specifiers=(dataclasses.field, Field))
def settings_class(section: str) -> Callable[[type[_T]], type[_T]]:
    """A frozen pydantic dataclass whose constructor raises ConfigError, not ValidationError.

    ``section`` is where the class sits in the settings (``"vault"``), so an error names
    the setting in full (``vault.timeout_seconds``); ``""`` for classes without a fixed
    place (one certificate, an issuer).
    """

    def build(cls: type[_T]) -> type[_T]:
        built = pydantic.dataclasses.dataclass(frozen=True, kw_only=True,
                                               config=ConfigDict(extra="forbid"))(cls)
        if not getattr(built, "__pydantic_complete__", False):
            # A later rebuild would put pydantic's own __init__ back over the one below.
            raise TypeError(f"{cls.__name__}: define the classes it refers to before it")
        validate = built.__init__

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            try:
                validate(self, *args, **kwargs)
            except ValidationError as exc:
                # from None: pydantic's own message may quote the value of a secret.
                raise config_error(exc, built, section) from None

        __init__.__qualname__ = f"{cls.__qualname__}.__init__"
        built.__init__ = __init__  # type: ignore[method-assign]
        return cast("type[_T]", built)

    return build
