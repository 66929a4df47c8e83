"""Benchmark: a complete client-CA rotation under load, through keyward's mTLS gateway.

    python bench/ca_rotation.py [--quick] [--rate R]

A ping worker connects through ``MtlsGateway`` (client certificates verified against a
bundle file; connections closed at ``max_connection_age``) with a client certificate from
the rotated CA, reloaded by ``ClientCertificateReloader``. A starter with a certificate of
an unrelated CA that is also in the bundle starts ``--rate`` workflows per second through
the gateway and waits for each. Meanwhile ``RotateCertificateAuthority`` (hosted by a
keyward worker on the dev server's plain port) rotates the CA with a short soak, short leaf
lifetimes and a short grace: stage, old + new bundle, soak, switch, renew the worker's
leaf, verify, retire. The bench watches the files every 20 ms to time each phase; at the
end a handshake with a leaf of the old CA must be refused by the gateway.

Last line: ``RESULT failed_workflows=<n> rotation_s=<s> handshake_failures=<n>``, where
handshake failures are the gateway's refused handshakes during the run (the final
old-CA probe is reported apart: it must be refused).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import socket
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from activities.authorities import CaRotationActivities  # noqa: E402
from activities.certificates import CertificateActivities  # noqa: E402
from bench._support import machine_description  # noqa: E402
from bench.ping_workflow import PingWorkflow  # noqa: E402
from bench.reload import Load  # noqa: E402
from keyward.config import CertificateSettings, Settings, TemporalSettings  # noqa: E402
from keyward.config.authorities import CertificateAuthoritySettings  # noqa: E402
from keyward.connect.reload import (  # noqa: E402
    ClientCertificateReloader,
    ClientTLSFiles,
    tls_config,
)
from keyward.contracts.authorities import CaRotationInput  # noqa: E402
from keyward.contracts.certificates import RenewCertificateInput  # noqa: E402
from keyward.issuers.factory import build_issuer  # noqa: E402
from keyward.pki.ca import CertificateAuthority  # noqa: E402
from keyward.pki.install import install_pair  # noqa: E402
from keyward.pki.types import CertificateSpec  # noqa: E402
from keyward.trust.base import fingerprint  # noqa: E402
from keyward_devstack.mtls_gateway import GatewayConfig, MtlsGateway  # noqa: E402
from keyward_devstack.temporal_dev import temporal_cli_path  # noqa: E402
from workflows.renew_certificate import RenewCertificate  # noqa: E402
from workflows.rotate_ca import RotateCertificateAuthority  # noqa: E402

MAX_CONNECTION_AGE = timedelta(seconds=5)
RELOAD_INTERVAL = 0.5
SERVER_SPEC = CertificateSpec(name="gateway", common_name="localhost", dns_names=("localhost",),
                              ip_addresses=("127.0.0.1",), usage="server")


@dataclasses.dataclass
class Timings:
    started: float = 0.0
    phases: dict[str, float] = dataclasses.field(default_factory=dict)

    def mark(self, phase: str) -> None:
        self.phases.setdefault(phase, time.monotonic() - self.started)


def worker_spec(lifetime: timedelta) -> CertificateSpec:
    return CertificateSpec(name="worker", common_name="keyward-worker", usage="client",
                           lifetime=lifetime)


async def watch(base: Path, ca: CertificateAuthoritySettings, old: str, timings: Timings,
                done: asyncio.Event) -> None:
    """The phases as the files show them."""
    bundle = ca.trust_bundles[0]
    while not done.is_set():
        held = {fingerprint(c) for c in x509.load_pem_x509_certificates(bundle.read_bytes())}
        if (ca.state_directory / "next.crt").exists():
            timings.mark("staged")
        if len(held - {old}) >= 2:
            timings.mark("overlap published")
        if (ca.state_directory / "switched_at").exists():
            timings.mark("issuance switched")
        leaf = x509.load_pem_x509_certificate((base / "worker" / "tls.crt").read_bytes())
        if fingerprint(x509.load_pem_x509_certificate(ca.ca_cert.read_bytes())) != old and \
                leaf.issuer.rfc4514_string() == "CN=bench rotated CA 2":
            timings.mark("worker on new-CA leaf")
        if old not in held and "issuance switched" in timings.phases:
            timings.mark("old CA retired")
        await asyncio.sleep(0.02)


def old_ca_probe(gateway: MtlsGateway, server_ca: bytes, leaf_dir: Path) -> str:
    """A TLS handshake with a leaf of the retired CA: must be refused. The gateway's own
    count of refused handshakes decides (the client may see an alert, a reset or a close)."""
    host, _, port = gateway.address.rpartition(":")
    context = ssl.create_default_context(cadata=server_ca.decode())
    context.load_cert_chain(leaf_dir / "tls.crt", leaf_dir / "tls.key")
    before = gateway.stats.rejected
    with contextlib.suppress(OSError), \
            socket.create_connection((host, int(port)), timeout=5) as raw, \
            context.wrap_socket(raw, server_hostname="localhost") as tls:
        tls.settimeout(2)
        tls.recv(1)
    time.sleep(0.2)  # the gateway logs and counts after closing
    return "refused" if gateway.stats.rejected > before else "accepted"


async def keep_renewed(client: Client, task_queue: str, every: float,
                       done: asyncio.Event) -> None:
    """What the renewal Schedule does in production: RenewCertificate a few times per
    lifetime (it renews only inside the renewal window)."""
    while not done.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=every)
        if not done.is_set():
            await client.execute_workflow(
                RenewCertificate.run, RenewCertificateInput("worker"),
                id=f"bench-renew-{uuid.uuid4()}", task_queue=task_queue)


async def run(options: argparse.Namespace, base: Path  # noqa: PLR0915 - one scenario, in order
              ) -> tuple[Timings, Load, MtlsGateway, str, float, int]:
    earlier = datetime.now(UTC) - timedelta(days=1)
    server_ca = CertificateAuthority.bootstrap("bench server CA", now=earlier)
    rotated = CertificateAuthority.bootstrap("bench rotated CA", now=earlier)
    other = CertificateAuthority.bootstrap("bench starter CA", now=earlier)
    rotated.save(base / "ca" / "ca.crt", base / "ca" / "ca.key")
    install_pair(base / "server", server_ca.issue(SERVER_SPEC))
    bundle = base / "trust" / "client-ca.pem"
    bundle.parent.mkdir(parents=True)
    bundle.write_bytes(rotated.ca_pem + other.ca_pem)
    lifetime = timedelta(seconds=options.leaf_seconds)
    install_pair(base / "worker", rotated.issue(worker_spec(lifetime)))
    install_pair(base / "old-leaf", rotated.issue(worker_spec(timedelta(hours=1))))
    starter_pair = other.issue(worker_spec(timedelta(hours=1)))
    old = fingerprint(rotated.certificate)

    ca_settings = CertificateAuthoritySettings(
        ca_cert=base / "ca" / "ca.crt", ca_key=base / "ca" / "ca.key",
        common_name="bench rotated CA 2", lifetime_days=30, trust_bundles=(bundle,),
        soak_seconds=options.soak, grace_hours=options.grace / 3600)
    keyward_queue = f"bench-ca-{uuid.uuid4()}"
    settings = dataclasses.replace(
        Settings(), temporal=TemporalSettings(task_queue=keyward_queue),
        certificates={"worker": CertificateSettings(
            common_name="keyward-worker", usage="client", ca_cert=ca_settings.ca_cert,
            ca_key=ca_settings.ca_key, directory=base / "worker",
            lifetime_hours=options.leaf_seconds / 3600)},
        certificate_authorities={"bench": ca_settings})

    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        dev_server_startup_timeout=timedelta(seconds=30))
    timings = Timings()
    try:
        host, _, port = env.client.service_client.config.target_host.rpartition(":")
        gateway = MtlsGateway(GatewayConfig(
            listen_host="127.0.0.1", listen_port=0, upstream_host=host, upstream_port=int(port),
            server_cert=base / "server" / "tls.crt", server_key=base / "server" / "tls.key",
            client_ca=bundle, max_connection_age=MAX_CONNECTION_AGE,
            reload_interval=RELOAD_INTERVAL))
        await gateway.start()
        files = ClientTLSFiles(cert=base / "worker" / "tls.crt", key=base / "worker" / "tls.key",
                               ca=base / "server" / "ca.crt", server_name="localhost")
        ping_queue = f"bench-ping-{uuid.uuid4()}"
        worker_client = await Client.connect(gateway.address, tls=tls_config(files))
        starter = await Client.connect(gateway.address, tls=TLSConfig(
            server_root_ca_cert=server_ca.ca_pem, domain="localhost",
            client_cert=starter_pair.certificate_pem,
            client_private_key=starter_pair.private_key_pem))
        ping = Worker(worker_client, task_queue=ping_queue, workflows=[PingWorkflow])
        reloader = ClientCertificateReloader(ping, worker_client, files,
                                             interval=RELOAD_INTERVAL)
        certificates = CertificateActivities(settings, build_issuer)
        authorities = CaRotationActivities(settings)
        done = asyncio.Event()
        load = Load(starter, ping_queue, options.rate)
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            keyward = Worker(env.client, task_queue=keyward_queue,
                             workflows=[RotateCertificateAuthority, RenewCertificate],
                             activities=[certificates.inspect, certificates.issue_and_install,
                                         certificates.verify, authorities.plan,
                                         authorities.stage, authorities.publish,
                                         authorities.activate, authorities.verify_leaves],
                             activity_executor=pool)
            async with keyward:
                running = asyncio.create_task(ping.run())
                reloader.start()
                load_task = asyncio.create_task(load.run(time.monotonic() + 3600))
                await asyncio.sleep(2)  # steady load before the rotation begins
                timings.started = time.monotonic()
                watcher = asyncio.create_task(watch(base, ca_settings, old, timings, done))
                renewer = asyncio.create_task(keep_renewed(
                    env.client, keyward_queue, options.leaf_seconds / 4, done))
                await env.client.execute_workflow(
                    RotateCertificateAuthority.run, CaRotationInput("bench"),
                    id=f"bench-ca-rotation-{uuid.uuid4()}", task_queue=keyward_queue,
                    execution_timeout=timedelta(minutes=10))
                rotation_s = time.monotonic() - timings.started
                await asyncio.sleep(2)  # and after it
                done.set()
                await watcher
                await renewer
                load_task.cancel()
                with contextlib.suppress(BaseException):
                    await load_task
                if load._running:  # drain what was started
                    await asyncio.wait_for(asyncio.gather(*load._running), timeout=45)
                rejected = gateway.stats.rejected
                probe = await asyncio.to_thread(old_ca_probe, gateway, server_ca.ca_pem,
                                                base / "old-leaf")
                await reloader.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ping.shutdown(), timeout=15)
                running.cancel()
                with contextlib.suppress(BaseException):
                    await running
        await gateway.stop()
    finally:
        await env.shutdown()
    return timings, load, gateway, probe, rotation_s, rejected


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 30 s, for the tests")
    parser.add_argument("--rate", type=float, default=12.0, help="workflows started per second")
    parser.add_argument("--soak", type=float, default=5.0, help="soak seconds")
    parser.add_argument("--leaf-seconds", type=float, default=20.0, help="leaf lifetime")
    parser.add_argument("--grace", type=float, default=3.0, help="grace seconds")
    options = parser.parse_args(argv)
    if options.quick:
        options.rate, options.soak, options.leaf_seconds, options.grace = 5.0, 2.0, 8.0, 1.0
    with tempfile.TemporaryDirectory(prefix="keyward-bench-ca-") as tmp:
        timings, load, gateway, probe, rotation_s, handshake_failures = asyncio.run(
            run(options, Path(tmp)))
    print(f"machine: {machine_description()}")
    print(f"settings: {options.rate:g} workflows/s through the gateway, soak {options.soak:g} s, "
          f"leaf lifetime {options.leaf_seconds:g} s, grace {options.grace:g} s, gateway "
          f"max_connection_age {MAX_CONNECTION_AGE.total_seconds():g} s, reload interval "
          f"{RELOAD_INTERVAL:g} s\n")
    print("| phase (seen in the files) | seconds from the start |")
    print("|---|---:|")
    for phase, seconds in timings.phases.items():
        print(f"| {phase} | {seconds:.1f} |")
    print("\n| measurement | value |\n|---|---:|")
    print(f"| rotation, start → result | {rotation_s:.1f} s |")
    print(f"| workflows started / completed / failed | {load.started} / "
          f"{len(load.completed_at)} / {len(load.failures)} |")
    print(f"| gateway accepted / refused handshakes / closed for age | "
          f"{gateway.stats.accepted} / {handshake_failures} / {gateway.stats.closed_for_age} |")
    print(f"| gateway TLS reloads / refused reloads | {gateway.stats.reloads} / "
          f"{gateway.stats.failed_reloads} |")
    print(f"| handshake with an old-CA leaf after retirement | {probe} |")
    print(f"RESULT failed_workflows={len(load.failures)} rotation_s={rotation_s:.1f} "
          f"handshake_failures={handshake_failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
