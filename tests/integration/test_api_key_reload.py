"""temporal.api_key_file: read at connect, re-read on change, set on the worker's client.

The dev server does not check tokens, so these tests check what keyward controls:
which key the worker's client carries before and after a file change, and that the
token never reaches a log line. That the SDK sends ``client.api_key`` as the
``authorization`` header is temporalio's contract.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.ping_workflow import PingWorkflow
from keyward.config import TemporalSettings
from keyward.connect.api_key import ApiKeyReloader
from keyward.connect.temporal import connect_temporal
from keyward.errors import ConfigError

FIRST = "eyJhbGciOiJFUzI1NiJ9.first-token-for-test.sig"
SECOND = "eyJhbGciOiJFUzI1NiJ9.second-token-for-test.sig"


def settings_for(key_file: Path) -> TemporalSettings:
    return TemporalSettings(api_key_file=key_file, tls_reload_seconds=0.2)


def address(env: WorkflowEnvironment) -> str:
    return env.client.service_client.config.target_host


async def test_key_is_read_at_connect_and_replaced_on_change(
        temporal_env: WorkflowEnvironment, tmp_path: Path, task_queue: str) -> None:
    key_file = tmp_path / "token"
    key_file.write_text(FIRST + "\n")
    client = await connect_temporal(settings_for(key_file),
                                    env={"TEMPORAL_ADDRESS": address(temporal_env),
                                         "TEMPORAL_TLS": "false"})
    assert client.api_key == FIRST
    worker = Worker(client, task_queue=task_queue, workflows=[PingWorkflow])
    reloader = ApiKeyReloader(lambda: worker.client, key_file, interval=0.2)
    with capture_logs() as logs:
        assert not await reloader.check_now()  # unchanged file: nothing to do
        key_file.write_text(SECOND)
        assert await reloader.check_now()
        assert worker.client.api_key == SECOND

        key_file.write_text("   \n")  # being rewritten: refused, the current key stays
        assert not await reloader.check_now()
        assert worker.client.api_key == SECOND
        assert reloader.failures == 1
    events = [entry["event"] for entry in logs]
    assert "temporal api key reloaded" in events
    assert "temporal api key refused; keeping the current one" in events
    assert FIRST not in repr(logs)
    assert SECOND not in repr(logs)


async def test_missing_or_empty_file_at_start_is_a_settings_error(
        temporal_env: WorkflowEnvironment, tmp_path: Path) -> None:
    env = {"TEMPORAL_ADDRESS": address(temporal_env)}
    with pytest.raises(ConfigError, match=r"temporal.api_key_file: cannot read .*token"):
        await connect_temporal(settings_for(tmp_path / "token"), env=env)
    (tmp_path / "token").write_text("")
    with pytest.raises(ConfigError, match=r"temporal.api_key_file: .*token is empty"):
        await connect_temporal(settings_for(tmp_path / "token"), env=env)
