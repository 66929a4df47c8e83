"""structlog setup: JSON lines in production, console in development, secrets redacted.

Everything goes through one pipeline: keyward's own structlog loggers *and* the
standard-library loggers of temporalio, hvac, aiohttp and urllib3 (through
``ProcessorFormatter``), so the redaction processor sees every line, including
the ones third-party code writes.

Redaction works on three levels, because no single one is enough:

* by key: a field named like a secret (``token``, ``plaintext``, ``data_key``...)
  is replaced whatever its value;
* by shape: PEM private-key blocks, Vault tokens, JWTs and ``Bearer`` credentials
  are cut out of any string;
* by value: every :class:`keyward.secrets.Secret` and every registered data key
  is scrubbed wherever it appears verbatim.

Tracebacks are rendered plain (frames and source lines, never local variables) in
both formats: a local in a codec frame holds plaintext, and no redaction pass can
know which value in a locals dump is secret.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, Final, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger
from temporalio import activity, workflow

from keyward.config import LoggingSettings
from keyward.secrets import REGISTRY, Secret

REDACTED: Final = "[REDACTED]"

_SECRET_KEY: Final = re.compile(
    r"(token|secret|password|passwd|private_key|privatekey|plaintext|data_?key|api_?key|"
    r"authorization|credential|client_key|key_material|secret_id)",
    re.IGNORECASE,
)
# Keys that contain a secret-looking word but hold something harmless and useful.
_SAFE_KEYS: Final = frozenset({"token_ttl", "token_policies", "key_id", "key_version",
                               "token_accessor", "token_renewable", "token_expires_in"})

_SECRET_PATTERNS: Final = (
    # Any PEM block holding a private key (PKCS#1, PKCS#8, EC, encrypted).
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)",
               re.DOTALL),
    # Vault service/batch/recovery tokens, current (hvs.) and legacy (s.) formats.
    re.compile(r"\b(hv[sbr]\.[A-Za-z0-9_-]{20,}|[sbr]\.[A-Za-z0-9]{24})\b"),
    # Compact JWS (three base64url segments starting with a JSON header).
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
)


def redact_text(text: str) -> str:
    """Remove secrets from free text (exception messages, URLs, library output)."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(REDACTED, text)
    return REGISTRY.scrub(text)


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, Secret):
        return str(value)
    if key and key.lower() not in _SAFE_KEYS and _SECRET_KEY.search(key) and value:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        # Raw bytes in a log line are almost always payload or key material.
        return f"<{len(value)} bytes>"
    if isinstance(value, Mapping):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value("", v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def redact_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence before anything is rendered."""
    for key in list(event_dict):
        event_dict[key] = _redact_value("" if key == "event" else key, event_dict[key])
    return event_dict


def redact_rendered(_logger: WrappedLogger, _method: str, rendered: Any) -> Any:
    """Scrub the final string too: renderers format exceptions after the dict pass."""
    return redact_text(rendered) if isinstance(rendered, str) else rendered


def add_temporal_context(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """Bind workflow/activity identity to every line logged inside one.

    Inside a workflow, lines logged while replaying history are dropped: they
    were already written when the code first ran.
    """
    if activity.in_activity():
        info = activity.info()
        event_dict.setdefault("activity_type", info.activity_type)
        event_dict.setdefault("activity_id", info.activity_id)
        event_dict.setdefault("attempt", info.attempt)
        event_dict.setdefault("workflow_id", info.workflow_id)
        event_dict.setdefault("workflow_run_id", info.workflow_run_id)
        event_dict.setdefault("namespace", info.namespace)
        event_dict.setdefault("task_queue", info.task_queue)
    elif workflow.in_workflow():
        if workflow.unsafe.is_replaying():
            raise structlog.DropEvent
        winfo = workflow.info()
        event_dict.setdefault("workflow_type", winfo.workflow_type)
        event_dict.setdefault("workflow_id", winfo.workflow_id)
        event_dict.setdefault("workflow_run_id", winfo.run_id)
        event_dict.setdefault("namespace", winfo.namespace)
        event_dict.setdefault("task_queue", winfo.task_queue)
    return event_dict


def _flatten_temporal_extra(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """temporalio's own loggers attach a ``temporal_workflow``/``temporal_activity`` dict."""
    record = event_dict.get("_record")
    if record is not None:
        for attr in ("temporal_workflow", "temporal_activity"):
            extra = getattr(record, attr, None)
            if isinstance(extra, Mapping):
                for k, v in extra.items():
                    event_dict.setdefault(k, v)
    return event_dict


def _wants_json(settings: LoggingSettings, stream: TextIO) -> bool:
    if settings.format == "auto":
        return not stream.isatty()
    return settings.format == "json"


def configure_logging(settings: LoggingSettings, *, stream: TextIO | None = None) -> None:
    """Route structlog and the standard library through one redacting pipeline."""
    stream = stream or sys.stderr
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _flatten_temporal_extra,
        add_temporal_context,
    ]
    renderer: Processor
    final: list[Processor]
    if _wants_json(settings, stream):
        final = [structlog.processors.format_exc_info, redact_secrets,
                 structlog.processors.JSONRenderer()]
    else:
        # Plain tracebacks, always: with ``rich`` (or better-exceptions) installed,
        # structlog's default formatter prints every frame's local variables, which here
        # means decrypted payloads and data-key bytes, past any redaction by key.
        final = [redact_secrets, structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback)]
    renderer = final[-1]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    *final[:-1], renderer, redact_rendered],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level)
    # Libraries that log request details at INFO/DEBUG stay at WARNING.
    for noisy in ("urllib3", "aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None, **bound: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger.bind(**bound) if bound else logger


def bind_context(**values: Any) -> None:
    """Bind values (e.g. ``component="worker"``) to every line of this task/thread."""
    structlog.contextvars.bind_contextvars(**values)


__all__ = [
    "REDACTED",
    "add_temporal_context",
    "bind_context",
    "configure_logging",
    "get_logger",
    "redact_secrets",
    "redact_text",
]

