"""Benchmark: keyward's codec server against the Temporal samples' reference codec server.

Decode requests of 50 x 1 KiB payloads from 8 concurrent clients. keyward runs as
in production: JWT on (RS256, static public key), envelope mode against the dev
Vault, one audit log line per request. The reference is the samples' design:
aiohttp, no auth, local AES-GCM with an in-process key. A second keyward process takes
its roles from Temporal Cloud (``role_sources = ["temporal-cloud"]``) instead of the
token's ``permissions`` claim: a Cloud-shaped token of one user, the Cloud Ops API
emulator (tests/emulators/cloud_ops.py) on a thread of this process, the user's role
cached by the server (default TTL) after a warm-up request. Each server is its own
process; the load generator is this process. Rounds alternate the order of the servers
so machine noise hits all alike.

    python bench/codec_server.py [--quick] [--rounds N] [--seconds S]

Last line: ``RESULT throughput_vs_reference=<x> p99_ms=<y> cloud_roles_vs_claims=<x>
ops_calls_per_1000=<n>`` (p99 of the claims variant; Cloud-roles throughput over the
claims variant's; ``GetUsers`` calls during the measured rounds per 1,000 Cloud-roles
decode requests). Targets: throughput ≥ 0.7 x the reference's; Cloud roles ≥ 0.9 x the
claims variant's; ≤ 1 Ops API call per 1,000 requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._support import VaultHandle, dev_vault, machine_description  # noqa: E402
from bench.codec import make_payload  # noqa: E402
from keyward.config.codec import CLOUD_AUDIENCE, CLOUD_EMAIL_CLAIM, CLOUD_ISSUER  # noqa: E402
from keyward_devstack.processes import free_port  # noqa: E402
from tests.emulators.cloud_ops import (  # noqa: E402
    DEFAULT_API_KEY,
    DEFAULT_API_VERSION,
    ORDERS,
    CloudOpsEmulator,
    RunningCloudOps,
    seed_sample_account,
    serve_in_thread,
)
from tests.tls_material import CertificateAuthority  # noqa: E402

PAYLOADS_PER_REQUEST = 50
PAYLOAD_BYTES = 1024
CLIENTS = 8
TARGET = 0.7
CLOUD_TARGET = 0.9
OPS_CALLS_TARGET = 1.0
ISSUER = "https://idp.bench.invalid/"
AUDIENCE = "temporal-codec"
#: The Cloud user whose decode requests are measured (read on ORDERS) and the one that
#: encodes the request body once beforehand (write on ORDERS); both seeded by the emulator.
CLOUD_READER = "ns-read@example.com"
CLOUD_WRITER = "ns-write@example.com"
#: The Cloud namespace encrypts with the same Transit key as "default", so both keyward
#: variants do the same codec work and differ only in where the roles come from.
TRANSIT_KEY = "default"


@dataclass
class Server:
    name: str
    url: str
    headers: dict[str, str]
    process: subprocess.Popen[bytes]
    body: bytes = b""
    latencies: list[float] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


@dataclass(frozen=True)
class Tokens:
    public_key: Path
    reader: str
    writer: str
    cloud_reader: str
    cloud_writer: str


def signing_material(tmp: Path) -> Tokens:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = tmp / "jwt-public.pem"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    now = int(time.time())
    times = {"iat": now, "exp": now + 3600}
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", **times}
    # As Temporal Cloud's identity provider issues them to Web UI users: the email, no
    # permissions claim.
    cloud = {"iss": CLOUD_ISSUER, "aud": CLOUD_AUDIENCE, "sub": "auth0|65f0c0ffee", **times}

    def sign(body: dict[str, object]) -> str:
        return jwt.encode(body, key, algorithm="RS256")

    return Tokens(public_key=public,
                  reader=sign({**claims, "permissions": ["default:read"]}),
                  writer=sign({**claims, "permissions": ["default:write"]}),
                  cloud_reader=sign({**cloud, CLOUD_EMAIL_CLAIM: CLOUD_READER}),
                  cloud_writer=sign({**cloud, CLOUD_EMAIL_CLAIM: CLOUD_WRITER}))


def start_keyward(vault: VaultHandle, public_key: Path, log: Path, *,
                  cloud: RunningCloudOps | None = None,
                  api_key_file: Path | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """keyward's codec server; with ``cloud``, roles from Temporal Cloud (Cloud's issuer
    and audience by default), the Ops API at the emulator, the cache TTL at its default."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "VAULT_"))}
    env.update({
        "VAULT_ADDR": vault.address, "VAULT_TOKEN": vault.token.reveal(),
        "KEYWARD_CODEC__MODE": "envelope",
        "KEYWARD_CODEC_SERVER__PORT": str(port), "KEYWARD_CODEC_SERVER__AUTH": "jwt",
        "KEYWARD_CODEC_SERVER__JWT_PUBLIC_KEY": str(public_key),
        "KEYWARD_CODEC_SERVER__JWT_ALGORITHMS": "RS256",
        "KEYWARD_LOGGING__FORMAT": "json",
    })
    if cloud is None:
        env.update({"KEYWARD_CODEC_SERVER__JWT_ISSUER": ISSUER,
                    "KEYWARD_CODEC_SERVER__JWT_AUDIENCE": AUDIENCE})
    else:
        assert api_key_file is not None
        env.update({
            "KEYWARD_CODEC__KEYS": f"{ORDERS}={TRANSIT_KEY}",
            "KEYWARD_CODEC_SERVER__ROLE_SOURCES": "temporal-cloud",
            "KEYWARD_CLOUD__API_KEY_FILE": str(api_key_file),
            "KEYWARD_CLOUD__HOST": cloud.host, "KEYWARD_CLOUD__PORT": str(cloud.port),
            "KEYWARD_CLOUD__TLS": "false", "KEYWARD_CLOUD__API_VERSION": DEFAULT_API_VERSION,
        })
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "codec_server.py")], env=env,
                                   stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    return f"http://127.0.0.1:{port}", process


def start_reference(log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(ROOT / "bench" /
                                                         "reference_codec_server.py"),
                                    "--port", str(port)], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=ROOT)
    return f"http://127.0.0.1:{port}", process


async def wait_ready(session: aiohttp.ClientSession, server: Server, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = log.read_bytes()[-2000:].decode(errors="replace")  # noqa: ASYNC240 - failure path
            raise RuntimeError(f"{server.name} exited: {tail}")
        try:
            async with session.options(f"{server.url}/decode") as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{server.name} did not start")


async def prepare(session: aiohttp.ClientSession, server: Server, writer_headers: dict[str, str],
                  plain: Payloads) -> None:
    """Encode the request body through the server itself, then check one decode."""
    body = json_format.MessageToJson(plain, indent=None).encode()
    async with session.post(f"{server.url}/encode", data=body,
                            headers={**server.headers, **writer_headers}) as response:
        if response.status != 200:
            raise RuntimeError(f"{server.name} encode: {response.status} {await response.text()}")
        server.body = await response.read()
    async with session.post(f"{server.url}/decode", data=server.body,
                            headers=server.headers) as response:
        decoded = json_format.Parse(await response.read(), Payloads())
    if decoded != plain:
        raise RuntimeError(f"{server.name} did not decode what it encoded")


async def load(session: aiohttp.ClientSession, server: Server, seconds: float) -> None:
    stop_at = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            async with session.post(f"{server.url}/decode", data=server.body,
                                    headers=server.headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{server.name}: HTTP {response.status}")
            server.latencies.append(time.perf_counter() - started)
            server.requests += 1

    began = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    server.seconds += time.perf_counter() - began


@dataclass
class Measured:
    #: keyward with the permissions claim, keyward with Cloud roles, the reference.
    servers: list[Server]
    #: GetUsers calls the emulator answered during the measured rounds.
    ops_calls: int
    #: GetUsers calls before them (the encode, the check decode and the warm-up).
    ops_calls_before: int
    #: Wall-clock seconds from the Cloud server's first request to the last measured one.
    cloud_span_seconds: float


async def run(options: argparse.Namespace, vault: VaultHandle, tmp: Path,
              cloud: RunningCloudOps) -> Measured:
    tokens = signing_material(tmp)
    api_key_file = tmp / "cloud-api-key"
    api_key_file.write_text(DEFAULT_API_KEY + "\n")
    logs = ("keyward.log", "keyward-cloud.log", "reference.log")
    kw_url, kw_proc = start_keyward(vault, tokens.public_key, tmp / logs[0])
    cloud_url, cloud_proc = start_keyward(vault, tokens.public_key, tmp / logs[1],
                                          cloud=cloud, api_key_file=api_key_file)
    ref_url, ref_proc = start_reference(tmp / logs[2])
    json_headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    cloud_headers = {**json_headers, "X-Namespace": ORDERS}
    servers = [Server("keyward (JWT, envelope)", kw_url,
                      {**json_headers, "Authorization": f"Bearer {tokens.reader}"}, kw_proc),
               Server("keyward, Cloud roles (JWT, envelope)", cloud_url,
                      {**cloud_headers, "Authorization": f"Bearer {tokens.cloud_reader}"},
                      cloud_proc),
               Server("reference (no auth, local key)", ref_url, json_headers, ref_proc)]
    rng = random.Random(7)
    plain = Payloads(payloads=[make_payload(PAYLOAD_BYTES, rng)
                               for _ in range(PAYLOADS_PER_REQUEST)])
    emulator = cloud.emulator
    try:
        connector = aiohttp.TCPConnector(limit=CLIENTS * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            for server, log in zip(servers, logs, strict=True):
                await wait_ready(session, server, tmp / log)
            cloud_began = time.perf_counter()
            await prepare(session, servers[0], {"Authorization": f"Bearer {tokens.writer}"},
                          plain)
            # The check decode in prepare is the reader's warm-up request: it fills the
            # server's role cache for the one user measured.
            await prepare(session, servers[1],
                          {"Authorization": f"Bearer {tokens.cloud_writer}"}, plain)
            await prepare(session, servers[2], {}, plain)
            for server in servers:  # warm-up, not measured
                await load(session, server, min(1.0, options.seconds))
                server.latencies.clear()
                server.requests, server.seconds = 0, 0.0
            ops_calls_before = emulator.calls_to("GetUsers")
            for round_index in range(options.rounds):
                order = servers if round_index % 2 == 0 else servers[::-1]
                for server in order:
                    await load(session, server, options.seconds)
            ops_calls = emulator.calls_to("GetUsers") - ops_calls_before
            cloud_span = time.perf_counter() - cloud_began
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(timeout=10)
    return Measured(servers, ops_calls, ops_calls_before, cloud_span)


def cloud_emulator() -> CloudOpsEmulator:
    """The Cloud Ops API emulator with the sample account (its users and namespaces)."""
    emulator = CloudOpsEmulator()
    seed_sample_account(emulator, ca_pem=CertificateAuthority.create("bench CA").cert_pem())
    return emulator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="per server per round")
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.seconds = 1, 1.0
    with dev_vault([TRANSIT_KEY]) as vault, tempfile.TemporaryDirectory() as tmp, \
            serve_in_thread(cloud_emulator()) as cloud:
        measured = asyncio.run(run(options, vault, Path(tmp), cloud))
    servers = measured.servers
    keyward, keyward_cloud, reference = servers
    ratio = keyward.throughput / reference.throughput if reference.throughput else 0.0
    cloud_ratio = keyward_cloud.throughput / keyward.throughput if keyward.throughput else 0.0
    per_1000 = (measured.ops_calls * 1000 / keyward_cloud.requests
                if keyward_cloud.requests else 0.0)
    print(f"machine: {machine_description()}")
    print(f"decode of {PAYLOADS_PER_REQUEST} x {PAYLOAD_BYTES} B payloads, {CLIENTS} concurrent "
          f"clients, {options.rounds} rounds x {options.seconds:g} s per server\n")
    print("| server | req/s | payloads/s | p50 ms | p99 ms | requests |")
    print("|---|---:|---:|---:|---:|---:|")
    for server in servers:
        print(f"| {server.name} | {server.throughput:,.0f} | "
              f"{server.throughput * PAYLOADS_PER_REQUEST:,.0f} | {server.percentile(0.5):.2f} | "
              f"{server.percentile(0.99):.2f} | {server.requests:,} |")
    print(f"\nthroughput ratio keyward/reference = {ratio:.2f} (target >= {TARGET})")
    if ratio < TARGET:
        print(f"target missed: {ratio:.2f} < {TARGET}")
    latency_ratio = statistics.median(keyward.latencies) / statistics.median(reference.latencies)
    print(f"median latency ratio = {latency_ratio:.2f}")
    print(f"\nCloud roles (one user, {CLOUD_READER}, role cache at its default TTL): "
          f"throughput ratio Cloud roles/claims = {cloud_ratio:.2f} (target >= {CLOUD_TARGET})")
    if cloud_ratio < CLOUD_TARGET:
        print(f"target missed: {cloud_ratio:.2f} < {CLOUD_TARGET}")
    print(f"Ops API GetUsers calls: {measured.ops_calls_before} before the measured rounds "
          f"(encode user, warm-up), {measured.ops_calls} during them over "
          f"{keyward_cloud.requests:,} requests = {per_1000:.2f} per 1,000 "
          f"(target <= {OPS_CALLS_TARGET:g}); {measured.cloud_span_seconds:.0f} s from the "
          "first Cloud request to the end")
    if per_1000 > OPS_CALLS_TARGET:
        print(f"target missed: {per_1000:.2f} > {OPS_CALLS_TARGET:g}")
    print(f"RESULT throughput_vs_reference={ratio:.2f} p99_ms={keyward.percentile(0.99):.2f} "
          f"cloud_roles_vs_claims={cloud_ratio:.2f} ops_calls_per_1000={per_1000:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
