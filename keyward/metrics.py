"""The worker's Prometheus metrics and the small HTTP server that exposes them.

One registry per process: the reload hook, the certificate and key activities and
the usage reporter all run in the worker process and set these as they learn
things, so an alert needs no extra Temporal or Vault calls. Timestamps are Unix
seconds, the Prometheus convention, so alerts read ``metric - time() < 3600``.

The server answers ``/metrics`` (text exposition) and ``/health`` (200 while the
worker runs, 503 otherwise: the container and Kubernetes probes use it).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from keyward.config import MetricsSettings
from keyward.errors import StartupError
from keyward.log import get_logger

REGISTRY = CollectorRegistry(auto_describe=True)

CLIENT_CERTIFICATE_EXPIRY = Gauge(
    "keyward_temporal_client_certificate_expiry_timestamp_seconds",
    "not_after of the client certificate the worker's Temporal client uses now",
    registry=REGISTRY)
CLIENT_CERTIFICATE_RELOADS = Counter(
    "keyward_temporal_client_certificate_reloads",
    "Client certificate changes seen by the reload hook, by result (swapped, refused)",
    ["result"], registry=REGISTRY)
CERTIFICATE_EXPIRY = Gauge(
    "keyward_certificate_expiry_timestamp_seconds",
    "not_after of a managed certificate, as its last renewal check or renewal saw it",
    ["certificate"], registry=REGISTRY)
KEY_LATEST_VERSION_CREATED = Gauge(
    "keyward_transit_key_latest_version_created_timestamp_seconds",
    "Creation time of a Transit key's latest version, as keyward last read it",
    ["key"], registry=REGISTRY)
KEY_BUDGET_USED = Gauge(
    "keyward_transit_key_budget_used_ratio",
    "Share of the per-version encryption budget (2^32 x safety factor) the latest "
    "version has used, from the key's ledger",
    ["key"], registry=REGISTRY)

for _result in ("swapped", "refused"):
    CLIENT_CERTIFICATE_RELOADS.labels(result=_result)  # exported as 0 before the first


class MetricsServer:
    """``/metrics`` and ``/health`` on ``settings.host:settings.port``."""

    def __init__(self, settings: MetricsSettings, healthy: Callable[[], bool]) -> None:
        self._settings = settings
        self._healthy = healthy
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.host, self._settings.port)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            self._runner = None
            raise StartupError(f"cannot serve metrics on {self._settings.host}:"
                               f"{self._settings.port} ({error.strerror or error}); set "
                               "metrics.port to a free port, or 0 to turn metrics off") from None
        addresses = self._runner.addresses  # the bound (host, port): port 0 picks one
        self.port = int(addresses[0][1]) if addresses else self._settings.port
        get_logger("keyward.metrics").info("metrics endpoint listening",
                                           url=f"http://{self._settings.host}:{self.port}/metrics")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        response = web.Response(body=generate_latest(REGISTRY))
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _health(self, _: web.Request) -> web.Response:
        if self._healthy():
            return web.json_response({"status": "ok"})
        return web.json_response({"status": "stopped"}, status=503)
