"""Which Transit key versions the payloads inside a Temporal message are encrypted under.

Temporal keeps encrypted payloads in places keyward never rewrites: every retry attempt
and cron run of a workflow starts with a copy of the first run's input (and memo,
header…), a schedule keeps its memo, summary, details and arguments. Whether a key
version may be retired therefore depends on what those messages *carry*, not on when they
were written. The encrypted payload's metadata names its key and version
(:mod:`keyward.codec.format`), so this needs no decryption.

The walk is generic over protobuf fields (messages, repeated fields, maps), so a payload
is found wherever the Temporal API puts it — input, memo, last completion result,
continued failure, header, user metadata — including fields added in later API versions.
Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload

from keyward.codec.format import PayloadFormatError, is_encrypted, parse_header


def iter_payloads(message: Message) -> Iterator[Payload]:
    """Every ``temporal.api.common.v1.Payload`` anywhere inside ``message``."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        entry = field.message_type
        if field.type != FieldDescriptor.TYPE_MESSAGE or entry is None:
            continue
        if entry.GetOptions().map_entry:
            if entry.fields_by_name["value"].type != FieldDescriptor.TYPE_MESSAGE:
                continue
            items = list(value.values())
        elif field.is_repeated:
            items = list(value)
        else:
            items = [value]
        for item in items:
            yield from iter_payloads(item)


def key_version(payload: Payload, key: str) -> int | None:
    """The version of ``key`` that ``payload`` is encrypted under; None when it is not
    encrypted under ``key`` or its metadata is malformed (then no key decrypts it, so no
    key version keeps it readable)."""
    if not is_encrypted(payload):
        return None
    try:
        header = parse_header(payload)
    except PayloadFormatError:
        return None
    return header.key_version if header.key == key else None


def key_versions(message: Message, key: str) -> set[int]:
    """The versions of ``key`` that the payloads inside ``message`` are encrypted under."""
    found = {key_version(payload, key) for payload in iter_payloads(message)}
    return {version for version in found if version is not None}


def stale_payloads(message: Message, key: str, latest_version: int) -> list[Payload]:
    """The payloads inside ``message`` under a version of ``key`` older than ``latest_version``
    (the ones a re-encryption must replace), as references into ``message``."""
    return [payload for payload in iter_payloads(message)
            if (version := key_version(payload, key)) is not None and version < latest_version]
