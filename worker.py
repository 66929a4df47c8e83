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
import concurrent.futures
import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.worker import Worker

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.cli import exit_now, run_entry_point
from keyward.codec.converter import encrypting_converter
from keyward.codecserver.runner import start_codec_server
from keyward.config import Settings, load_settings
from keyward.connect.api_key import ApiKeyReloader
from keyward.connect.reload import ClientCertificateReloader, ClientTLSFiles
from keyward.connect.temporal import connect_temporal
from keyward.errors import UsageError
from keyward.log import bind_context, configure_logging, get_logger
from keyward.metrics import MetricsServer
from keyward.rotation.reporter import UsageReporter
from keyward.vault.client import connect_vault

if TYPE_CHECKING:
    from keyward_devstack.stack import LocalStack

#: The dev stack's entry: starts what is not running and says where everything is.
StartLocalStack = Callable[[Settings, Mapping[str, str]], Awaitable["LocalStack"]]

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
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    env = dict(os.environ)
    # Everything acquired below is released in reverse order on every way out.
    log = get_logger("keyward.worker")
    async with contextlib.AsyncExitStack() as resources:
        stack: LocalStack | None = None
        if local_stack is not None:
            stack = await local_stack(settings, env)
            resources.push_async_callback(stack.aclose)
            settings, env = stack.settings, stack.env
            stack.describe(sys.stdout)
        vault = await asyncio.to_thread(connect_vault, settings.vault)
        resources.callback(vault.close)
        codec = encrypting_converter(settings, vault, env)
        resources.push_async_callback(codec.close)
        client = await connect_temporal(settings.temporal, env=env, data_converter=codec.converter)
        executor = resources.enter_context(concurrent.futures.ThreadPoolExecutor(
            ACTIVITY_THREADS, thread_name_prefix="activity"))
        if stack is not None and stack.codec_server is not None:
            codec_server = await start_codec_server(stack.codec_server, codec.codec)
            resources.push_async_callback(codec_server.stop)
        worker = build_worker(client, settings, vault, executor)
        tls = settings.temporal
        if tls.tls_cert is not None and tls.tls_key is not None:
            # New certificate files → new client handed to the running worker; no restart.
            reloader = ClientCertificateReloader(
                worker, client, ClientTLSFiles(cert=tls.tls_cert, key=tls.tls_key,
                                               ca=tls.tls_server_ca,
                                               server_name=tls.tls_server_name),
                interval=tls.tls_reload_seconds, client_ca_for_validation=tls.tls_client_ca)
            reloader.start()
            resources.push_async_callback(reloader.stop)
        if stack is not None:
            await stack.sync_schedules(client)
        if settings.metrics.port:
            metrics = MetricsServer(settings.metrics, healthy=lambda: not stop.is_set())
            await metrics.start()
            resources.push_async_callback(metrics.stop)
        if tls.api_key_file is not None:
            # A fresh token in the file → set on the client the worker runs on now.
            api_keys = ApiKeyReloader(lambda: worker.client, tls.api_key_file,
                                      interval=tls.tls_reload_seconds)
            api_keys.start()
            resources.push_async_callback(api_keys.stop)
        # Reads worker.client on every report, so it follows certificate reloads.
        reporter = UsageReporter(lambda: worker.client, settings, codec.usage)
        reporter.start()
        resources.push_async_callback(reporter.stop)  # flushes the last counts
        log.info(
            "worker started", task_queue=settings.temporal.task_queue,
            namespace=client.namespace, temporal=env.get("TEMPORAL_ADDRESS"),
            vault=settings.vault.address, codec_mode=settings.codec.mode)
        return await run_until_stopped(worker, stop)
    return 0  # pragma: no cover - the exit stack does not swallow exceptions


async def run_until_stopped(worker: Worker, stop: asyncio.Event) -> int:
    """Run the worker until a signal; exit 1 if it fails on its own."""
    log = get_logger("keyward.worker")
    running = asyncio.create_task(worker.run())
    stopped = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if running in done:
        stopped.cancel()
        running.result()  # the worker failed on its own: surface why
        return 1
    log.info("shutting down: finishing in-flight tasks")
    await worker.shutdown()
    log.info("worker stopped")
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

    def body() -> int:
        # Before the settings: a missing dev stack is the first thing to fix.
        local_stack = local_stack_starter() if args.dev else None
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        bind_context(component="worker")
        return asyncio.run(run(settings, local_stack=local_stack))

    return run_entry_point(body, action="worker")


if __name__ == "__main__":
    exit_now(main())
