"""`python starter.py rotate-ca local --wait` rotates the CA of `python worker.py --dev` under load.

The stack's CA is an operator's CA like any other: the gateway trusts ``pki/ca-bundle.pem``
(not ``ca.crt``), the worker trusts the same bundle for the gateway's server certificate,
and both leaves (the worker's client pair, the gateway's server pair, one minute each) are
``local-ca`` certificates of ``[certificate_authorities.local]``. The rotation publishes
old + new, soaks 10 s, switches, renews both leaves, verifies them and, a minute and 10 s
after the switch, leaves the new CA alone in the bundle. All along workflows started every
half second complete, the worker is the same process, and at the end a leaf of the old CA
(issued at the start, accepted then) is refused by the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from keyward.pki.ca import CertificateAuthority
from keyward.pki.install import read_installed
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import summarize
from keyward.trust.base import fingerprint
from tests.e2e.devstack import ROOT, DevWorker
from tests.e2e.test_dev_mtls import START_EVERY, final_status, gateway_serials, reloaded_serials

REJECTED = '"client handshake rejected"'


@pytest.fixture
def rotating_worker(tmp_path: Path) -> Iterator[DevWorker]:
    worker = DevWorker.on_free_ports(
        tmp_path,
        KEYWARD_DEVSTACK__CLIENT_CERTIFICATE_MINUTES="1",
        KEYWARD_DEVSTACK__GATEWAY_CERTIFICATE_MINUTES="1",
        # Connections are cut every 10 s: every new handshake re-checks both certificates.
        KEYWARD_DEVSTACK__GATEWAY_MAX_CONNECTION_AGE_SECONDS="10",
        KEYWARD_DEVSTACK__CA_ROTATION_SOAK_SECONDS="10",
        KEYWARD_DEVSTACK__CA_ROTATION_GRACE_SECONDS="10")
    yield worker
    worker.shut_down()


def bundle_of(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def issued_by(pem: bytes, ca: x509.Certificate) -> bool:
    try:
        x509.load_pem_x509_certificates(pem)[0].verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def handshake(port: int, bundle: Path, leaf: Path) -> None:
    """A client handshake with ``leaf``, checking the gateway's certificate against the
    stack's bundle; whatever the gateway answers (alert, reset, close) is its log's to say."""
    context = ssl.create_default_context(cadata=bundle.read_text())
    context.load_cert_chain(leaf / "tls.crt", leaf / "tls.key")
    with contextlib.suppress(OSError), \
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.settimeout(2)
        with contextlib.suppress(OSError):
            tls.recv(1)


async def eventually(check: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(300)
async def test_starter_rotates_the_dev_ca_under_load_without_restarting_the_worker(
        rotating_worker: DevWorker, tmp_path: Path) -> None:
    worker = rotating_worker
    worker.start()
    await asyncio.to_thread(worker.wait_ready)
    assert worker.proc is not None
    pid = worker.proc.pid
    pki = worker.state_dir / "pki"
    bundle = pki / "ca-bundle.pem"
    old_ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert [fingerprint(c) for c in bundle_of(bundle)] == [fingerprint(old_ca)]

    # A leaf of the old CA, kept aside: accepted now, refused once the old CA is retired.
    old_leaf = tmp_path / "old-leaf"
    old_leaf.mkdir()
    issued = CertificateAuthority.load(pki / "ca.crt", pki / "ca.key").issue(CertificateSpec(
        name="old-leaf", common_name="old-ca-leaf", usage="client",
        lifetime=timedelta(hours=1)))
    (old_leaf / "tls.crt").write_bytes(issued.certificate_pem)
    (old_leaf / "tls.key").write_bytes(issued.private_key_pem)
    old_serial = summarize(issued.certificate_pem).serial
    await asyncio.to_thread(handshake, worker.gateway_port, bundle, old_leaf)
    await eventually(lambda: old_serial in gateway_serials(worker.stderr.read_text()),
                     within=5, what="the gateway accepts the old-CA leaf before the rotation")

    client = await Client.connect(f"127.0.0.1:{worker.temporal_port}")
    rotation = await asyncio.create_subprocess_exec(
        sys.executable, "starter.py", "rotate-ca", "local", "--wait", cwd=ROOT,
        env=worker.client_env, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    communicated = asyncio.ensure_future(rotation.communicate())
    handles: list[WorkflowHandle[object, object]] = []
    started = time.monotonic()
    while not communicated.done() and time.monotonic() - started < 200:
        handles.append(await client.start_workflow(
            "InspectTransitKey", {"key": "default"}, id=f"ca-rotation-load-{len(handles)}",
            task_queue="keyward"))
        await asyncio.sleep(START_EVERY)
    rotation_s = time.monotonic() - started
    out, err = await asyncio.wait_for(communicated, timeout=10)
    assert rotation.returncode == 0, (out + err).decode()
    result = json.loads(out)
    new_ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    assert result["old"] == fingerprint(old_ca)
    assert result["new"] == fingerprint(new_ca) != fingerprint(old_ca)
    assert set(result["leaves_renewed"]) == {"keyward-worker", "keyward-gateway"}

    statuses = await asyncio.gather(*(final_status(handle) for handle in handles))
    failed = [handle.id for handle, status in zip(handles, statuses, strict=True)
              if status != WorkflowExecutionStatus.COMPLETED]
    assert not failed, f"{len(failed)} of {len(handles)} workflows did not complete: {failed}"
    assert len(handles) >= 100

    # Same worker process throughout, now on a client certificate of the new CA (the one
    # installed, which it reloaded and the gateway accepted) and trusting the new CA alone.
    assert worker.proc.poll() is None
    assert worker.proc.pid == pid
    assert worker.stderr.read_text().count('"worker started"') == 1
    installed = read_installed(pki / "client")
    assert installed is not None
    assert issued_by(installed.certificate_pem, new_ca)
    serial = summarize(installed.certificate_pem).serial
    await eventually(lambda: serial in reloaded_serials(worker.stderr.read_text()),
                     within=10, what="the worker reloads its new-CA client certificate")
    await eventually(lambda: serial in gateway_serials(worker.stderr.read_text()),
                     within=20, what="the gateway accepts the worker's new-CA certificate")
    gateway_pair = read_installed(pki / "server")
    assert gateway_pair is not None
    assert issued_by(gateway_pair.certificate_pem, new_ca)
    assert [fingerprint(c) for c in bundle_of(bundle)] == [fingerprint(new_ca)]
    # The worker's own connections were never refused: the only refusals during the
    # rotation are the renewal's own handshake checks (VerifyCertificateServed, retried)
    # made before the gateway had reloaded its new pair (it polls its files every second).
    log = worker.stderr.read_text()
    refused = log.count(REJECTED)
    verify_retries = len(re.findall(r"Completing activity as failed.*VerifyCertificateServed",
                                    log))
    assert refused <= verify_retries, log[-4000:]

    # The old CA is gone from the gateway's trust: its leaf is refused, as soon as the
    # gateway has reloaded the final bundle (within its one-second poll).
    def probe_refused() -> bool:
        handshake(worker.gateway_port, bundle, old_leaf)
        time.sleep(0.3)  # the gateway logs after closing
        return worker.stderr.read_text().count(REJECTED) > refused
    deadline = time.monotonic() + 10
    while not await asyncio.to_thread(probe_refused):
        assert time.monotonic() < deadline, \
            f"the gateway still accepts the old-CA leaf:\n{worker.stderr.read_text()[-3000:]}"
    rejection = [json.loads(line) for line in worker.stderr.read_text().splitlines()
                 if REJECTED in line][-1]
    # Refused by the gateway's check of the leaf, not by our check of the gateway (an alert
    # received from the client would name the client's complaint).
    assert "ALERT" not in rejection["reason"], rejection
    print(f"rotation {rotation_s:.1f} s, {len(handles)} workflows, 0 failed")
