"""``build_data_converter``: the one converter for worker, starter, codec server and tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from keyward.codec.transit_codec import CodecState, VaultTransitCodec
from keyward.codec.trust import TrustStampingPayloadConverter
from keyward.codec.usage import UsageCounters
from keyward.config import Settings
from keyward.connect.temporal import load_connect_config
from keyward.vault.client import VaultSession
from keyward.vault.transit_async import AsyncTransit, TokenProvider


@dataclasses.dataclass(frozen=True)
class CodecBundle:
    """The converter plus the handles its owner needs: the codec (for the codec server),
    the counters (for the usage ledger) and the transit client (to close on shutdown)."""

    converter: DataConverter
    codec: VaultTransitCodec
    usage: UsageCounters
    transit: AsyncTransit

    async def close(self) -> None:
        await self.transit.close()


def build_codec(settings: Settings, token: TokenProvider, *, namespace: str,
                usage: UsageCounters | None = None,
                stamp_authenticated: bool = False) -> VaultTransitCodec:
    transit = AsyncTransit(settings.vault, token)
    state = CodecState.create(settings.codec, transit, usage,
                              stamp_authenticated=stamp_authenticated)
    return VaultTransitCodec(state, namespace=namespace)


def build_data_converter(settings: Settings, token: TokenProvider, *, namespace: str,
                         usage: UsageCounters | None = None) -> CodecBundle:
    """A data converter that encrypts every payload with Vault Transit.

    Failure messages and stack traces are encoded too
    (``DefaultFailureConverterWithEncodedAttributes``): an exception message can
    carry the same data the payloads do. ``namespace`` is the client's namespace,
    used where the SDK passes no serialization context.

    Decrypted payloads are stamped and the payload converter copies the stamp into
    inputs with an ``authenticated`` field (:mod:`keyward.codec.trust`), so a workflow
    can tell an encrypted input from plain JSON anyone could have sent.
    """
    codec = build_codec(settings, token, namespace=namespace, usage=usage,
                        stamp_authenticated=True)
    converter = dataclasses.replace(
        DataConverter.default,
        payload_converter_class=TrustStampingPayloadConverter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
    return CodecBundle(converter=converter, codec=codec, usage=codec.state.usage,
                       transit=codec.state.transit)


def encrypting_converter(settings: Settings, vault: VaultSession,
                         env: Mapping[str, str] | None = None) -> CodecBundle:
    """The converter for a process holding a :class:`VaultSession`.

    The token is read from the session's client on every call, so the renewer's
    refreshes apply at once; the default namespace is the Temporal client's.
    """
    namespace = load_connect_config(settings.temporal, env=env).get("namespace") or "default"
    client = vault.client
    return build_data_converter(settings, lambda: client.token, namespace=namespace)
