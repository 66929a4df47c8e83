"""keyward's worker: hosts every keyward workflow and activity on one task queue.

    python worker.py --dev        # also start the local stack (Temporal, Vault) if needed
    python worker.py              # use TEMPORAL_* / temporal.toml and VAULT_* / keyward.toml

Exits non-zero with one clear line when settings are bad or Temporal or Vault
cannot be reached at start; stops gracefully on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from keyward.codec.converter import CodecBundle, encrypting_converter
from keyward.codecserver.runner import RunningCodecServer, start_codec_server
from keyward.config import Settings, load_settings
from keyward.connect.temporal import connect_temporal
from keyward.devstack.stack import LocalStack, start_local_stack
from keyward.errors import ConfigError, KeywardError
from keyward.log import bind_context, configure_logging, get_logger
from keyward.vault.client import VaultSession, connect_vault
from workflows import ALL_WORKFLOWS

ACTIVITY_THREADS = 16


def build_worker(client: Client, settings: Settings, vault: VaultSession,
                 executor: concurrent.futures.Executor) -> Worker:
    """The worker with every workflow and activity registered (also used by tests)."""
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=list(ALL_WORKFLOWS),
        activities=build_activities(vault=vault.client),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
    )


async def run(settings: Settings, *, dev: bool) -> int:
    log = get_logger("keyward.worker")
    env = dict(os.environ)
    stack: LocalStack | None = None
    vault: VaultSession | None = None
    codec: CodecBundle | None = None
    codec_server: RunningCodecServer | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if dev:
            stack = await start_local_stack(settings, env)
            settings, env = stack.settings, stack.env
            stack.describe(sys.stdout)
        vault = await asyncio.to_thread(connect_vault, settings.vault)
        codec = encrypting_converter(settings, vault, env)
        client = await connect_temporal(settings.temporal, env=env, data_converter=codec.converter)
        with concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS,
                                                   thread_name_prefix="activity") as executor:
            if stack is not None and stack.codec_server is not None:
                codec_server = await start_codec_server(stack.codec_server, codec.codec)
            worker = build_worker(client, settings, vault, executor)
            running = asyncio.create_task(worker.run())
            log.info("worker started", task_queue=settings.temporal.task_queue,
                     namespace=client.namespace, temporal=env.get("TEMPORAL_ADDRESS"),
                     vault=settings.vault.address, codec_mode=settings.codec.mode)
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if running in done:
                running.result()  # the worker failed on its own: surface why
                return 1
            log.info("shutting down: finishing in-flight tasks")
            await worker.shutdown()
            log.info("worker stopped")
    finally:
        if codec_server is not None:
            await codec_server.stop()
        if codec is not None:
            await codec.close()
        if vault is not None:
            vault.close()
        if stack is not None:
            stack.stop()
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__.splitlines()[0])
    parser.add_argument("--dev", action="store_true",
                        help="start the embedded local stack (Temporal dev server, dev Vault)")
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $KEYWARD_CONFIG or ./keyward.toml)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        bind_context(component="worker")
        return asyncio.run(run(settings, dev=args.dev))
    except ConfigError as exc:
        print(f"keyward: {exc}", file=sys.stderr)
        return 2
    except KeywardError as exc:
        print(f"keyward: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
