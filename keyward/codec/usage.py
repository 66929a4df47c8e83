"""Per-(Transit key, version) encryption counters kept by each codec process.

Vault Transit does not count encryptions per key version, so keyward does:
every codec process counts what it asked Vault to do, and the key-usage ledger
workflow sums the reports. What is counted is what touches the Transit key:

* direct mode: one per payload Vault encrypted;
* envelope mode: one per data key Vault generated (the payloads under a data
  key count against that data key's own bound, enforced by the codec).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass


@dataclass(frozen=True)
class UsageSample:
    key: str
    version: int
    encryptions: int


class UsageCounters:
    """Thread-safe counters; :meth:`drain` hands over and resets what was counted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, int]] = Counter()
        self._totals: Counter[tuple[str, int]] = Counter()

    def add(self, key: str, version: int, count: int = 1) -> None:
        with self._lock:
            self._counts[(key, version)] += count
            self._totals[(key, version)] += count

    def drain(self) -> list[UsageSample]:
        """Counts since the last drain (for periodic reports to the ledger)."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return [UsageSample(k, v, n) for (k, v), n in sorted(counts.items())]

    def restore(self, samples: list[UsageSample]) -> None:
        """Put drained counts back when reporting them failed, so none are lost."""
        with self._lock:
            for sample in samples:
                self._counts[(sample.key, sample.version)] += sample.encryptions

    def totals(self) -> dict[tuple[str, int], int]:
        """Everything counted since the process started, never drained: what the ledger
        should have received (bench/rotation.py and the codec tests compare against it)."""
        with self._lock:
            return dict(self._totals)
