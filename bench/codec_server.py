"""Benchmark: keyward's codec server against the Temporal samples' reference codec server.

Decode requests of 50 x 1 KiB payloads from 8 concurrent clients. keyward runs as
in production: JWT on (RS256, static public key), envelope mode against the dev
Vault, one audit log line per request. The reference is the samples' design:
aiohttp, no auth, local AES-GCM with an in-process key. Both run as their own
process; the load generator is this process. Rounds alternate between the two
so machine noise hits both alike.

    python bench/codec_server.py [--quick] [--rounds N] [--seconds S]

Last line: ``RESULT throughput_vs_reference=<x> p99_ms=<y>`` (keyward's p99).
Target: throughput ≥ 0.7 x the reference's.
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
from keyward_devstack.processes import free_port  # noqa: E402

PAYLOADS_PER_REQUEST = 50
PAYLOAD_BYTES = 1024
CLIENTS = 8
TARGET = 0.7
ISSUER = "https://idp.bench.invalid/"
AUDIENCE = "temporal-codec"


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


def signing_material(tmp: Path) -> tuple[Path, str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = tmp / "jwt-public.pem"
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "bench", "iat": now, "exp": now + 3600}
    reader = jwt.encode({**claims, "permissions": ["default:read"]}, key, algorithm="RS256")
    writer = jwt.encode({**claims, "permissions": ["default:write"]}, key, algorithm="RS256")
    return public, reader, writer


def start_keyward(vault: VaultHandle, public_key: Path,
                  log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "VAULT_"))}
    env.update({
        "VAULT_ADDR": vault.address, "VAULT_TOKEN": vault.token.reveal(),
        "KEYWARD_CODEC__MODE": "envelope",
        "KEYWARD_CODEC_SERVER__PORT": str(port), "KEYWARD_CODEC_SERVER__AUTH": "jwt",
        "KEYWARD_CODEC_SERVER__JWT_PUBLIC_KEY": str(public_key),
        "KEYWARD_CODEC_SERVER__JWT_ISSUER": ISSUER,
        "KEYWARD_CODEC_SERVER__JWT_AUDIENCE": AUDIENCE,
        "KEYWARD_CODEC_SERVER__JWT_ALGORITHMS": "RS256",
        "KEYWARD_LOGGING__FORMAT": "json",
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


async def run(options: argparse.Namespace, vault: VaultHandle, tmp: Path) -> list[Server]:
    public_key, reader, writer = signing_material(tmp)
    kw_url, kw_proc = start_keyward(vault, public_key, tmp / "keyward.log")
    ref_url, ref_proc = start_reference(tmp / "reference.log")
    json_headers = {"Content-Type": "application/json", "X-Namespace": "default"}
    servers = [Server("keyward (JWT, envelope)", kw_url,
                      {**json_headers, "Authorization": f"Bearer {reader}"}, kw_proc),
               Server("reference (no auth, local key)", ref_url, json_headers, ref_proc)]
    rng = random.Random(7)
    plain = Payloads(payloads=[make_payload(PAYLOAD_BYTES, rng)
                               for _ in range(PAYLOADS_PER_REQUEST)])
    try:
        connector = aiohttp.TCPConnector(limit=CLIENTS * 2)
        async with aiohttp.ClientSession(connector=connector) as session:
            for server, log in zip(servers, ("keyward.log", "reference.log"), strict=True):
                await wait_ready(session, server, tmp / log)
            await prepare(session, servers[0], {"Authorization": f"Bearer {writer}"}, plain)
            await prepare(session, servers[1], {}, plain)
            for server in servers:  # warm-up, not measured
                await load(session, server, min(1.0, options.seconds))
                server.latencies.clear()
                server.requests, server.seconds = 0, 0.0
            for round_index in range(options.rounds):
                order = servers if round_index % 2 == 0 else servers[::-1]
                for server in order:
                    await load(session, server, options.seconds)
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(timeout=10)
    return servers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for the test suite")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="per server per round")
    options = parser.parse_args(argv)
    if options.quick:
        options.rounds, options.seconds = 1, 1.0
    with dev_vault(["default"]) as vault, tempfile.TemporaryDirectory() as tmp:
        servers = asyncio.run(run(options, vault, Path(tmp)))
    keyward, reference = servers
    ratio = keyward.throughput / reference.throughput if reference.throughput else 0.0
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
    print(f"RESULT throughput_vs_reference={ratio:.2f} p99_ms={keyward.percentile(0.99):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
