"""The dev server itself: persistence, its data directory, command line and TLS.

These tests start their own server subprocesses and are skipped when the
suite runs against real Vault.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.contract.support import DevVaultProcess, b64, free_port, random_token, unb64


@pytest.fixture
def own_server(dev_vault: DevVaultProcess, tmp_path: Path) -> Iterator[DevVaultProcess]:
    """A dev server of this test's own, on a fresh data directory."""
    server = DevVaultProcess(tmp_path / "vault-data", root_token=random_token())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _client(server: DevVaultProcess, token: str | None = None) -> hvac.Client:
    return hvac.Client(url=server.url, token=token or server.root_token, verify=server.verify)


def test_keys_and_tokens_survive_a_restart(own_server: DevVaultProcess) -> None:
    """A key and a token created before a restart work after it, on the same data dir."""
    client = _client(own_server)
    client.secrets.transit.create_key("kept")
    ciphertext = client.secrets.transit.encrypt_data("kept", b64(b"durable"))["data"]["ciphertext"]
    token = client.auth.token.create(ttl="1h")["auth"]["client_token"]
    client.adapter.close()

    assert own_server.stop() == 0
    own_server.start()

    client = _client(own_server)
    holder = _client(own_server, token)
    try:
        plaintext = client.secrets.transit.decrypt_data("kept", ciphertext)["data"]["plaintext"]
        assert unb64(plaintext) == b"durable"
        assert holder.auth.token.lookup_self()["data"]["ttl"] > 0
    finally:
        client.adapter.close()
        holder.adapter.close()


def test_data_dir_is_private(own_server: DevVaultProcess) -> None:
    """The data directory is 0700 and every file in it 0600."""
    client = _client(own_server)
    client.secrets.transit.create_key("private")
    client.adapter.close()

    assert stat.S_IMODE(own_server.data_dir.stat().st_mode) == 0o700
    files = [path for path in own_server.data_dir.iterdir() if path.is_file()]
    assert files
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {
        path.name: 0o600 for path in files
    }


def test_generated_root_token_is_reused_after_restart(
    dev_vault: DevVaultProcess, tmp_path: Path
) -> None:
    """Without --root-token one is generated, printed, and the same one comes back."""
    server = DevVaultProcess(tmp_path / "data")
    server.start()
    try:
        first = server.root_token
        assert server.banner == f"keyward dev vault listening on {server.url} root token: {first}"
        server.stop()
        server.root_token = None
        server.start()
        assert server.root_token == first
        client = _client(server)
        assert client.auth.token.lookup_self()["data"]["policies"] == ["root"]
        client.adapter.close()
    finally:
        server.stop()


def test_sigterm_stops_the_server_cleanly(own_server: DevVaultProcess) -> None:
    """SIGTERM stops the server with exit status 0."""
    assert own_server.stop() == 0


def test_taken_port_is_reported_in_one_line(dev_vault: DevVaultProcess, tmp_path: Path) -> None:
    """A port already in use makes the server exit 1 with a one-line message naming it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        server = DevVaultProcess(tmp_path / "data", root_token=random_token(), port=port)
        finished = subprocess.run(
            server.command(), capture_output=True, text=True, timeout=30, check=False
        )

    assert finished.returncode == 1
    assert str(port) in finished.stderr
    assert "already in use" in finished.stderr
    assert "Traceback" not in finished.stderr
    assert len(finished.stderr.strip().splitlines()) == 1


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keyward dev vault test")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "vault.crt", directory / "vault.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_serves_https_trusted_through_a_ca_file(
    dev_vault: DevVaultProcess, tmp_path: Path
) -> None:
    """With --tls-cert and --tls-key the server speaks https, verified with VAULT_CACERT."""
    cert, key = _self_signed(tmp_path)
    server = DevVaultProcess(
        tmp_path / "data",
        root_token=random_token(),
        extra_args=["--tls-cert", str(cert), "--tls-key", str(key)],
        verify=str(cert),
        scheme="https",
    )
    server.start()
    try:
        client = _client(server)
        assert server.url.startswith("https://")
        assert client.sys.read_health_status(method="GET")["initialized"] is True
        client.adapter.close()
    finally:
        server.stop()


def test_tls_needs_both_certificate_and_key(dev_vault: DevVaultProcess, tmp_path: Path) -> None:
    """Giving --tls-cert without --tls-key is a usage error."""
    finished = subprocess.run(
        [
            sys.executable,
            "-m",
            "keyward_devstack.transit_server",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "data"),
            "--tls-cert",
            str(tmp_path / "missing.crt"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert finished.returncode == 2
    assert "--tls-key" in finished.stderr


def test_second_server_on_the_same_data_dir_is_refused(own_server: DevVaultProcess) -> None:
    """A second server cannot open a data directory a running one holds."""
    second = DevVaultProcess(own_server.data_dir, root_token=random_token())

    finished = subprocess.run(
        second.command(), capture_output=True, text=True, timeout=30, check=False
    )

    assert finished.returncode == 1
    assert "in use by another keyward dev vault" in finished.stderr
    assert "Traceback" not in finished.stderr
