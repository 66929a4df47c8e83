"""What every keyward entry point does around its work: one clear line per expected error,
exit codes (2 bad settings or usage, 1 failure, 130 interrupted), and an exit that survives the
Temporal SDK's runtime threads.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn

from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, FailureError

from keyward.errors import ConfigError, KeywardError, UsageError


def failure_message(exc: BaseException) -> str:
    """The message that says what went wrong in a Temporal failure's cause chain.

    That is the outermost application error's (the one keyward raised on purpose, e.g.
    "Vault read transit key transit/x failed (HTTP 404)"), else the innermost message:
    the wrappers around it ("Workflow execution failed", "Activity task failed") say
    nothing an operator can act on.
    """
    messages: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ApplicationError):
            return current.message
        messages.append(current.message if isinstance(current, FailureError) else str(current))
        current = current.__cause__  # Temporal's failure errors chain their causes here
    return next((m for m in reversed(messages) if m), type(exc).__name__)


def run_entry_point(body: Callable[[], int], *, action: str) -> int:
    """Run ``body``, turning keyward's expected errors into one line on stderr."""
    try:
        return body()
    except (ConfigError, UsageError) as exc:
        print(f"keyward: {exc}", file=sys.stderr)
        return 2
    except KeywardError as exc:
        print(f"keyward: {exc}", file=sys.stderr)
        return 1
    except (WorkflowFailureError, ApplicationError) as exc:
        print(f"keyward: {action} failed: {failure_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def exit_now(code: int) -> NoReturn:
    """Exit without interpreter teardown, once the output is out.

    The Temporal client's Rust runtime threads can still be calling into Python when
    the interpreter finalizes, which aborts a process that already finished cleanly
    ("Fatal Python error: PyGILState_Release", exit 134; temporalio/sdk-python#300).
    Every resource has been released by the time this runs.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
