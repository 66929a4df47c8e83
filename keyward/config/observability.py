"""The ``[metrics]`` and ``[logging]`` sections: how a keyward process can be watched.

The worker's Prometheus and health endpoint, and the log format and level every keyward
process (worker, codec server, starter, the dev stack's gateway) uses.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import BeforeValidator

from keyward.config.section import settings_class
from keyward.config.values import NUMBER, checked_by


def _port_or_zero(value: Any) -> str | None:
    return None if 0 <= value < 65536 else "must be a TCP port, or 0 for off"


@settings_class("metrics")
class MetricsSettings:
    """The worker's Prometheus endpoint (``/metrics``) and health check (``/health``)."""

    host: str = "127.0.0.1"
    #: 0 turns the endpoint off.
    port: Annotated[int, NUMBER, checked_by(_port_or_zero)] = 0


_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")


def _level_name(value: Any) -> Any:
    """``level = "debug"`` is DEBUG; a name that is no level is reported as written."""
    return value.upper() if isinstance(value, str) and value.upper() in _LEVELS else value


@settings_class("logging")
class LoggingSettings:
    """``auto`` picks console output on a terminal and JSON lines otherwise."""

    format: Literal["auto", "json", "console"] = "auto"
    level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"],
                     BeforeValidator(_level_name)] = "INFO"
