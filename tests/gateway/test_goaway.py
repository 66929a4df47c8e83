"""The gateway's GOAWAY goes between HTTP/2 frames, never inside one."""

from __future__ import annotations

import asyncio

from keyward_devstack.mtls_gateway import _GOAWAY, _ServerFrames


class Sink:
    """Collects what the gateway writes towards the client."""

    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    async def drain(self) -> None:
        return None


def frame(kind: int, stream: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([kind, 0]) + stream.to_bytes(4, "big") \
        + payload


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_goaway_waits_for_the_frame_being_copied() -> None:
    reader = asyncio.StreamReader()
    sink = Sink()
    frames = _ServerFrames(reader, sink)  # type: ignore[arg-type]
    copying = asyncio.create_task(frames.copy())
    data = frame(0x0, 1, bytes(range(20)))
    reader.feed_data(data[:15])  # header and part of the payload
    await settle()
    frames.send_goaway()
    await settle()
    assert _GOAWAY not in sink.data  # not in the middle of the DATA frame
    reader.feed_data(data[15:])
    await settle()
    assert bytes(sink.data) == data + _GOAWAY
    later = frame(0x1, 3, b"headers")
    reader.feed_data(later)
    reader.feed_eof()
    await asyncio.wait_for(copying, 1)
    assert bytes(sink.data) == data + _GOAWAY + later  # traffic goes on; one GOAWAY only


async def test_goaway_is_written_at_once_between_frames() -> None:
    reader = asyncio.StreamReader()
    sink = Sink()
    frames = _ServerFrames(reader, sink)  # type: ignore[arg-type]
    copying = asyncio.create_task(frames.copy())
    settings = frame(0x4, 0, b"")
    reader.feed_data(settings)
    await settle()
    frames.send_goaway()
    assert bytes(sink.data) == settings + _GOAWAY
    frames.send_goaway()
    assert bytes(sink.data) == settings + _GOAWAY
    reader.feed_eof()
    await asyncio.wait_for(copying, 1)


def test_goaway_frame_is_well_formed() -> None:
    """RFC 9113 §6.8: length 8, type 0x7, stream 0, last-stream-id, NO_ERROR."""
    assert len(_GOAWAY) == 17
    assert _GOAWAY[:3] == b"\x00\x00\x08"
    assert _GOAWAY[3] == 0x7
    assert _GOAWAY[5:9] == b"\x00\x00\x00\x00"
    assert int.from_bytes(_GOAWAY[9:13], "big") == 2**31 - 1
    assert _GOAWAY[13:] == b"\x00\x00\x00\x00"
