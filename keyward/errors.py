"""The one exception hierarchy keyward raises, and its one failure model.

Entry points catch :class:`KeywardError` and print its message as a single line;
anything else is a bug and keeps its traceback. Activities turn one into a Temporal
failure with ``keyward.temporal.failures.to_application_error``: its ``failure_type``
becomes the ``ApplicationError`` type and ``retryable`` decides ``non_retryable``.
"""

from __future__ import annotations

from typing import Any


class KeywardError(Exception):
    """Base class of every error keyward raises on purpose.

    ``retryable`` says whether trying the same thing again may help (class default
    False: an error is permanent unless its class or the raiser says otherwise).
    ``failure_type`` is the name Temporal failures, alerts and histories carry: by
    default the class's own name, which a subclass may set to a constant of
    ``keyward.contracts.failures``; an instance may override either, keyword-only::

        KeywardError("floor above latest", failure_type=INVALID_FLOOR)
    """

    retryable: bool = False
    failure_type: str = "KeywardError"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "failure_type" not in cls.__dict__:
            cls.failure_type = cls.__name__

    def __init__(self, *args: object, retryable: bool | None = None,
                 failure_type: str | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable
        if failure_type is not None:
            self.failure_type = failure_type


class ConfigError(KeywardError):
    """A setting is missing, malformed or out of range.

    The message always names the setting (``vault.address``) so a person can fix
    it without reading code.
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        self.problem = problem
        super().__init__(f"invalid setting {setting}: {problem}")


class UsageError(KeywardError):
    """The command line asks for something this installation cannot do (exit 2, as a
    bad setting): the message says what to run or install instead."""


class StartupError(KeywardError):
    """A dependency (Temporal, Vault, a port) is not usable when a process starts."""
