"""The bootstrap pairs work for real mutual TLS, as a Temporal frontend requires it
(``requireClientAuth`` with the CA as client CA): Python/OpenSSL on both ends, and Go's
crypto/tls (the ``temporal`` CLI) as the client."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from keyward.errors import StartupError
from keyward.pki.bootstrap import BootstrapResult, bootstrap_local_pki
from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import install_pair
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import summarize
from keyward_devstack.temporal_dev import temporal_cli_path

HANDSHAKE_TIMEOUT = 10.0


@dataclass
class Outcome:
    """What the server saw of one connection."""

    client_subject: str | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> BootstrapResult:
    return bootstrap_local_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki: BootstrapResult) -> Iterator[tuple[int, Outcome]]:
    """A TLS server on 127.0.0.1 with the bootstrap server pair, requiring a client
    certificate from the bootstrap CA; it serves one connection."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                         cafile=str(pki.directory / "ca.crt"))
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(pki.directory / "server" / "tls.crt",
                            pki.directory / "server" / "tls.key")
    context.set_alpn_protocols(["h2"])  # gRPC clients insist on it
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(HANDSHAKE_TIMEOUT)
    outcome = Outcome()

    def serve() -> None:
        try:
            connection, _ = listener.accept()
            with context.wrap_socket(connection, server_side=True) as tls:
                peer = tls.getpeercert(binary_form=True)
                if peer is not None:
                    outcome.client_subject = summarize(
                        x509.load_der_x509_certificate(peer).public_bytes(
                            serialization.Encoding.PEM)).subject
                tls.sendall(b"ok")
        except (OSError, ssl.SSLError) as error:
            outcome.error = error
        finally:
            outcome.done.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], outcome
    thread.join(HANDSHAKE_TIMEOUT)
    listener.close()


def client_context(ca_file: Path, pair_dir: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca_file))
    if pair_dir is not None:
        context.load_cert_chain(pair_dir / "tls.crt", pair_dir / "tls.key")
    return context


def talk(port: int, context: ssl.SSLContext, server_name: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=HANDSHAKE_TIMEOUT) as raw, \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        return tls.recv(2)


@pytest.mark.parametrize("server_name", ["localhost", "127.0.0.1"])
def test_mutual_tls_handshake_succeeds(pki: BootstrapResult, server: tuple[int, Outcome],
                                       server_name: str) -> None:
    """The client verifies the server by DNS name or IP SAN; the server accepts the client
    certificate and sees its CN."""
    port, outcome = server
    context = client_context(pki.directory / "client" / "ca.crt", pki.directory / "client")
    assert talk(port, context, server_name) == b"ok"
    assert outcome.done.wait(HANDSHAKE_TIMEOUT)
    assert outcome.error is None
    assert outcome.client_subject == "CN=keyward-worker"


def test_server_rejects_a_client_without_certificate(pki: BootstrapResult,
                                                     server: tuple[int, Outcome]) -> None:
    """requireClientAuth: no client certificate, no connection."""
    port, outcome = server
    with pytest.raises((ssl.SSLError, ConnectionError)):
        talk(port, client_context(pki.directory / "ca.crt", None), "localhost")
    assert outcome.done.wait(HANDSHAKE_TIMEOUT)
    assert isinstance(outcome.error, ssl.SSLError)


def test_server_rejects_a_client_of_another_ca(pki: BootstrapResult,
                                               server: tuple[int, Outcome],
                                               tmp_path: Path) -> None:
    """A client certificate from a different CA (same names) is refused by the server."""
    port, outcome = server
    stranger = CertificateAuthority.bootstrap("keyward local CA")
    install_pair(tmp_path, stranger.issue(CertificateSpec(name="c",
                                                          common_name="keyward-worker")))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        talk(port, client_context(pki.directory / "ca.crt", tmp_path), "localhost")
    assert outcome.done.wait(HANDSHAKE_TIMEOUT)
    assert isinstance(outcome.error, ssl.SSLError)


def test_client_rejects_a_server_name_not_in_the_sans(pki: BootstrapResult,
                                                      server: tuple[int, Outcome]) -> None:
    """The server certificate is good for localhost and 127.0.0.1 only."""
    port, outcome = server
    context = client_context(pki.directory / "ca.crt", pki.directory / "client")
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        talk(port, context, "temporal.example")
    assert outcome.done.wait(HANDSHAKE_TIMEOUT)


def run_go_client(pki: BootstrapResult, port: int, outcome: Outcome, server_name: str) -> None:
    """``temporal workflow list`` against the TLS server, stopped once it has handshaken."""
    try:
        cli = temporal_cli_path()
    except StartupError:
        pytest.skip("the temporal CLI is not installed")
    client = pki.directory / "client"
    process = subprocess.Popen(
        [str(cli), "workflow", "list", "--address", f"127.0.0.1:{port}",
         "--tls-server-name", server_name, "--tls-ca-path", str(client / "ca.crt"),
         "--tls-cert-path", str(client / "tls.crt"),
         "--tls-key-path", str(client / "tls.key"), "--command-timeout", "5s"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert outcome.done.wait(HANDSHAKE_TIMEOUT)
    finally:
        process.kill()
        process.wait()


def test_go_tls_client_accepts_the_server_and_presents_the_client_certificate(
        pki: BootstrapResult, server: tuple[int, Outcome]) -> None:
    """The temporal CLI (Go crypto/tls, as in Temporal itself) completes the handshake:
    it verified the server certificate for "localhost", and the server got its client
    certificate. The gRPC call after it fails, which does not matter here."""
    port, outcome = server
    run_go_client(pki, port, outcome, "localhost")
    assert outcome.error is None
    assert outcome.client_subject == "CN=keyward-worker"


def test_go_tls_client_rejects_a_server_name_not_in_the_sans(
        pki: BootstrapResult, server: tuple[int, Outcome]) -> None:
    """Go checks SANs only (never the CN): another name makes it abort the handshake."""
    port, outcome = server
    run_go_client(pki, port, outcome, "temporal.example")
    assert isinstance(outcome.error, ssl.SSLError)
    assert "BAD_CERTIFICATE" in str(outcome.error)
