"""Payload codec throughput against keyward's dev Vault: where does keyward stand?

``python bench/codec.py [--rounds N] [--quick] [--markdown]`` from the repository root.

Variants, each measured as **encode + decode round trips** of a whole list (one
``encode`` call, then one ``decode`` call of what it returned), reported as payloads/s:

* (a) ``local``: the Temporal Python encryption sample's codec, the floor for envelope
  mode: the whole ``Payload`` proto serialised, AES-256-GCM with a random 12-byte nonce
  under an in-process key, metadata ``encoding=binary/encrypted`` + ``encryption-key-id``.
  No Vault at all.
* (b) ``per-payload``: the seeds' design: one ``transit/encrypt`` (and ``transit/decrypt``)
  HTTP call per payload, **sequentially**, through the same :class:`AsyncTransit` client.
  An extra row (b') issues the same calls concurrently with ``asyncio.gather``.
* (c) ``direct``: keyward direct mode: one batched Transit call per encode and per decode.
* (d) ``envelope``: keyward envelope mode. Encoding reuses the current data key (one
  ``transit/datakey`` call when it is created, then none until it ages out after
  ``datakey_max_age_seconds``); decoding finds the unwrapped data key in the decode key
  cache, which the warm-up fills, so the reported rows are the **warm-cache steady state**
  with no Vault call at all. Extra rows: (d') with ``compression=True``, and (d'') with the
  decode key cache emptied before every decode (one ``transit/decrypt`` per decode call:
  what a fresh process or a codec server pays once per data key).

keyward codecs use default settings except the namespace → key map; compression is
set off explicitly (the default) for (c) and (d). Payloads are realistic JSON documents
(orders with customer, items, notes) padded to exactly 1 KiB or 64 KiB of ``data``, with
``encoding=json/plain`` metadata, all different; lists hold 1 or 100 of them.

Noise control: a warm-up per variant and cell (which also checks that decode(encode(x))
== x and that nothing leaves in plaintext), then ``--rounds`` rounds in which every
variant runs on every cell, the variant order rotating each round, each sample lasting at
least ``--min-seconds``; the table shows the median across rounds and the spread
((max - min) / median). The dev Vault is keyward's Python dev server, started on a free
port in a temporary directory and stopped at the end; it shares the machine's CPUs with
the benchmark, which matters for every variant that calls it.

The last line is ``RESULT envelope_vs_local=<x> batched_vs_per_payload=<y>`` for 1 KiB
payloads in lists of 100 (targets: x >= 0.7, y >= 10). Missed targets are printed, but
the exit status is 0 either way.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import json
import os
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from keyward.codec.converter import build_codec
from keyward.codec.datakeys import DecodeKeyCache
from keyward.codec.transit_codec import VaultTransitCodec
from keyward.config import CodecSettings, Settings, VaultSettings
from keyward.vault.transit_async import AsyncTransit, DecryptItem, EncryptItem

ROOT: Final = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/codec.py` puts bench/, not the root, on the path
    sys.path.insert(0, str(ROOT))

from bench._support import (  # noqa: E402
    VaultHandle,
    code_state,
    dev_vault,
    machine_description,
    median,
)

TRANSIT_KEY: Final = "bench"
NAMESPACE: Final = "bench-namespace"
ENCRYPTED: Final = b"binary/encrypted"
NONCE_BYTES: Final = 12
SIZES: Final = (1024, 64 * 1024)
COUNTS: Final = (1, 100)
RESULT_CELL: Final = (1024, 100)
TARGET_ENVELOPE_VS_LOCAL: Final = 0.7
TARGET_BATCHED_VS_PER_PAYLOAD: Final = 10.0

Cell = tuple[int, int]  # (payload data bytes, payloads per list)


# ---- the codecs under test ------------------------------------------------------------------


class LocalAesGcmCodec(PayloadCodec):
    """(a) The Temporal Python samples' encryption codec (``encryption/codec.py``)."""

    def __init__(self, key_id: str = "bench-local-key") -> None:
        self._key_id = key_id.encode()
        self._aead = AESGCM(AESGCM.generate_key(bit_length=256))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": self._key_id},
                        data=self._encrypt(p.SerializeToString()))
                for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out: list[Payload] = []
        for p in payloads:
            if p.metadata.get("encoding", b"") != ENCRYPTED:
                out.append(p)
                continue
            if p.metadata.get("encryption-key-id", b"") != self._key_id:
                raise ValueError("unknown encryption key id")
            out.append(Payload.FromString(self._decrypt(p.data)))
        return out

    def _encrypt(self, data: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, None)

    def _decrypt(self, data: bytes) -> bytes:
        return self._aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], None)


class CountingTransit(AsyncTransit):
    """The real client, counting HTTP requests (so the table can show Vault calls)."""

    requests: int = 0

    async def _post_once(self, path: str, body: dict[str, Any],
                         operation: str) -> dict[str, Any]:
        self.requests += 1
        return await super()._post_once(path, body, operation)


class PerPayloadTransitCodec(PayloadCodec):
    """(b) The seeds' design: one Transit encrypt/decrypt HTTP call per payload."""

    def __init__(self, transit: AsyncTransit, key: str, *, concurrent: bool) -> None:
        self._transit = transit
        self._key = key
        self._key_id = key.encode()
        self._concurrent = concurrent

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._concurrent:
            return list(await asyncio.gather(*(self._encode_one(p) for p in payloads)))
        return [await self._encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self._concurrent:
            return list(await asyncio.gather(*(self._decode_one(p) for p in payloads)))
        return [await self._decode_one(p) for p in payloads]

    async def _encode_one(self, payload: Payload) -> Payload:
        (ciphertext,) = await self._transit.encrypt(
            self._key, [EncryptItem(payload.SerializeToString())])
        return Payload(metadata={"encoding": ENCRYPTED, "encryption-key-id": self._key_id},
                       data=ciphertext.encode())

    async def _decode_one(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding", b"") != ENCRYPTED:
            return payload
        (plain,) = await self._transit.decrypt(self._key, [DecryptItem(payload.data.decode())])
        return Payload.FromString(plain)


class ColdDecodeCache(PayloadCodec):
    """(d'') A keyward codec whose decode key cache is emptied before every decode."""

    def __init__(self, codec: VaultTransitCodec) -> None:
        self._codec = codec

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self._codec.encode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        state = self._codec.state
        state.decode_keys = DecodeKeyCache(max_entries=state.settings.decode_cache_size,
                                           ttl_seconds=state.settings.decode_cache_ttl_seconds)
        return await self._codec.decode(payloads)


# ---- variants and measurements --------------------------------------------------------------


@dataclass
class Variant:
    key: str
    label: str
    codec: PayloadCodec
    transit: CountingTransit | None
    samples: dict[Cell, list[float]] = field(default_factory=dict)
    requests: dict[Cell, list[int]] = field(default_factory=dict)  # [requests, lists]

    def pps(self, cell: Cell) -> float:
        return median(self.samples.get(cell, []))

    def spread(self, cell: Cell) -> float:
        values = self.samples.get(cell, [])
        middle = median(values)
        return (max(values) - min(values)) / middle if values and middle else float("nan")

    def requests_per_list(self, cell: Cell) -> float:
        sent, lists = self.requests.get(cell, [0, 0])
        return sent / lists if lists else float("nan")


def keyward_codec(vault: VaultHandle, transit: CountingTransit, **codec: Any) -> VaultTransitCodec:
    """A codec exactly as ``build_codec`` makes it, its Transit client swapped for ``transit``."""
    settings = dataclasses.replace(
        Settings(),
        vault=VaultSettings(address=vault.address, token=vault.token),
        codec=dataclasses.replace(CodecSettings(), keys={NAMESPACE: TRANSIT_KEY}, **codec),
    )
    token = vault.token.reveal()
    built = build_codec(settings, lambda: token, namespace=NAMESPACE)
    built.state.transit = transit
    built.state.encode_keys.generate = transit.generate_data_key
    return built


def make_variants(vault: VaultHandle) -> list[Variant]:
    settings = VaultSettings(address=vault.address, token=vault.token)
    token = vault.token.reveal()

    def transit() -> CountingTransit:
        return CountingTransit(settings, lambda: token)

    seq, gathered, direct, envelope, zlib, cold = (transit() for _ in range(6))
    return [
        Variant("local", "(a) local AES-GCM, in-process key", LocalAesGcmCodec(), None),
        Variant("per-payload", "(b) Transit call per payload, sequential",
                PerPayloadTransitCodec(seq, TRANSIT_KEY, concurrent=False), seq),
        Variant("per-payload-gather", "(b') Transit call per payload, asyncio.gather",
                PerPayloadTransitCodec(gathered, TRANSIT_KEY, concurrent=True), gathered),
        Variant("direct", "(c) keyward direct (batched)",
                keyward_codec(vault, direct, mode="direct", compression=False), direct),
        Variant("envelope", "(d) keyward envelope, warm key caches",
                keyward_codec(vault, envelope, mode="envelope", compression=False), envelope),
        Variant("envelope-zlib", "(d') keyward envelope + compression",
                keyward_codec(vault, zlib, mode="envelope", compression=True), zlib),
        Variant("envelope-cold", "(d'') keyward envelope, cold decode cache",
                ColdDecodeCache(keyward_codec(vault, cold, mode="envelope", compression=False)),
                cold),
    ]


_WORDS: Final = ("order", "invoice", "shipment", "pending", "paid", "refund", "customer",
                 "express", "standard", "warehouse", "Berlin", "Lisbon", "Osaka", "Austin",
                 "blue", "large", "cotton", "steel", "gift", "wrap", "priority", "returned",
                 "discount", "loyalty", "account", "street", "north", "delivery", "window")


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(low, high)))


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def make_payload(size: int, rng: random.Random) -> Payload:
    """A JSON order document of exactly ``size`` bytes (padded with a note)."""
    doc: dict[str, Any] = {
        "id": f"ord_{rng.getrandbits(64):016x}",
        "type": "order.created",
        "created_at": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
                      f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z",
        "customer": {"id": f"cus_{rng.getrandbits(48):012x}",
                     "name": _words(rng, 2, 3).title(),
                     "email": f"user{rng.randint(1, 10**6)}@example.com",
                     "tier": rng.choice(("free", "pro", "enterprise"))},
        "amount_cents": rng.randint(100, 10**7),
        "currency": rng.choice(("EUR", "USD", "JPY")),
        "items": [],
        "note": "",
    }
    length = len(_dumps(doc))
    items: list[dict[str, Any]] = doc["items"]
    while True:
        item = {"sku": f"SKU-{rng.randrange(10**6):06d}", "qty": rng.randint(1, 9),
                "price": round(rng.uniform(1, 500), 2), "desc": _words(rng, 3, 9)}
        added = len(_dumps(item)) + (1 if items else 0)
        if length + added > size - 8:
            break
        items.append(item)
        length += added
    note = ""
    while len(note) < size - length:
        note += _words(rng, 8, 8) + " "
    doc["note"] = note[:size - length]
    data = _dumps(doc).encode()
    assert len(data) == size, (len(data), size)
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def round_trip(codec: PayloadCodec, payloads: Sequence[Payload]) -> list[Payload]:
    return await codec.decode(await codec.encode(payloads))


async def warm_up(variant: Variant, payloads: Sequence[Payload], iterations: int) -> None:
    """Fill connection pools and key caches; check the round trip is right and encrypted."""
    encoded = await variant.codec.encode(payloads)
    for original, sealed in zip(payloads, encoded, strict=True):
        if sealed.metadata.get("encoding") != ENCRYPTED or original.data[:48] in sealed.data:
            raise AssertionError(f"{variant.key}: payload left unencrypted")
    if await variant.codec.decode(encoded) != list(payloads):
        raise AssertionError(f"{variant.key}: decode(encode(x)) != x")
    for _ in range(iterations - 1):
        await round_trip(variant.codec, payloads)


async def sample(variant: Variant, cell: Cell, payloads: Sequence[Payload],
                 min_seconds: float) -> None:
    """One measurement: round trips until ``min_seconds`` have passed (at least one)."""
    gc.collect()
    before = variant.transit.requests if variant.transit else 0
    lists = 0
    start = time.perf_counter()
    while True:
        await round_trip(variant.codec, payloads)
        lists += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    variant.samples.setdefault(cell, []).append(lists * len(payloads) / elapsed)
    counted = variant.requests.setdefault(cell, [0, 0])
    counted[0] += (variant.transit.requests if variant.transit else 0) - before
    counted[1] += lists


@dataclass(frozen=True)
class Options:
    rounds: int
    min_seconds: float
    warmup: int
    markdown: bool
    cells: tuple[Cell, ...] = tuple((size, count) for size in SIZES for count in COUNTS)


async def run(vault: VaultHandle, options: Options) -> list[Variant]:
    rng = random.Random(20250101)  # test data, not cryptography (S311 is off in bench/)
    wanted: dict[int, int] = {}
    for size, count in options.cells:
        wanted[size] = max(count, wanted.get(size, 0))
    data = {size: [make_payload(size, rng) for _ in range(count)]
            for size, count in wanted.items()}
    variants = make_variants(vault)
    try:
        for size, count in options.cells:
            for variant in variants:
                await warm_up(variant, data[size][:count], options.warmup)
        for number in range(options.rounds):
            shift = number % len(variants)
            order = variants[shift:] + variants[:shift]
            for size, count in options.cells:
                for variant in order:
                    await sample(variant, (size, count), data[size][:count],
                                 options.min_seconds)
            print(f"  round {number + 1}/{options.rounds} done", file=sys.stderr, flush=True)
    finally:
        for variant in variants:
            if variant.transit is not None:
                await variant.transit.close()
    return variants


# ---- report ---------------------------------------------------------------------------------


def _size(size: int) -> str:
    return f"{size // 1024} KiB"


def table(variants: Sequence[Variant], cells: Sequence[Cell], markdown: bool) -> list[str]:
    local = next(v for v in variants if v.key == "local")
    header = ["payload", "list", "variant", "payloads/s", "ms/list", "spread", "vs local",
              "Vault req/list"]
    rows: list[list[str]] = []
    for cell in cells:
        size, count = cell
        for variant in variants:
            pps = variant.pps(cell)
            rows.append([_size(size), str(count), variant.label, f"{pps:,.0f}",
                         f"{1000 * count / pps:.3f}", f"{100 * variant.spread(cell):.0f}%",
                         f"{pps / local.pps(cell):.2f}",
                         f"{variant.requests_per_list(cell):.1f}"])
    right = {1, 3, 4, 5, 6, 7}
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join("---:" if i in right else "---" for i in range(len(header)))
                 + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return lines
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    out = [line(header), line(["-" * w for w in widths])]
    previous = None
    for row in rows:
        if previous is not None and row[:2] != previous:
            out.append("")
        previous = row[:2]
        out.append(line(row))
    return out


def report(variants: Sequence[Variant], options: Options, load: tuple[float, float]) -> None:
    by_key = {v.key: v for v in variants}
    print(f"keyward codec benchmark: {machine_description()}")
    print(f"code measured: {code_state()}")
    print(f"1-minute load average: {load[0]:.2f} before, {load[1]:.2f} after "
          "(anything near nproc means other work shared the CPUs)")
    print(f"encode+decode round trips of a whole list, payloads/s = median of {options.rounds} "
          f"round(s), each sample >= {options.min_seconds:g}s; spread = (max-min)/median; "
          "Vault req/list = HTTP requests per encode+decode of one list")
    print()
    for text in table(variants, options.cells, options.markdown):
        print(text)
    print()
    envelope_vs_local = by_key["envelope"].pps(RESULT_CELL) / by_key["local"].pps(RESULT_CELL)
    batched = by_key["direct"].pps(RESULT_CELL) / by_key["per-payload"].pps(RESULT_CELL)
    where = f"{_size(RESULT_CELL[0])} x {RESULT_CELL[1]}"
    checks = [("envelope vs local", envelope_vs_local, TARGET_ENVELOPE_VS_LOCAL,
               by_key["envelope"], by_key["local"]),
              ("batched (direct) vs per-payload (sequential)", batched,
               TARGET_BATCHED_VS_PER_PAYLOAD, by_key["direct"], by_key["per-payload"])]
    for name, value, target, top, bottom in checks:
        rounds = [a / b for a, b in zip(top.samples[RESULT_CELL], bottom.samples[RESULT_CELL],
                                        strict=True)]
        verdict = "target met" if value >= target else "TARGET MISSED"
        print(f"{name} ({where}): {value:.2f}x, ratio of medians (same-round ratios "
              f"{min(rounds):.2f}..{max(rounds):.2f}); target >= {target:g}x: {verdict}")
        if value < target:
            print(f"target missed: {name} is {value:.2f}x, below {target:g}x")
    print(f"RESULT envelope_vs_local={envelope_vs_local:.2f} batched_vs_per_payload={batched:.2f}")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="measurement rounds (default 5)")
    parser.add_argument("--min-seconds", type=float, default=0.3,
                        help="minimum duration of one sample (default 0.3)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run in a few seconds: one round, one round trip per "
                             "sample, 64 KiB x 100 left out")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.min_seconds < 0:
        parser.error("--rounds must be >= 1 and --min-seconds >= 0")
    if args.quick:
        cells = ((1024, 1), (1024, 100), (64 * 1024, 1))
        return Options(rounds=1, min_seconds=0.0, warmup=1, markdown=args.markdown, cells=cells)
    return Options(rounds=args.rounds, min_seconds=args.min_seconds, warmup=3,
                   markdown=args.markdown)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    load_before = os.getloadavg()[0]
    with dev_vault([TRANSIT_KEY]) as vault:
        variants = asyncio.run(run(vault, options))
    report(variants, options, (load_before, os.getloadavg()[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
