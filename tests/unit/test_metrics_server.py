"""The worker's /metrics and /health endpoint."""

from __future__ import annotations

import re

import aiohttp
import pytest

from keyward.config import MetricsSettings
from keyward.errors import StartupError
from keyward.metrics import CERTIFICATE_EXPIRY, MetricsServer


async def test_metrics_and_health_follow_the_worker() -> None:
    running = True
    server = MetricsServer(MetricsSettings(host="127.0.0.1", port=0), healthy=lambda: running)
    await server.start()
    try:
        CERTIFICATE_EXPIRY.labels(certificate="metrics-test").set(1_800_000_000)
        base = f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                assert response.headers["Content-Type"].startswith("text/plain")
                text = await response.text()
            async with http.get(f"{base}/health") as response:
                assert response.status == 200
            running = False
            async with http.get(f"{base}/health") as response:
                assert response.status == 503
                assert await response.json() == {"status": "stopped"}
    finally:
        await server.stop()
    assert 'keyward_certificate_expiry_timestamp_seconds{certificate="metrics-test"} 1.8e+09' \
        in text
    # Exported from the start (0 until the first refusal), so increase() has a series.
    assert re.search(r'^keyward_temporal_client_certificate_reloads_total\{result="refused"\} ',
                     text, re.MULTILINE)


async def test_a_taken_port_is_one_clear_error() -> None:
    first = MetricsServer(MetricsSettings(host="127.0.0.1", port=0), healthy=lambda: True)
    await first.start()
    try:
        assert first.port is not None
        second = MetricsServer(MetricsSettings(host="127.0.0.1", port=first.port),
                               healthy=lambda: True)
        with pytest.raises(StartupError, match=rf"cannot serve metrics on 127.0.0.1:{first.port}"
                                               r".*set metrics.port"):
            await second.start()
    finally:
        await first.stop()
