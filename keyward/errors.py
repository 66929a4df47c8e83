"""The one exception hierarchy keyward raises.

Entry points catch :class:`KeywardError` and print its message as a single line;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class KeywardError(Exception):
    """Base class of every error keyward raises on purpose."""


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
