"""`python starter.py cloud …` (the `keyward` console script) as an operator runs it, against
the emulator on a thread of its own: the namespace's CAs listed, added and removed, the codec
endpoint set, `--json` for each, and every failure one `keyward: … failed: …` line with its
exit code and never the API key."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.certs import new_ca, pem, sha256
from tests.emulators.cloud_ops import (
    DEFAULT_API_KEY,
    ORDERS,
    CloudOpsEmulator,
    RunningCloudOps,
    serve_in_thread,
)
from tests.tls_material import CertificateAuthority

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def threaded(emulator: CloudOpsEmulator) -> Iterator[RunningCloudOps]:
    with serve_in_thread(emulator) as running:
        yield running


@pytest.fixture
def config(tmp_path: Path, threaded: RunningCloudOps, key_file: Path) -> Path:
    path = tmp_path / "keyward.toml"
    path.write_text(f'[cloud]\napi_key_file = "{key_file}"\nhost = "{threaded.host}"\n'
                    f"port = {threaded.port}\ntls = false\noperation_poll_seconds = 0.05\n"
                    '[logging]\nformat = "json"\n')
    return path


class Keyward:
    """Runs ``python starter.py --config … cloud …`` and keeps what it printed."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.outputs: list[str] = []

    def __call__(self, *args: str, config: Path | None = None
                 ) -> subprocess.CompletedProcess[str]:
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("KEYWARD_", "TEMPORAL_", "VAULT_"))}
        result = subprocess.run(
            [sys.executable, "starter.py", "--config", str(config or self.config), "cloud",
             *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
            check=False)
        self.outputs.append(result.stdout + result.stderr)
        return result


@pytest.fixture
def keyward(config: Path) -> Iterator[Keyward]:
    runner = Keyward(config)
    yield runner
    # Whatever a test ran, success or failure, the key never reached stdout, stderr or logs.
    assert not [out for out in runner.outputs if DEFAULT_API_KEY in out]


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(result))


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the JSON log lines: what the person reads as the error."""
    return [line for line in result.stderr.splitlines() if not line.startswith("{")]


def failed(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one error line of a run that failed with ``code``; nothing on stdout."""
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout == ""
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    return lines[0]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_ca_list_shows_each_ca_with_its_fingerprint(keyward: Keyward,
                                                    client_ca: CertificateAuthority) -> None:
    """A table for people, one JSON document with --json."""
    table = ok(keyward("ca", "list", ORDERS))
    assert table.splitlines()[0] == "orders.a1b2c: 1 accepted client CA(s), mTLS on"
    assert sha256(client_ca) in table
    assert "CN=keyward cloud test client CA" in table
    document = as_json(keyward("ca", "list", ORDERS, "--json"))
    assert [ca["fingerprint_sha256"] for ca in document["accepted_client_cas"]] == [
        sha256(client_ca)]
    assert document["accepted_client_cas"][0]["pem"] == pem(client_ca)


def test_namespace_show_prints_state_cas_and_codec_server(keyward: Keyward) -> None:
    text = ok(keyward("namespace", "show", ORDERS))
    assert "codec server      https://codec.example.com" in text
    assert "pass access token               yes" in text
    document = as_json(keyward("namespace", "show", ORDERS, "--json"))
    assert document["codec_server"] == {"endpoint": "https://codec.example.com",
                                        "pass_access_token": True,
                                        "include_cross_origin_credentials": False}
    assert document["state"] == "active"


def test_ca_add_then_add_again_then_remove(keyward: Keyward, emulator: CloudOpsEmulator,
                                           client_ca: CertificateAuthority,
                                           tmp_path: Path) -> None:
    """The operator's rotation: add the successor, a repeated add says nothing changed
    (exit 0, no write), remove the old CA by fingerprint, then the old one's file again
    is a no-op."""
    successor = new_ca("successor client CA")
    successor_file = write(tmp_path, "successor.pem", pem(successor))
    added = ok(keyward("ca", "add", ORDERS, str(successor_file)))
    assert added.startswith("added CN=successor client CA (SHA-256 ")
    assert "it now accepts 2 client CAs (operation " in added
    again = ok(keyward("ca", "add", ORDERS, str(successor_file)))
    assert again.strip().endswith("already accepted by orders.a1b2c: nothing to change")
    assert emulator.calls_to("UpdateNamespace") == 1

    removed = as_json(keyward("ca", "remove", ORDERS, "--fingerprint", sha256(client_ca),
                              "--json"))
    assert removed["changed"] is True
    assert [ca["fingerprint_sha256"] for ca in removed["after"]["accepted_client_cas"]] == [
        sha256(successor)]
    old_file = write(tmp_path, "old.pem", pem(client_ca))
    gone = as_json(keyward("ca", "remove", ORDERS, str(old_file), "--json"))
    assert (gone["changed"], gone["operation_id"]) == (False, None)
    assert "nothing to change" in gone["summary"]
    assert emulator.calls_to("UpdateNamespace") == 2


def test_removing_the_last_ca_fails_with_one_line(keyward: Keyward, emulator: CloudOpsEmulator,
                                                  client_ca: CertificateAuthority,
                                                  tmp_path: Path) -> None:
    line = failed(keyward("ca", "remove", ORDERS, str(write(tmp_path, "ca.pem",
                                                                 pem(client_ca)))))
    assert line.startswith("keyward: cloud ca remove orders.a1b2c failed: refusing to remove "
                           "CN=keyward cloud test client CA")
    assert "last accepted client CA" in line
    assert emulator.calls_to("UpdateNamespace") == 0


@pytest.mark.parametrize(("kind", "problem"), [
    ("leaf", "is not a CA certificate (no basicConstraints CA=true)"),
    ("key", "holds a private key; give the CA certificate only"),
])
def test_a_leaf_or_a_private_key_is_refused_with_one_line(
        keyward: Keyward, emulator: CloudOpsEmulator, client_ca: CertificateAuthority,
        tmp_path: Path, kind: str, problem: str) -> None:
    """Refused before any call; the key's text appears nowhere in the output."""
    issued = client_ca.issue_client("worker")
    text = issued.cert_pem().decode() if kind == "leaf" else \
        (issued.key_pem() + client_ca.cert_pem()).decode()
    path = write(tmp_path, f"{kind}.pem", text)
    result = keyward("ca", "add", ORDERS, str(path))
    line = failed(result)
    assert line.startswith(f"keyward: cloud ca add orders.a1b2c failed: the CA file {path}")
    assert problem in line
    key_body = issued.key_pem().decode().splitlines()[1]
    assert key_body not in result.stdout + result.stderr
    assert sum(emulator.calls.values()) == 0


def test_codec_server_set_then_the_same_again(keyward: Keyward,
                                              emulator: CloudOpsEmulator) -> None:
    url = "https://codec.keyward.example/orders"
    first = as_json(keyward("codec-server", "set", ORDERS, url, "--pass-access-token",
                            "--include-credentials", "--json"))
    assert first["changed"] is True
    assert first["after"]["codec_server"] == {"endpoint": url, "pass_access_token": True,
                                              "include_cross_origin_credentials": True}
    spec = emulator.namespace(ORDERS).spec.codec_server
    assert (spec.endpoint, spec.pass_access_token, spec.include_cross_origin_credentials) == (
        url, True, True)
    again = ok(keyward("codec-server", "set", ORDERS, url, "--pass-access-token",
                       "--include-credentials"))
    assert again.strip().endswith("nothing to change")
    assert emulator.calls_to("UpdateNamespace") == 1
    line = failed(keyward("codec-server", "set", ORDERS, "http://codec.keyward.example"))
    assert line.startswith("keyward: cloud codec-server set orders.a1b2c failed: codec endpoint "
                           "'http://codec.keyward.example' must be https://")


def test_a_bad_namespace_name_fails_before_any_call(keyward: Keyward,
                                                    emulator: CloudOpsEmulator) -> None:
    line = failed(keyward("ca", "list", "Orders"))
    assert line.startswith("keyward: cloud ca list Orders failed: 'Orders' is not a Temporal "
                           "Cloud namespace: expected '<name>.<account-id>'")
    assert sum(emulator.calls.values()) == 0


def test_a_failed_operation_is_one_line_with_clouds_reason(
        keyward: Keyward, emulator: CloudOpsEmulator, tmp_path: Path) -> None:
    emulator.operation_failure = "certificate chain could not be validated"
    line = failed(keyward("ca", "add", ORDERS, str(write(tmp_path, "n.pem", pem(new_ca())))))
    assert line.startswith("keyward: cloud ca add orders.a1b2c failed: Cloud Ops API async "
                           "operation ")
    assert line.endswith("failed: certificate chain could not be validated")


def test_a_revoked_api_key_fails_with_one_line(keyward: Keyward,
                                               emulator: CloudOpsEmulator) -> None:
    emulator.api_keys = {"some-other-key"}
    line = failed(keyward("namespace", "show", ORDERS))
    assert line == ("keyward: cloud namespace show orders.a1b2c failed: Cloud Ops API get "
                    "namespace failed (UNAUTHENTICATED): Request unauthenticated")


def test_usage_problems_exit_2(keyward: Keyward, tmp_path: Path) -> None:
    """No cloud.api_key_file, an unreadable PEM file, and neither file nor fingerprint."""
    bare = write(tmp_path, "bare.toml", '[logging]\nformat = "json"\n')
    assert failed(keyward("ca", "list", ORDERS, config=bare), code=2) == (
        "keyward: invalid setting cloud.api_key_file: required to use the Temporal Cloud "
        "Operations API")
    missing = tmp_path / "missing.pem"
    assert failed(keyward("ca", "add", ORDERS, str(missing)), code=2) == (
        f"keyward: cannot read {missing}: No such file or directory")
    result = keyward("ca", "remove", ORDERS)
    assert result.returncode == 2
    assert "one of the arguments pem-file --fingerprint is required" in result.stderr
