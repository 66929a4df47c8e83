"""keyward's worker: hosts every keyward workflow and activity on one task queue.

    python worker.py --dev        # also start the local stack (Temporal, Vault) if needed
    python worker.py              # use TEMPORAL_* / temporal.toml and VAULT_* / keyward.toml

``--dev`` needs the dev stack, a separate distribution (``pip install -e ./devstack``);
nothing else here imports it.

Exits non-zero with one clear line when settings are bad or Temporal or Vault
cannot be reached at start; stops gracefully on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from keyward.app.worker import StartLocalStack, WorkerApp
from keyward.cli import exit_now, run_entry_point
from keyward.config import Settings, load_settings
from keyward.errors import UsageError
from keyward.log import bind_context, configure_logging

#: What ``--dev`` prints (as ``keyward: ...``, exit 2) when the dev stack is not installed.
DEV_STACK_MISSING = "worker.py --dev needs the dev stack: pip install -e ./devstack"


def local_stack_starter() -> StartLocalStack:
    """The dev stack's ``start_local_stack``; a :class:`UsageError` when it is not installed.

    The dev stack is its own distribution (``keyward-devstack``, in ``devstack/``) that the
    production image does not contain, so it is imported only when ``--dev`` asks for it.
    """
    try:
        from keyward_devstack.stack import start_local_stack  # noqa: PLC0415 - optional
    except ModuleNotFoundError as exc:
        if exc.name != "keyward_devstack":
            raise  # installed but broken: keep the traceback
        raise UsageError(DEV_STACK_MISSING) from None
    return start_local_stack


async def run(settings: Settings, *, local_stack: StartLocalStack | None) -> int:
    """Run the worker until SIGINT or SIGTERM (handled from the first moment, so a signal
    during start-up stops it as soon as it is up)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with WorkerApp(settings, env=os.environ, local_stack=local_stack, stop=stop,
                         out=sys.stdout) as app:
        return await app.run_until_stopped()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true",
                        help="start the embedded local stack (Temporal dev server, dev Vault)")
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $KEYWARD_CONFIG or ./keyward.toml)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        # Before the settings: a missing dev stack is the first thing to fix.
        local_stack = local_stack_starter() if args.dev else None
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        bind_context(component="worker")
        return asyncio.run(run(settings, local_stack=local_stack))

    return run_entry_point(body, action="worker")


def console() -> NoReturn:
    """The ``keyward-worker`` console script (``pip install`` puts it on PATH)."""
    exit_now(main())


if __name__ == "__main__":
    console()
