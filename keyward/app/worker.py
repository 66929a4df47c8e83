"""The worker with every keyward workflow and activity registered.

``worker.py`` runs it; the tests and benchmarks build the same worker here, so what they
exercise is what production registers.
"""

from __future__ import annotations

import concurrent.futures

from temporalio.client import Client
from temporalio.worker import Worker

from activities import build_activities
from keyward.config import Settings
from keyward.temporal.activity_callers import KeywardCallersOnly
from keyward.vault.client import VaultSession
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
