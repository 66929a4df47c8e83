"""The dev server's background auto-rotation, driven in-process with a fake clock.

Vault's minimum auto_rotate_period is an hour, so this runs the application
in-process with a clock the test moves forward. It checks the dev server
only and does not need, or use, real Vault.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from keyward_devstack.vaultdev.app import build_app
from keyward_devstack.vaultdev.config import DevVaultConfig


class FakeClock:
    """Time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_key_is_rotated_once_its_period_has_passed(tmp_path: Path) -> None:
    """A key with auto_rotate_period 1h gains version 2 after an hour, by itself."""
    clock = FakeClock()
    app = build_app(
        DevVaultConfig(data_dir=tmp_path / "data", root_token="root"),
        clock=clock,
        sweep_interval=0.01,
    )
    headers = {"X-Vault-Token": "root"}
    async with TestClient(TestServer(app)) as client:
        created = await client.post(
            "/v1/transit/keys/auto", json={"auto_rotate_period": "1h"}, headers=headers
        )
        assert created.status == 200
        await asyncio.sleep(0.05)
        before = await (await client.get("/v1/transit/keys/auto", headers=headers)).json()
        assert before["data"]["latest_version"] == 1

        clock.now += 3600
        for _ in range(100):
            await asyncio.sleep(0.01)
            after = await (await client.get("/v1/transit/keys/auto", headers=headers)).json()
            if after["data"]["latest_version"] == 2:
                break

    assert after["data"]["latest_version"] == 2
    assert after["data"]["keys"]["2"] == int(clock.now)
