"""Starting and stopping a codec server (the entry point and the dev stack share this)."""

from __future__ import annotations

import errno
from dataclasses import dataclass

from aiohttp import web

from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.codecserver.jwt_auth import JwtVerifier
from keyward.codecserver.tls import ReloadingServerTLS
from keyward.config import CodecServerSettings
from keyward.errors import StartupError
from keyward.log import get_logger


@dataclass
class RunningCodecServer:
    url: str
    runner: web.AppRunner
    tls: ReloadingServerTLS | None

    async def stop(self) -> None:
        if self.tls is not None:
            await self.tls.watcher.stop()
        await self.runner.cleanup()


async def start_codec_server(settings: CodecServerSettings,
                             codec: VaultTransitCodec) -> RunningCodecServer:
    """Bind and serve; raises StartupError for a taken port or unusable settings."""
    settings.require_serving_config()
    log = get_logger("keyward.codecserver")
    verifier = JwtVerifier(settings) if settings.auth == "jwt" else None
    if verifier is None:
        # The settings allow this on loopback only (or by an explicit setting), and the app
        # refuses foreign Host and Origin headers; still, say it loudly.
        log.warning("CODEC SERVER AUTHENTICATION IS DISABLED: any local process that can "
                    f"reach {settings.host}:{settings.port} can decrypt payloads of every "
                    "namespace. Use codec_server.auth = 'none' only for local development.")
    tls = ReloadingServerTLS(settings) if settings.tls_cert else None
    runner = web.AppRunner(build_app(settings, codec, verifier), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port,
                       ssl_context=tls.context if tls else None)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"codec server port {settings.port} on {settings.host} is "
                               "already in use; set codec_server.port") from None
        raise StartupError(f"codec server cannot listen on {settings.host}:{settings.port}: "
                           f"{exc.strerror}") from None
    if tls is not None:
        tls.watcher.start()
    url = f"{settings.scheme}://{settings.host}:{settings.port}"
    log.info("codec server listening", url=url, auth=settings.auth,
             allowed_origins=list(settings.allowed_origins))
    return RunningCodecServer(url=url, runner=runner, tls=tls)
