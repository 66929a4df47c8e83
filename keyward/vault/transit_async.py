"""An asyncio client for the few Vault Transit calls on the payload codec's hot path.

hvac is synchronous; a payload codec runs on the event loop of the worker, the
client and the codec server, and must never block it. This client speaks the
same HTTP API over one pooled aiohttp session, reads the current token from a
provider on every call (so the token renewer's refreshes apply at once), maps
failures into :mod:`keyward.vault.errors` classes, and retries only transient
ones, with bounded exponential backoff and jitter.
"""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from keyward.config import VaultSettings
from keyward.vault.errors import (
    VaultError,
    VaultServerError,
    VaultUnavailable,
    error_class_for_status,
)
from keyward.vault.names import check_key_name, check_mount, segment

TokenProvider = Callable[[], str | None]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for transient failures; 4xx are never retried."""

    attempts: int = 4
    initial_delay: float = 0.05
    max_delay: float = 1.0

    def delay(self, attempt: int) -> float:
        base: float = min(self.max_delay, self.initial_delay * float(1 << attempt))
        return base * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not cryptography


@dataclass(frozen=True)
class EncryptItem:
    plaintext: bytes
    associated_data: bytes | None = None


@dataclass(frozen=True)
class DecryptItem:
    ciphertext: str
    associated_data: bytes | None = None


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes
    ciphertext: str  # wrapped by the Transit key: "vault:vN:..."
    key_version: int


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key(name: str) -> str:
    """A key name as a URL path segment: checked against Vault's rule, then quoted.

    Raises :class:`InvalidVaultName` (a KeywardError) before any request is made.
    """
    return segment(check_key_name(name))


def key_version_of(ciphertext: str) -> int:
    """The key version a ``vault:vN:...`` ciphertext was made with."""
    parts = ciphertext.split(":", 2)
    if len(parts) != 3 or parts[0] != "vault" or not parts[1][1:].isdigit() \
            or parts[1][0] != "v":
        raise ValueError("not a Vault Transit ciphertext")
    return int(parts[1][1:])


class AsyncTransit:
    """Encrypt/decrypt/datakey against one Transit mount."""

    def __init__(self, settings: VaultSettings, token: TokenProvider, *,
                 retry: RetryPolicy | None = None) -> None:
        mount = "/".join(segment(part) for part in check_mount(settings.transit_mount).split("/"))
        self._base = f"{settings.address.rstrip('/')}/v1/{mount}"
        self._token = token
        self._namespace = settings.namespace
        self._timeout = aiohttp.ClientTimeout(total=settings.timeout_seconds)
        self._ssl: ssl.SSLContext | bool = True
        if settings.ca_cert is not None:
            self._ssl = ssl.create_default_context(cafile=str(settings.ca_cert))
        self._retry = retry or RetryPolicy()
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self.mount = settings.transit_mount

    async def close(self) -> None:
        """Close the connection pool; every later call fails instead of opening another
        (a task finishing during shutdown would otherwise leak a new, unclosed pool)."""
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _client(self) -> aiohttp.ClientSession:
        # Created lazily, on the loop that uses it: codecs are built before any loop runs.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64))
        return self._session

    async def encrypt(self, key: str, items: Sequence[EncryptItem]) -> list[str]:
        """Encrypt all items in one ``batch_input`` call; ciphertexts in input order."""
        batch: list[dict[str, str]] = []
        for item in items:
            entry = {"plaintext": _b64(item.plaintext)}
            if item.associated_data is not None:
                entry["associated_data"] = _b64(item.associated_data)
            batch.append(entry)
        operation = f"encrypt with {key}"
        data = await self._post(f"encrypt/{_key(key)}", {"batch_input": batch}, operation)
        return [str(result["ciphertext"]) for result in _results(data, len(batch), operation)]

    async def decrypt(self, key: str, items: Sequence[DecryptItem]) -> list[bytes]:
        """Decrypt all items in one call; raises if any item fails."""
        batch: list[dict[str, str]] = []
        for item in items:
            entry = {"ciphertext": item.ciphertext}
            if item.associated_data is not None:
                entry["associated_data"] = _b64(item.associated_data)
            batch.append(entry)
        operation = f"decrypt with {key}"
        data = await self._post(f"decrypt/{_key(key)}", {"batch_input": batch}, operation)
        return [base64.b64decode(result["plaintext"])
                for result in _results(data, len(batch), operation)]

    async def generate_data_key(self, key: str, *, bits: int = 256) -> DataKey:
        data = await self._post(f"datakey/plaintext/{_key(key)}", {"bits": bits},
                                f"generate data key with {key}")
        return DataKey(plaintext=base64.b64decode(data["plaintext"]),
                       ciphertext=str(data["ciphertext"]),
                       key_version=int(data.get("key_version") or
                                       key_version_of(str(data["ciphertext"]))))

    async def _post(self, path: str, body: dict[str, Any], operation: str) -> dict[str, Any]:
        if self._closed:
            raise VaultUnavailable(operation, "the Vault client is closed (shutting down)")
        attempt = 0
        while True:
            try:
                return await self._post_once(path, body, operation)
            except VaultError as exc:
                attempt += 1
                if not exc.retryable or attempt >= self._retry.attempts:
                    raise
                await asyncio.sleep(self._retry.delay(attempt))

    async def _post_once(self, path: str, body: dict[str, Any],
                         operation: str) -> dict[str, Any]:
        headers = {"X-Vault-Request": "true"}
        token = self._token()
        if token:
            headers["X-Vault-Token"] = token
        if self._namespace:
            headers["X-Vault-Namespace"] = self._namespace
        try:
            async with self._client().post(f"{self._base}/{path}", json=body,
                                           headers=headers) as response:
                status = response.status
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = None
        except aiohttp.ClientSSLError as exc:
            raise VaultUnavailable(operation, f"TLS error talking to Vault: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise VaultUnavailable(operation, f"cannot connect to Vault ({type(exc).__name__})"
                                   ) from exc
        if status < 300 and isinstance(payload, dict):
            data = payload.get("data")
            if isinstance(data, dict):
                return data
        raise _error_for(status, payload, operation)


def _results(data: dict[str, Any], expected: int, operation: str) -> list[dict[str, Any]]:
    """``batch_results``, one per item sent: a short answer must not drop a payload."""
    results = data.get("batch_results")
    if not isinstance(results, list) or len(results) != expected:
        got = len(results) if isinstance(results, list) else "no"
        raise VaultServerError(operation, f"Vault answered {got} batch results for "
                               f"{expected} items")
    return results


def _error_for(status: int, payload: Any, operation: str) -> VaultError:
    errors: list[str] = []
    if isinstance(payload, dict):
        errors = [str(e) for e in payload.get("errors") or []]
        batch = (payload.get("data") or {}).get("batch_results") or []
        errors += sorted({str(r["error"]) for r in batch if isinstance(r, dict) and r.get("error")})
    detail = "; ".join(errors) or "no error detail in response"
    return error_class_for_status(status)(operation, detail, status=status, body=payload)
