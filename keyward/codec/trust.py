"""Telling a workflow whether its input arrived encrypted.

The codec lets unencrypted payloads through on decode (so ``temporal workflow execute
--input '{…}'`` still works), which means anyone who can start or signal a workflow can
hand keyward plain JSON. Inputs that can make keyward act — start a rotation, count
encryptions towards one — must have been encrypted under a Transit key, i.e. written by
someone holding keyward's Vault access or the codec server's ``write`` role.

The worker's codec stamps every payload it *decrypted* with the metadata entry
:data:`AUTHENTICATED_KEY` and strips that entry from every payload it lets through, so a
crafted plaintext payload cannot carry the stamp. :class:`TrustStampingPayloadConverter`
then sets the ``authenticated`` field of any dataclass that has one from the stamp —
overwriting whatever the JSON said — and the workflow decides with it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Final

from temporalio.api.common.v1 import Payload
from temporalio.converter import DefaultPayloadConverter

AUTHENTICATED_KEY: Final = "keyward-authenticated"
AUTHENTICATED_VALUE: Final = b"1"
#: The dataclass field the converter fills in.
AUTHENTICATED_FIELD: Final = "authenticated"


def is_authenticated(payload: Payload) -> bool:
    return payload.metadata.get(AUTHENTICATED_KEY) == AUTHENTICATED_VALUE


def stamp(payload: Payload) -> Payload:
    payload.metadata[AUTHENTICATED_KEY] = AUTHENTICATED_VALUE
    return payload


def without_stamp(payload: Payload) -> Payload:
    """``payload`` unless it carries the stamp; then a copy without it (never forgeable)."""
    if AUTHENTICATED_KEY not in payload.metadata:
        return payload
    clean = Payload()
    clean.CopyFrom(payload)
    del clean.metadata[AUTHENTICATED_KEY]
    return clean


def _has_flag(value: Any) -> bool:
    return (dataclasses.is_dataclass(value) and not isinstance(value, type)
            and any(f.name == AUTHENTICATED_FIELD for f in dataclasses.fields(value)))


def unstamped(value: Any) -> Any:
    """``value`` with its ``authenticated`` flag cleared: for comparing what a decoder read
    (flag set from the stamp) with what an encoder is about to write (flag never sent)."""
    if _has_flag(value):
        return dataclasses.replace(value, **{AUTHENTICATED_FIELD: False})
    return value


class TrustStampingPayloadConverter(DefaultPayloadConverter):
    """The default converter, plus: dataclasses with an ``authenticated`` field get it set
    from the codec's stamp, whatever the serialised value claimed."""

    def from_payloads(self, payloads: Sequence[Payload],
                      type_hints: list[type] | None = None) -> list[Any]:
        values = super().from_payloads(payloads, type_hints)
        return [dataclasses.replace(value, **{AUTHENTICATED_FIELD: is_authenticated(payload)})
                if _has_flag(value) else value
                for payload, value in zip(payloads, values, strict=True)]
