"""`python worker.py --dev` as a new user runs it: starts the stack, works, stops cleanly."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyward_devstack.processes import free_port, port_is_open
from tests.conftest import VaultEndpoint
from tests.e2e.devstack import ROOT, DevWorker, payloads_in


@pytest.fixture
def dev_worker(tmp_path: Path) -> Iterator[DevWorker]:
    worker = DevWorker.on_free_ports(tmp_path)
    yield worker
    worker.shut_down()


def test_dev_stack_runs_workflows_and_stops_cleanly(dev_worker: DevWorker) -> None:
    """The run command starts Temporal + Vault + worker, serves the CLI, and SIGTERM stops all."""
    dev_worker.start()
    dev_worker.wait_ready()
    stdout = dev_worker.stdout.read_text()
    assert f"http://127.0.0.1:{dev_worker.ui_port}" in stdout  # it says where the UI is
    assert f"http://127.0.0.1:{dev_worker.vault_port}" in stdout
    token = (dev_worker.state_dir / "vault-root-token").read_text().strip()
    assert token not in dev_worker.stderr.read_text()  # the log never carries the token
    assert oct((dev_worker.state_dir / "vault-root-token").stat().st_mode & 0o777) == "0o600"

    listed = dev_worker.temporal("workflow", "list")
    assert listed.returncode == 0, listed.stderr

    executed = dev_worker.temporal(
        "workflow", "execute", "--type", "InspectTransitKey", "--task-queue", "keyward",
        "--workflow-id", "smoke-inspect", "--input", '{"key": "default"}', "-o", "json")
    assert executed.returncode == 0, executed.stdout + executed.stderr
    # Without a codec the CLI sees only ciphertext: the worker encrypted the result.
    executed_json = json.loads(executed.stdout)
    assert executed_json["status"] == "COMPLETED", executed_json
    assert set(executed_json["result"]["metadata"]) >= {"encoding", "keyward-key",
                                                        "keyward-scheme"}
    assert "latest_version" not in executed.stdout

    # The CLI pointed at the stack's codec server sees the decrypted result.
    shown = dev_worker.temporal("workflow", "show", "--workflow-id", "smoke-inspect",
                                "--codec-endpoint", f"http://127.0.0.1:{dev_worker.codec_port}",
                                "-o", "json")
    assert shown.returncode == 0, shown.stderr
    decoded = [base64.b64decode(p["data"]) for p in payloads_in(json.loads(shown.stdout))]
    assert any(b'"latest_version":1' in data for data in decoded), decoded
    assert '"codec request"' in dev_worker.stderr.read_text()  # the audit line was written

    # starter.py shares the worker's converter, so it reads the decrypted result.
    env = dev_worker.env | {"TEMPORAL_ADDRESS": f"127.0.0.1:{dev_worker.temporal_port}",
                            "VAULT_ADDR": f"http://127.0.0.1:{dev_worker.vault_port}",
                            "VAULT_TOKEN": token}
    inspected = subprocess.run([sys.executable, "starter.py", "inspect-key", "default"],
                               cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
                               check=False)
    assert inspected.returncode == 0, inspected.stderr
    result = json.loads(inspected.stdout)
    assert result["name"] == "default"
    assert result["latest_version"] == 1

    assert dev_worker.stop() == 0
    assert not port_is_open("127.0.0.1", dev_worker.temporal_port)
    assert not port_is_open("127.0.0.1", dev_worker.vault_port)

    # A second start reuses the state: the first run's workflow and the key are still there.
    dev_worker.start()
    dev_worker.wait_ready()
    described = dev_worker.temporal("workflow", "describe", "--workflow-id", "smoke-inspect",
                                    "-o", "json")
    assert described.returncode == 0, described.stderr
    status = json.loads(described.stdout)["workflowExecutionInfo"]["status"]
    assert status == "WORKFLOW_EXECUTION_STATUS_COMPLETED"
    assert (dev_worker.state_dir / "vault-root-token").read_text().strip() == token
    assert dev_worker.stop() == 0


def test_port_taken_by_something_else_is_a_clear_error(dev_worker: DevWorker) -> None:
    """A non-Temporal listener on the Temporal port stops start-up with one clear line."""
    import socket  # noqa: PLC0415 - only this test needs a raw listener

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", dev_worker.temporal_port))
        squatter.listen()
        dev_worker.start()
        assert dev_worker.proc is not None
        code = dev_worker.proc.wait(timeout=60)
    assert code == 1
    err = dev_worker.stderr.read_text().strip()
    assert err.startswith("keyward: port")
    assert "not a Temporal server" in err
    assert "Traceback" not in err


def test_gateway_port_taken_is_a_clear_error_and_stops_what_started(
        dev_worker: DevWorker) -> None:
    """The mTLS gateway's port taken: one line naming the setting; the servers started for
    this run are stopped again."""
    import socket  # noqa: PLC0415 - only this test needs a raw listener

    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", dev_worker.gateway_port))
        squatter.listen()
        dev_worker.start()
        assert dev_worker.proc is not None
        code = dev_worker.proc.wait(timeout=60)
    assert code == 1
    err = dev_worker.stderr.read_text().strip().splitlines()[-1]
    assert err.startswith(f"keyward: cannot listen on 127.0.0.1:{dev_worker.gateway_port}")
    assert "set devstack.gateway_port" in err
    assert not port_is_open("127.0.0.1", dev_worker.temporal_port)
    assert not port_is_open("127.0.0.1", dev_worker.vault_port)


def test_malformed_config_is_one_line_and_nonzero(dev_worker: DevWorker, tmp_path: Path) -> None:
    """A broken config file gives exactly one clear error line and exit code 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[vault]\naddress = "http://127.0.0.1:8200"\ntimeout_seconds = "soon"\n')
    result = subprocess.run([sys.executable, "worker.py", "--config", str(bad)], cwd=ROOT,
                            env=dev_worker.env, capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["keyward: invalid setting vault.timeout_seconds: must be a number "
                     "(got 'soon')"]


def test_unreachable_temporal_is_a_clear_error(tmp_path: Path) -> None:
    """Without --dev and nothing listening, the worker exits 1 naming what it could not reach."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "VAULT_"))}
    env.update({"TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
                "VAULT_ADDR": f"http://127.0.0.1:{free_port()}", "VAULT_TOKEN": "x" * 20})
    result = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "cannot use Vault at http://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_temporal_names_the_address(vault: VaultEndpoint) -> None:
    """With Vault fine but no Temporal listening, the worker exits 1 naming the address."""
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "VAULT_"))}
    env.update({"TEMPORAL_ADDRESS": address, "VAULT_ADDR": vault.address,
                "VAULT_TOKEN": vault.token.reveal()})
    result = subprocess.run([sys.executable, "worker.py"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        f"keyward: cannot reach Temporal at {address}")
    assert vault.token.reveal() not in result.stderr
