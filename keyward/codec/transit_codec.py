"""The Vault Transit payload codec: direct and envelope modes, fail-closed, namespace-bound.

* **direct**: Vault encrypts; one ``batch_input`` call per encode/decode call.
* **envelope**: AES-256-GCM in process under a data key from
  ``transit/datakey/plaintext``; the wrapped data key travels in the metadata.

Encoding fails closed: any error raises :class:`PayloadEncryptionError` and no
payload leaves in plaintext. Decoding passes through payloads that are not
encrypted (so ``temporal workflow execute --input '{...}'`` works) and raises
:class:`PayloadDecryptionError`, naming key and version, for anything that is
encrypted but does not verify.

The SDK copies a codec through :meth:`with_context` for every operation, to
tell it the namespace; copies share one :class:`CodecState` (Vault client,
data-key caches, counters), so copying is cheap and caches stay warm.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Self

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from keyward.codec.datakeys import DecodeKeyCache, EncodeKeyCache
from keyward.codec.format import (
    NONCE_BYTES,
    Compression,
    EncryptedHeader,
    PayloadFormatError,
    associated_data,
    compress,
    decompress,
    is_encrypted,
    parse_header,
    vault_ciphertext,
    vault_ciphertext_bytes,
)
from keyward.codec.trust import stamp, without_stamp
from keyward.codec.usage import UsageCounters
from keyward.config import CodecSettings
from keyward.contracts import failures
from keyward.errors import KeywardError
from keyward.vault.errors import VaultError
from keyward.vault.names import InvalidVaultName
from keyward.vault.transit_async import AsyncTransit, DecryptItem, EncryptItem

#: Decompression refuses to inflate a payload past this (Temporal's own limit is 2 MiB
#: per payload by default; 64 MiB leaves room for any configuration).
MAX_PLAINTEXT_BYTES: Final = 64 * 1024 * 1024
TOO_OLD_MARKER: Final = "too old"


class PayloadEncryptionError(KeywardError):
    """Encoding failed; nothing was sent."""

    failure_type = failures.PAYLOAD_ENCRYPTION_ERROR


class PayloadDecryptionError(KeywardError):
    """An encrypted payload could not be decrypted or did not verify."""

    failure_type = failures.PAYLOAD_DECRYPTION_ERROR


@dataclass
class CodecState:
    """What every context copy of one codec shares."""

    settings: CodecSettings
    transit: AsyncTransit
    usage: UsageCounters
    encode_keys: EncodeKeyCache
    decode_keys: DecodeKeyCache
    #: Stamp decrypted payloads for :class:`keyward.codec.trust.TrustStampingPayloadConverter`
    #: (the worker's converter); the codec server's copies never stamp. No default: each
    #: caller says which it is.
    stamp_authenticated: bool

    @classmethod
    def create(cls, settings: CodecSettings, transit: AsyncTransit,
               usage: UsageCounters | None = None, *,
               stamp_authenticated: bool) -> CodecState:
        usage = UsageCounters() if usage is None else usage
        return cls(
            settings=settings, transit=transit, usage=usage,
            stamp_authenticated=stamp_authenticated,
            encode_keys=EncodeKeyCache(
                generate=transit.generate_data_key,
                max_age_seconds=settings.datakey_max_age_seconds,
                max_uses=settings.datakey_max_uses,
                on_new_key=usage.add,
            ),
            decode_keys=DecodeKeyCache(max_entries=settings.decode_cache_size,
                                       ttl_seconds=settings.decode_cache_ttl_seconds),
        )


class VaultTransitCodec(PayloadCodec, WithSerializationContext):
    """Encrypts every payload with Vault Transit, bound to the namespace it belongs to."""

    def __init__(self, state: CodecState, *, namespace: str, stamp: bool | None = None) -> None:
        self._state = state
        self.namespace = namespace
        self._stamp = state.stamp_authenticated if stamp is None else stamp
        self._allowed = state.settings.keys_allowed(namespace)

    @property
    def state(self) -> CodecState:
        return self._state

    @property
    def key_id(self) -> str:
        return self._state.settings.key_for(self.namespace)

    def with_context(self, context: SerializationContext) -> Self:
        namespace = self.namespace
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            namespace = context.namespace
        if namespace == self.namespace:
            return self
        return type(self)(self._state, namespace=namespace, stamp=self._stamp)

    def for_namespace(self, namespace: str) -> Self:
        """A copy for ``namespace`` (the codec server's per-request copy); it never stamps
        decrypted payloads, which are shown to people, not handed to workflows."""
        return type(self)(self._state, namespace=namespace, stamp=False)

    # ---- encode -------------------------------------------------------------------------

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if not payloads:
            return []
        key = self.key_id
        try:
            if self._state.settings.mode == "envelope":
                return await self._encode_envelope(key, payloads)
            return await self._encode_direct(key, payloads)
        except (VaultError, InvalidVaultName) as exc:
            raise PayloadEncryptionError(
                f"cannot encrypt {len(payloads)} payload(s) for namespace {self.namespace!r} "
                f"with key {key!r}: {exc}", retryable=exc.retryable) from exc

    def _plaintexts(self, payloads: Sequence[Payload]) -> list[tuple[bytes, Compression]]:
        enabled = self._state.settings.compression
        # No stamp stripping here: whatever an inner payload carries, decoding overwrites
        # (stamps what it decrypted, or the codec server's copies pass it on unread).
        return [compress(p.SerializeToString(), enabled) for p in payloads]

    async def _encode_direct(self, key: str, payloads: Sequence[Payload]) -> list[Payload]:
        prepared = self._plaintexts(payloads)
        items = [EncryptItem(data, associated_data(self.namespace, key, "direct", comp))
                 for data, comp in prepared]
        # AsyncTransit checks that Vault answered one ciphertext per item.
        ciphertexts = await self._state.transit.encrypt(key, items)
        out: list[Payload] = []
        for (_, comp), ciphertext in zip(prepared, ciphertexts, strict=True):
            version, raw = vault_ciphertext_bytes(ciphertext)
            header = EncryptedHeader(key=key, key_version=version, scheme="direct",
                                     compression=comp)
            self._state.usage.add(key, version)
            out.append(Payload(metadata=header.metadata(), data=raw))
        return out

    async def _encode_envelope(self, key: str, payloads: Sequence[Payload]) -> list[Payload]:
        prepared = self._plaintexts(payloads)
        data_keys = await self._state.encode_keys.reserve(key, len(payloads))
        # Payloads under one data key share their metadata: fill a template once and copy
        # it (protobuf fills a 7-entry map slowly; CopyFrom is one C call).
        templates: dict[tuple[int, Compression], tuple[Payload, bytes]] = {}
        out: list[Payload] = []
        for (data, comp), data_key in zip(prepared, data_keys, strict=True):
            template = templates.get((id(data_key), comp))
            if template is None:
                header = EncryptedHeader(key=key, key_version=data_key.key_version,
                                         scheme="envelope", compression=comp,
                                         wrapped_key=data_key.wrapped)
                template = (Payload(metadata=header.metadata()),
                            associated_data(self.namespace, key, "envelope", comp))
                templates[(id(data_key), comp)] = template
            metadata_only, aad = template
            nonce = os.urandom(NONCE_BYTES)
            payload = Payload()
            payload.CopyFrom(metadata_only)
            payload.data = nonce + data_key.aead.encrypt(nonce, data, aad)
            out.append(payload)
        return out

    # ---- decode -------------------------------------------------------------------------

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        results: list[Payload | None] = [None] * len(payloads)
        direct: dict[str, list[tuple[int, EncryptedHeader]]] = defaultdict(list)
        envelope: list[tuple[int, EncryptedHeader]] = []
        for index, payload in enumerate(payloads):
            if not is_encrypted(payload):
                # Passed through, but never with a stamp someone wrote in to look decrypted
                # (only a stamping codec's output reaches a payload converter that reads it).
                results[index] = without_stamp(payload) if self._stamp else payload
                continue
            try:
                header = parse_header(payload)
            except PayloadFormatError as exc:
                raise PayloadDecryptionError(f"payload {index}: {exc}") from None
            if header.key not in self._allowed:
                # Checked before any Vault request: the name came from the payload.
                raise PayloadDecryptionError(
                    f"payload {index} names key {header.key!r}, which namespace "
                    f"{self.namespace!r} does not use (allowed: "
                    f"{', '.join(sorted(self._allowed))}; see codec.keys and "
                    "codec.previous_keys)")
            if header.scheme == "direct":
                direct[header.key].append((index, header))
            else:
                envelope.append((index, header))

        for key, entries in direct.items():
            await self._decode_direct(key, entries, payloads, results)
        if envelope:
            await self._decode_envelope(envelope, payloads, results)
        return [payload for payload in results if payload is not None]

    async def _decode_direct(self, key: str, entries: list[tuple[int, EncryptedHeader]],
                             payloads: Sequence[Payload], results: list[Payload | None]) -> None:
        items = [DecryptItem(vault_ciphertext(h.key_version, payloads[i].data),
                             associated_data(self.namespace, key, "direct", h.compression))
                 for i, h in entries]
        try:
            plaintexts = await self._state.transit.decrypt(key, items)
        except VaultError as exc:
            versions = sorted({h.key_version for _, h in entries})
            raise self._decrypt_error(key, versions, exc) from exc
        for (index, header), plain in zip(entries, plaintexts, strict=True):
            results[index] = self._unpack(index, header, plain)

    async def _decode_envelope(self, entries: list[tuple[int, EncryptedHeader]],
                               payloads: Sequence[Payload],
                               results: list[Payload | None]) -> None:
        cache = self._state.decode_keys
        missing: dict[str, dict[str, EncryptedHeader]] = defaultdict(dict)
        for _, header in entries:
            assert header.wrapped_key is not None
            if cache.get(header.wrapped_key) is None:
                missing[header.key][header.wrapped_key] = header
        for key, wanted in missing.items():
            wrapped = list(wanted)
            try:
                plain_keys = await self._state.transit.decrypt(
                    key, [DecryptItem(text) for text in wrapped])
            except VaultError as exc:
                versions = sorted({h.key_version for h in wanted.values()})
                raise self._decrypt_error(key, versions, exc) from exc
            for text, plain_key in zip(wrapped, plain_keys, strict=True):
                cache.put(text, plain_key)

        # One cache lookup per distinct data key, not per payload.
        aeads: dict[str, AESGCM | None] = {}
        for index, header in entries:
            assert header.wrapped_key is not None
            if header.wrapped_key not in aeads:
                aeads[header.wrapped_key] = cache.get(header.wrapped_key)
            aead = aeads[header.wrapped_key]
            if aead is None:  # evicted between fetch and use: only with a tiny cache
                (plain_key,) = await self._state.transit.decrypt(
                    header.key, [DecryptItem(header.wrapped_key)])
                aead = aeads[header.wrapped_key] = cache.put(header.wrapped_key, plain_key)
            data = payloads[index].data
            aad = associated_data(self.namespace, header.key, "envelope", header.compression)
            try:
                plain = aead.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], aad)
            except InvalidTag:
                raise PayloadDecryptionError(
                    f"payload {index} under {header.describe()} does not verify: it was altered, "
                    f"or encrypted for another namespace than {self.namespace!r}") from None
            results[index] = self._unpack(index, header, plain)

    def _unpack(self, index: int, header: EncryptedHeader, plain: bytes) -> Payload:
        try:
            inner = decompress(plain, header.compression, limit=MAX_PLAINTEXT_BYTES)
            payload = Payload()
            payload.ParseFromString(inner)
        except (PayloadFormatError, ValueError, DecodeError) as exc:
            # Authentic but not a Payload: encrypted by someone else holding the key.
            raise PayloadDecryptionError(f"payload {index} under {header.describe()}: "
                                         f"decrypted content is not a payload ({exc})") from None
        return stamp(payload) if self._stamp else payload

    def _decrypt_error(self, key: str, versions: list[int],
                       exc: VaultError) -> PayloadDecryptionError:
        shown = ", ".join(str(v) for v in versions)
        if TOO_OLD_MARKER in exc.detail:
            return PayloadDecryptionError(
                f"key {key!r} version {shown} is too old: Vault's min_decryption_version for "
                "this key is above it, so these payloads can no longer be decrypted")
        if exc.retryable:
            return PayloadDecryptionError(f"cannot reach Vault to decrypt with key {key!r} "
                                          f"version {shown}: {exc}", retryable=True)
        return PayloadDecryptionError(
            f"cannot decrypt with key {key!r} version {shown} in namespace "
            f"{self.namespace!r}: {exc.detail}")
