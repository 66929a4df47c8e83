"""starter.py's certificate commands, run as a user would: pki bootstrap, renew-cert, status."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyward.pki.install import read_installed
from keyward.pki.validate import summarize, validate_pair
from tests.e2e.devstack import ROOT, DevWorker


def starter(*args: str, env: dict[str, str] | None = None,
            cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "starter.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=90, check=False)


def test_pki_bootstrap_writes_a_working_pki_and_refuses_to_overwrite(tmp_path: Path) -> None:
    """`pki bootstrap` says what it wrote; the pairs validate; a second run keeps the CA."""
    first = starter("pki", "bootstrap", "--dir", str(tmp_path / "pki"))
    assert first.returncode == 0, first.stderr
    assert "ca.crt" in first.stdout
    assert "ca.key" in first.stdout
    ca_pem = (tmp_path / "pki" / "ca.crt").read_bytes()
    for role in ("server", "client"):
        pair = read_installed(tmp_path / "pki" / role)
        assert pair is not None
        validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=ca_pem,
                      now=summarize(pair.certificate_pem).not_before)
    assert (tmp_path / "pki" / "ca.key").stat().st_mode & 0o777 == 0o600

    again = starter("pki", "bootstrap", "--dir", str(tmp_path / "pki"))
    assert again.returncode == 1
    assert again.stderr.strip().startswith("keyward:")
    assert len(again.stderr.strip().splitlines()) == 1
    assert (tmp_path / "pki" / "ca.crt").read_bytes() == ca_pem


@pytest.fixture(scope="module")
def stack_with_certificate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorker]:
    base = tmp_path_factory.mktemp("certs")
    assert starter("pki", "bootstrap", "--dir", str(base / "pki")).returncode == 0
    config = base / "keyward.toml"
    config.write_text(f"""
[certificates.worker]
common_name = "keyward-worker"
dns_names = ["keyward-worker"]
ca_cert = "{base / 'pki' / 'ca.crt'}"
ca_key = "{base / 'pki' / 'ca.key'}"
directory = "{base / 'installed'}"
lifetime_hours = 24
""")
    worker = DevWorker.on_free_ports(base, KEYWARD_CONFIG=str(config))
    worker.start()
    try:
        worker.wait_ready()
        yield worker
    finally:
        worker.shut_down()


def test_renew_cert_then_status_lists_expiry(stack_with_certificate: DevWorker) -> None:
    """`renew-cert worker` installs a certificate; `status` shows its serial and expiry."""
    env = stack_with_certificate.client_env
    renewed = starter("renew-cert", "worker", env=env)
    assert renewed.returncode == 0, renewed.stderr
    result = json.loads(renewed.stdout)
    assert result["renewed"] is True
    shown = starter("status", env=env)
    assert shown.returncode == 0, shown.stderr
    assert "certificate" in shown.stdout
    assert result["serial"] in shown.stdout
    assert "ok" in shown.stdout


def test_renew_cert_of_unknown_name_is_one_clear_line(stack_with_certificate: DevWorker) -> None:
    """An unconfigured certificate name is refused before anything runs."""
    failed = starter("renew-cert", "nope", env=stack_with_certificate.client_env)
    assert failed.returncode == 2
    assert failed.stderr.strip().splitlines() == [
        "keyward: invalid setting certificates.nope: not configured (configured: worker)"]
