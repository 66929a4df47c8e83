"""The reference codec server: the Temporal samples' design (aiohttp, no auth, local AES-GCM).

Only for ``bench/codec_server.py`` to measure keyward's codec server against.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.codec import LocalAesGcmCodec


def build_app() -> web.Application:
    codec = LocalAesGcmCodec()

    def handler(fn: Callable[[Sequence[object]], Awaitable[list[object]]]
                ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            payloads = json_format.Parse(await request.read(), Payloads())
            out = Payloads(payloads=await fn(payloads.payloads))  # type: ignore[arg-type]
            return web.Response(body=json_format.MessageToJson(out, indent=None).encode(),
                                content_type="application/json")
        return handle

    app = web.Application()
    app.router.add_post("/encode", handler(codec.encode))  # type: ignore[arg-type]
    app.router.add_post("/decode", handler(codec.decode))  # type: ignore[arg-type]
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
