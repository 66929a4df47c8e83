"""keyward's codec server: decrypts payloads for the Temporal Web UI and the ``temporal`` CLI.

    python codec_server.py [--config keyward.toml]

Settings live in the ``[codec_server]`` section (JWKS URL or public key, issuer,
audience, allowed origins, TLS files) plus ``[vault]`` and ``[codec]``, exactly
as the worker reads them, so the server decrypts what the worker encrypted.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from keyward.cli import exit_now, run_entry_point
from keyward.codec.converter import build_codec
from keyward.codecserver.runner import start_codec_server
from keyward.config import Settings, load_settings
from keyward.log import bind_context, configure_logging
from keyward.vault.client import connect_vault


async def run(settings: Settings) -> int:
    settings.codec_server.require_serving_config()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    vault = await asyncio.to_thread(connect_vault, settings.vault)
    client = vault.client
    codec = build_codec(settings, lambda: client.token,
                        namespace=settings.codec_server.default_namespace)
    try:
        server = await start_codec_server(settings.codec_server, codec, cloud=settings.cloud)
        try:
            await stop.wait()
        finally:
            await server.stop()
    finally:
        await codec.state.transit.close()
        vault.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="codec_server.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $KEYWARD_CONFIG or ./keyward.toml)")
    args = parser.parse_args(argv)

    def body() -> int:
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        bind_context(component="codec-server")
        return asyncio.run(run(settings))

    return run_entry_point(body, action="codec server")


def console() -> NoReturn:
    """The ``keyward-codec-server`` console script (``pip install`` puts it on PATH)."""
    exit_now(main())


if __name__ == "__main__":
    console()
