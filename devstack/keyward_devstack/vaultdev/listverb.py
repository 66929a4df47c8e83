"""Accepting Vault's ``LIST`` HTTP method, which aiohttp's fast parser rejects.

Vault clients list with a request method called ``LIST`` (hvac does by
default). aiohttp's C parser (llhttp) only knows registered methods and
answers 400 "Invalid method encountered" before any handler runs. aiohttp's
pure-Python parser accepts any RFC 9110 method token, so connections to this
server use it instead. It is the same parser aiohttp falls back to when its C
extensions are unavailable, just a little slower.

The swap is made per connection, for this server's listener only, so other
aiohttp servers in the same process keep the fast parser.
"""

from __future__ import annotations

import asyncio
import ssl

from aiohttp import web
from aiohttp.http_parser import HttpRequestParserPy

#: aiohttp's default read buffer size for request parsing.
_READ_BUFFER = 2**16


async def listen(
    runner: web.AppRunner, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> asyncio.Server:
    """Start accepting connections for ``runner``'s application on ``host:port``."""
    server = runner.server
    if server is None:
        raise RuntimeError("the runner must be set up before listening")
    loop = asyncio.get_running_loop()

    def connection() -> web.RequestHandler:
        handler = server()
        parser = HttpRequestParserPy(
            handler,
            loop,
            _READ_BUFFER,
            max_line_size=handler.max_line_size,
            max_field_size=handler.max_field_size,
            max_headers=handler.max_headers,
            payload_exception=web.RequestPayloadError,
        )
        # A private attribute: aiohttp keeps the connection's parser in ``_parser``
        # (``_request_parser`` before 3.10). The LIST contract test guards this.
        slot = "_request_parser" if hasattr(handler, "_request_parser") else "_parser"
        setattr(handler, slot, parser)
        return handler

    return await loop.create_server(connection, host, port, ssl=ssl_context, reuse_address=True)
