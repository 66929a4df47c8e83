"""The worker process: every keyward workflow and activity registered (``build_worker``)
and everything around it (``WorkerApp``).

``worker.py`` runs ``WorkerApp``; the tests and benchmarks build the same worker here, so
what they exercise is what production registers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, Self, TextIO

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from keyward.codec.converter import encrypting_converter
from keyward.codecserver.runner import start_codec_server
from keyward.config import CodecServerSettings, Settings
from keyward.connect.api_key import ApiKeyReloader
from keyward.connect.reload import ClientCertificateReloader, ClientTLSFiles
from keyward.connect.temporal import connect_temporal
from keyward.log import get_logger
from keyward.metrics import MetricsServer
from keyward.rotation.reporter import UsageReporter
from keyward.temporal.activity_callers import KeywardCallersOnly
from keyward.vault.client import VaultSession, connect_vault
from workflows import ALL_WORKFLOWS, WORKFLOW_TYPES

#: Activity threads (hvac is synchronous) and concurrently running activities.
ACTIVITY_THREADS = 16


def build_worker(client: Client, settings: Settings, vault: VaultSession,
                 executor: concurrent.futures.Executor) -> Worker:
    """The worker with every workflow and activity registered."""
    return Worker(
        client,
        task_queue=settings.temporal.task_queue,
        workflows=list(ALL_WORKFLOWS),
        activities=build_activities(vault=vault.client, settings=settings),
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
        # Activities only as steps of these workflows: not standalone, not for others.
        interceptors=[KeywardCallersOnly(WORKFLOW_TYPES)],
    )


class LocalStack(Protocol):
    """What ``WorkerApp`` needs of a local stack (the dev stack's ``LocalStack``),
    stated here so the library never imports the dev stack."""

    settings: Settings
    env: dict[str, str]
    codec_server: CodecServerSettings | None

    async def sync_schedules(self, client: Client) -> None: ...

    async def aclose(self) -> None: ...

    def describe(self, out: TextIO) -> None: ...


#: Starts a local stack (what is not running yet) for these settings and environment.
StartLocalStack = Callable[[Settings, Mapping[str, str]], Awaitable[LocalStack]]


class WorkerApp:
    """The whole worker process as one async context manager: the composition root.

    Entering acquires, in order: the local stack (``--dev`` only), the Vault session, the
    encrypting converter, the Temporal client, the activity threads, the dev codec server,
    the worker, the certificate and API-key reloaders, the metrics endpoint and the usage
    reporter. Leaving releases them in reverse order, on every way out. ``worker.py``
    runs it; tests and benchmarks can enter the same object.
    """

    def __init__(self, settings: Settings, *, env: Mapping[str, str],
                 local_stack: StartLocalStack | None = None,
                 stop: asyncio.Event | None = None, out: TextIO | None = None) -> None:
        self.settings = settings
        self.env = dict(env)
        self._local_stack = local_stack
        #: Set to stop :meth:`run_until_stopped` (worker.py sets it on SIGINT/SIGTERM).
        self.stop = stop if stop is not None else asyncio.Event()
        self._out = out
        self._resources = contextlib.AsyncExitStack()
        self._worker: Worker | None = None
        self._log = get_logger("keyward.worker")

    @property
    def worker(self) -> Worker:
        if self._worker is None:
            raise RuntimeError("WorkerApp is not entered")
        return self._worker

    async def __aenter__(self) -> Self:
        await self._resources.__aenter__()
        try:
            await self._start()
        except BaseException:
            await self._resources.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._resources.aclose()

    async def _start(self) -> None:
        resources, settings, env = self._resources, self.settings, self.env
        stack: LocalStack | None = None
        if self._local_stack is not None:
            stack = await self._local_stack(settings, env)
            resources.push_async_callback(stack.aclose)
            settings, env = self.settings, self.env = stack.settings, stack.env
            if self._out is not None:
                stack.describe(self._out)
        vault = await asyncio.to_thread(connect_vault, settings.vault)
        resources.callback(vault.close)
        codec = encrypting_converter(settings, vault, env)
        resources.push_async_callback(codec.close)
        client = await connect_temporal(settings.temporal, env=env,
                                        data_converter=codec.converter)
        executor = resources.enter_context(concurrent.futures.ThreadPoolExecutor(
            ACTIVITY_THREADS, thread_name_prefix="activity"))
        if stack is not None and stack.codec_server is not None:
            codec_server = await start_codec_server(stack.codec_server, codec.codec)
            resources.push_async_callback(codec_server.stop)
        worker = self._worker = build_worker(client, settings, vault, executor)
        tls = settings.temporal
        if tls.tls_cert is not None and tls.tls_key is not None:
            # A new pair or a new server CA bundle → a new client, connected first, handed
            # to the running worker; no restart.
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
            metrics = MetricsServer(settings.metrics, healthy=lambda: not self.stop.is_set())
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
        self._log.info(
            "worker started", task_queue=settings.temporal.task_queue,
            namespace=client.namespace, temporal=env.get("TEMPORAL_ADDRESS"),
            vault=settings.vault.address, codec_mode=settings.codec.mode)

    async def run_until_stopped(self) -> int:
        """Run the worker until :attr:`stop` is set (0), or until it fails on its own (1,
        with the worker's error raised)."""
        worker = self.worker
        running = asyncio.create_task(worker.run())
        stopped = asyncio.create_task(self.stop.wait())
        done, _ = await asyncio.wait({running, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if running in done:
            stopped.cancel()
            running.result()  # the worker failed on its own: surface why
            return 1
        self._log.info("shutting down: finishing in-flight tasks")
        await worker.shutdown()
        self._log.info("worker stopped")
        return 0
