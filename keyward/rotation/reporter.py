"""Periodic reports of a process's encryption counts to the per-key ledger workflows.

Runs beside the codec in the worker (and any long-lived encrypting process). Each
report is a signal-with-start, so the ledger is created by the first report and
found by every later one. A failed report puts its counts back, so nothing is
lost; it is retried at the next interval.
"""

from __future__ import annotations

import os
import socket
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta

from temporalio.client import Client

from keyward.codec.usage import UsageCounters, UsageSample
from keyward.config import Settings
from keyward.contracts.ids import ledger_workflow_id
from keyward.contracts.ledger import (
    REPORT_SIGNAL,
    TRANSIT_KEY_LEDGER_WORKFLOW,
    USAGE_QUERY,
    UsageReport,
    VersionCount,
)
from keyward.log import get_logger
from keyward.metrics import KEY_BUDGET_USED
from keyward.periodic import PeriodicTask
from keyward.rotation.inputs import ledger_input


class UsageReporter:
    def __init__(self, client: Client | Callable[[], Client], settings: Settings,
                 usage: UsageCounters) -> None:
        # A callable follows the worker's current client across certificate reloads.
        self._client = client if callable(client) else (lambda: client)
        self._settings = settings
        self._usage = usage
        self._reporter = f"{socket.gethostname()}:{os.getpid()}"
        self._periodic = PeriodicTask("usage-reporter", self.flush,
                                      interval_seconds=settings.rotation.ledger_report_seconds)
        self._log = get_logger("keyward.rotation.reporter")
        self.reports_sent = 0

    def start(self) -> None:
        self._periodic.start()

    async def stop(self) -> None:
        """Stop and send what was counted since the last report."""
        await self._periodic.stop()
        # The worker has stopped polling by now: a ledger query would wait for nobody.
        await self.flush(refresh_gauges=False)

    async def flush(self, *, refresh_gauges: bool = True) -> None:
        samples = self._usage.drain()
        by_key: dict[str, list[UsageSample]] = defaultdict(list)
        for sample in samples:
            by_key[sample.key].append(sample)
        unsent = dict(by_key)
        try:
            for key, key_samples in by_key.items():
                try:
                    await self._send(key, key_samples)
                except Exception as exc:  # noqa: BLE001 - any failure: keep the counts, retry later
                    self._usage.restore(key_samples)
                    self._log.warning("usage report failed; will retry", key=key,
                                      error=f"{type(exc).__name__}: {exc}")
                del unsent[key]
            for key in by_key if refresh_gauges else ():
                await self._refresh_budget_gauge(key)
        finally:
            # Cancelled mid-report (stop() does that): put back what was not confirmed, so
            # stop()'s own flush sends it. A report Temporal got but did not confirm is then
            # counted twice; over-counting only rotates sooner, losing counts could let a
            # version overrun its budget.
            for key_samples in unsent.values():
                self._usage.restore(key_samples)

    async def _send(self, key: str, samples: list[UsageSample]) -> None:
        report = UsageReport(reporter=self._reporter,
                             counts=[VersionCount(s.version, s.encryptions) for s in samples])
        await self._client().start_workflow(
            TRANSIT_KEY_LEDGER_WORKFLOW.name, ledger_input(self._settings, key),
            id=ledger_workflow_id(self._settings.vault.transit_mount, key),
            task_queue=self._settings.temporal.task_queue,
            start_signal=REPORT_SIGNAL.name, start_signal_args=[report],
            static_summary=f"encryption counts of Transit key {key}")
        self.reports_sent += 1

    async def _refresh_budget_gauge(self, key: str) -> None:
        """Read the ledger's total for the key's latest version into the budget gauge.

        The ledger is the only place that sums every process's counts; a query costs
        one round trip per key per report. Failing to read it only leaves the gauge
        as it was.
        """
        handle = self._client().get_workflow_handle(
            ledger_workflow_id(self._settings.vault.transit_mount, key))
        try:
            state = await handle.query(USAGE_QUERY.name, result_type=USAGE_QUERY.result_type,
                                       rpc_timeout=timedelta(seconds=5))
        except Exception as exc:  # noqa: BLE001 - a metric must never break reporting
            self._log.debug("cannot read the ledger for the budget gauge", key=key,
                            error=f"{type(exc).__name__}: {exc}")
            return
        KEY_BUDGET_USED.labels(key=key).set(state.used_fraction)
