"""Tracebacks never show local variables: in keyward's frames they hold plaintext.

``rich`` is not installed in this environment, so besides rendering a real exception the
tests check which formatter is configured: structlog picks a locals-showing one by
itself (``rich``, better-exceptions) whenever one is importable.
"""

from __future__ import annotations

import inspect
import io
import logging
import secrets
from collections.abc import Iterator
from typing import TextIO

import pytest
import structlog
from structlog.typing import ExcInfo

from keyward.config import LoggingSettings
from keyward.log import configure_logging, get_logger


@pytest.fixture
def restore_logging() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    logging.getLogger().setLevel(level)


def decrypt_and_fail(plaintext: str) -> None:
    """A frame that holds a secret in a local when it raises."""
    decrypted_payload = plaintext  # noqa: F841 - the local a locals-dump would print
    data_key = bytes.fromhex(plaintext)  # noqa: F841
    raise RuntimeError("decoding failed")


def show_locals(sio: TextIO, exc_info: ExcInfo) -> None:
    """What ``rich``'s formatter (structlog's default when rich is installed) does: the
    traceback *with every frame's local variables*."""
    traceback = exc_info[2]
    while traceback is not None:
        sio.write(f"{traceback.tb_frame.f_code.co_name}: {traceback.tb_frame.f_locals!r}\n")
        traceback = traceback.tb_next
    sio.write(f"{exc_info[0].__name__}: {exc_info[1]}\n")


@pytest.fixture
def rich_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """structlog as it behaves with ``rich`` importable: a locals-showing default."""
    renderer_init = structlog.dev.ConsoleRenderer.__init__
    defaults = list(renderer_init.__defaults__ or ())
    names = list(inspect.signature(renderer_init).parameters)[1:]
    offset = len(names) - len(defaults)
    defaults[names.index("exception_formatter") - offset] = show_locals
    monkeypatch.setattr(renderer_init, "__defaults__", tuple(defaults))
    monkeypatch.setattr(structlog.dev, "default_exception_formatter", show_locals)
    monkeypatch.setattr(structlog.dev, "default_monochrome_exception_formatter", show_locals)


@pytest.mark.usefixtures("restore_logging", "rich_installed")
@pytest.mark.parametrize("fmt", ["console", "json"])
def test_an_exception_renders_without_its_frames_locals(fmt: str) -> None:
    """A logged exception raised in a frame holding a decrypted payload and data-key bytes
    renders the traceback (frames, message) but not those locals' values, even where
    structlog's default would show locals (``rich`` installed)."""
    stream = io.StringIO()
    configure_logging(LoggingSettings(format=fmt), stream=stream)  # type: ignore[arg-type]
    plaintext = secrets.token_hex(16)
    try:
        decrypt_and_fail(plaintext)
    except RuntimeError:
        get_logger("keyward.test").exception("codec failed")
    output = stream.getvalue()
    assert "decrypt_and_fail" in output
    assert "RuntimeError: decoding failed" in output
    assert plaintext not in output
    assert bytes.fromhex(plaintext).hex() not in output
    assert repr(bytes.fromhex(plaintext)) not in output


@pytest.mark.usefixtures("restore_logging", "rich_installed")
def test_the_console_renderer_uses_plain_tracebacks() -> None:
    """The console renderer is configured with structlog's plain traceback formatter,
    whatever structlog would pick by default, and on a terminal too."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    configure_logging(LoggingSettings(format="console"), stream=Terminal())
    [handler] = logging.getLogger().handlers
    formatter = handler.formatter
    assert isinstance(formatter, structlog.stdlib.ProcessorFormatter)
    renderers = [p for p in formatter.processors
                 if isinstance(p, structlog.dev.ConsoleRenderer)]
    assert len(renderers) == 1
    assert renderers[0].exception_formatter is structlog.dev.plain_traceback
