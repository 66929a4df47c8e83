"""Data-key caches for envelope mode.

Encoding keeps one *current* data key per Transit key and replaces it when it
is older than ``max_age`` or has encrypted ``max_uses`` payloads. With random
96-bit nonces NIST SP 800-38D allows at most 2^32 encryptions per AES-GCM key;
``max_uses`` is kept far below that, so the bound holds per data key, and the
Transit key's own count is simply the number of data keys it generated.

Decoding keeps a bounded LRU of unwrapped data keys with a TTL, so a history
full of payloads under the same data key costs one Vault call, not one per
payload, while a key Vault would now refuse (say, after the decryption floor
was raised) is forgotten within the TTL.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyward.secrets import REGISTRY
from keyward.vault.transit_async import DataKey

Clock = Callable[[], float]


@dataclass
class ActiveDataKey:
    """A data key in use for encryption, with the bookkeeping that retires it."""

    key_id: str
    key_version: int
    wrapped: str
    aead: AESGCM
    created: float
    uses: int = 0


@dataclass
class EncodeKeyCache:
    """One current data key per Transit key, rotated by age and by use count."""

    generate: Callable[[str], Awaitable[DataKey]]
    max_age_seconds: float
    max_uses: int
    clock: Clock = time.monotonic
    on_new_key: Callable[[str, int], None] | None = None
    _current: dict[str, ActiveDataKey] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def _usable(self, entry: ActiveDataKey | None, needed: int) -> bool:
        return (entry is not None and entry.uses + needed <= self.max_uses
                and self.clock() - entry.created < self.max_age_seconds)

    async def reserve(self, key_id: str, count: int) -> list[ActiveDataKey]:
        """Data keys for ``count`` encryptions under ``key_id``, uses already counted.

        Usually one key for all; several when a batch straddles ``max_uses``.
        """
        keys: list[ActiveDataKey] = []
        remaining = count
        while remaining:
            entry = self._current.get(key_id)
            if not self._usable(entry, 1):
                entry = await self._replace(key_id)
            assert entry is not None
            take = min(remaining, self.max_uses - entry.uses)
            entry.uses += take
            keys.extend([entry] * take)
            remaining -= take
        return keys

    async def _replace(self, key_id: str) -> ActiveDataKey:
        lock = self._locks.setdefault(key_id, asyncio.Lock())
        async with lock:
            entry = self._current.get(key_id)
            if self._usable(entry, 1):  # another task replaced it while we waited
                assert entry is not None
                return entry
            fresh = await self.generate(key_id)
            REGISTRY.add_bytes(fresh.plaintext)
            entry = ActiveDataKey(key_id=key_id, key_version=fresh.key_version,
                                  wrapped=fresh.ciphertext, aead=AESGCM(fresh.plaintext),
                                  created=self.clock())
            self._current[key_id] = entry
            if self.on_new_key is not None:
                self.on_new_key(key_id, fresh.key_version)
            return entry

    def forget(self) -> None:
        """Drop current keys (after a rotation, so the next payload uses the new version)."""
        self._current.clear()


@dataclass
class DecodeKeyCache:
    """LRU of unwrapped data keys by wrapped ciphertext, each kept at most ``ttl`` seconds."""

    max_entries: int
    ttl_seconds: float
    clock: Clock = time.monotonic
    _entries: OrderedDict[str, tuple[AESGCM, float]] = field(default_factory=OrderedDict)

    def get(self, wrapped: str) -> AESGCM | None:
        found = self._entries.get(wrapped)
        if found is None:
            return None
        aead, expires = found
        if self.clock() >= expires:
            del self._entries[wrapped]
            return None
        self._entries.move_to_end(wrapped)
        return aead

    def put(self, wrapped: str, plaintext_key: bytes) -> AESGCM:
        REGISTRY.add_bytes(plaintext_key)
        aead = AESGCM(plaintext_key)
        self._entries[wrapped] = (aead, self.clock() + self.ttl_seconds)
        self._entries.move_to_end(wrapped)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return aead

    def __len__(self) -> int:
        return len(self._entries)
