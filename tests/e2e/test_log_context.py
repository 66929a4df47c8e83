"""Log lines written inside workflows carry their Temporal identity, through the real SDK."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import io
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
import structlog
from temporalio.client import Client

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.config import LoggingSettings, Settings, TemporalSettings
from keyward.contracts.transit import ReadKeyInput
from keyward.log import configure_logging
from keyward.vault.client import connect_vault
from tests.conftest import VaultEndpoint
from workflows.inspect_key import InspectTransitKey


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging(LoggingSettings(format="json", level="INFO"), stream=stream)
    yield stream
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


async def test_workflow_log_lines_carry_workflow_identity(
        temporal_client: Client, vault: VaultEndpoint, transit_key: str, task_queue: str,
        log_stream: io.StringIO) -> None:
    """workflow.logger lines come out as JSON with workflow id, run id, type and task queue."""
    settings = dataclasses.replace(Settings(), vault=vault.settings(),
                                   temporal=TemporalSettings(task_queue=task_queue))
    workflow_id = f"log-context-{uuid.uuid4()}"
    with connect_vault(settings.vault) as session, \
            concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
        async with build_worker(temporal_client, settings, session, pool):
            await temporal_client.execute_workflow(
                InspectTransitKey.run, ReadKeyInput(key=transit_key), id=workflow_id,
                task_queue=task_queue)
    records = [json.loads(line) for line in log_stream.getvalue().splitlines()
               if line.startswith("{")]
    mine = [r for r in records if r.get("workflow_id") == workflow_id]
    assert mine, log_stream.getvalue()
    line = next(r for r in mine if "is at version" in r["event"])
    assert line["workflow_type"] == "InspectTransitKey"
    assert line["task_queue"] == task_queue
    assert line.get("workflow_run_id") or line.get("run_id")
    assert vault.token.reveal() not in log_stream.getvalue()
