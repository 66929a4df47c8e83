"""Starting and stopping a codec server (the entry point and the dev stack share this)."""

from __future__ import annotations

import errno
from dataclasses import dataclass

from aiohttp import web

from keyward.cloud.ops import CloudOps
from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.app import build_app
from keyward.codecserver.cloud_roles import CloudRoles
from keyward.codecserver.jwt_auth import JwtVerifier
from keyward.codecserver.tls import ReloadingServerTLS
from keyward.config import CodecServerSettings
from keyward.config.cloud import CloudSettings
from keyward.errors import ConfigError, StartupError
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


async def start_codec_server(settings: CodecServerSettings, codec: VaultTransitCodec, *,
                             cloud: CloudSettings | None = None) -> RunningCodecServer:
    """Bind and serve; raises StartupError for a taken port or unusable settings.

    ``cloud`` is the ``[cloud]`` section, needed when ``role_sources`` names Temporal Cloud.
    """
    settings.require_serving_config()
    log = get_logger("keyward.codecserver")
    verifier = JwtVerifier(settings) if settings.auth == "jwt" else None
    roles = await connect_cloud_roles(settings, cloud) if verifier is not None else None
    if verifier is None:
        # The settings allow this on loopback only (or by an explicit setting), and the app
        # refuses foreign Host and Origin headers; still, say it loudly.
        log.warning("CODEC SERVER AUTHENTICATION IS DISABLED: any local process that can "
                    f"reach {settings.host}:{settings.port} can decrypt payloads of every "
                    "namespace. Use codec_server.auth = 'none' only for local development.")
    tls = ReloadingServerTLS(settings) if settings.tls_cert else None
    runner = web.AppRunner(build_app(settings, codec, verifier, cloud_roles=roles),
                           access_log=None)
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
             role_sources=list(settings.role_sources) if verifier is not None else [],
             allowed_origins=list(settings.allowed_origins))
    return RunningCodecServer(url=url, runner=runner, tls=tls)


async def connect_cloud_roles(settings: CodecServerSettings,
                              cloud: CloudSettings | None) -> CloudRoles | None:
    """The Temporal Cloud role lookup ``role_sources`` asks for (None when it does not):
    one long-lived Cloud Ops API client, shared by every request."""
    if not settings.cloud_roles:
        return None
    if cloud is None or cloud.api_key_file is None:
        raise ConfigError("cloud.api_key_file", "codec_server.role_sources names "
                          "temporal-cloud: set the API key the Cloud Ops API is read with")
    ops = await CloudOps.connect(cloud)
    return CloudRoles(ops, ttl_seconds=settings.cloud_role_cache_seconds,
                      unknown_ttl_seconds=settings.cloud_unknown_user_cache_seconds)
