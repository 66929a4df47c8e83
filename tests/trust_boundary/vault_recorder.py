"""A recording reverse proxy in front of the session Vault: what keyward actually asked for.

The trust-boundary tests must show that crafted input sends *no* request to a path it
chose. Counting calls inside keyward's client would trust the code under test; this
proxy sits on the wire instead: it records each request's method and raw path exactly
as it arrived over HTTP, then forwards it unchanged to the real (dev) Vault.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from keyward_devstack.processes import free_port

T = TypeVar("T")
_HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class VaultRecorder:
    upstream: str
    address: str = ""
    #: (method, raw path with query) of every request, in arrival order.
    requests: list[tuple[str, str]] = field(default_factory=list)

    def clear(self) -> None:
        self.requests.clear()

    def paths_outside(self, mount: str, allowed_keys: set[str]) -> list[str]:
        """Requests that were not encrypt/decrypt/datakey on one of ``allowed_keys``."""
        pattern = re.compile(
            rf"/v1/{re.escape(mount)}/(?:encrypt|decrypt|datakey/plaintext|datakey/wrapped)/"
            r"(?P<key>[^/?]+)")
        bad = []
        for method, path in self.requests:
            match = pattern.fullmatch(path)
            if method != "POST" or match is None or match["key"] not in allowed_keys:
                bad.append(f"{method} {path}")
        return bad


@asynccontextmanager
async def recording_vault(upstream: str) -> AsyncIterator[VaultRecorder]:
    recorder = VaultRecorder(upstream=upstream.rstrip("/"))
    session = aiohttp.ClientSession()

    async def forward(request: web.Request) -> web.Response:
        recorder.requests.append((request.method, request.raw_path))
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with session.request(request.method, recorder.upstream + request.raw_path,
                                   headers=headers, data=await request.read(),
                                   allow_redirects=False) as response:
            body = await response.read()
            return web.Response(status=response.status, body=body,
                                content_type=response.content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    recorder.address = f"http://127.0.0.1:{port}"
    try:
        yield recorder
    finally:
        await runner.cleanup()
        await session.close()


class LoopThread:
    """An event loop on a thread of its own, for property tests: hypothesis drives a sync
    test function thousands of times, and each example runs its coroutine here, on one
    loop that keeps the codec's HTTP session and the proxy alive between examples."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True,
                                        name="property-loop")
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()
