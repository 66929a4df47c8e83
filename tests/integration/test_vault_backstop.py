"""Vault's own rotation as keyward's backstop, against a Vault through hvac (no Temporal).

The Transit-key service's ``auto_rotate_period`` write, ``schedules apply``'s
reconciliation of it (``reconcile_backstops``), and — on the dev server, with a clock the
test moves — Vault rotating a key by itself once the backstop passes, after which
keyward's compare-and-rotate and its scheduled runs see the version Vault made.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hvac
import pytest
from aiohttp.test_utils import TestServer

from keyward.config import RotationSettings, Settings
from keyward.contracts.rotation import RotateKeyInput
from keyward.contracts.transit import TransitKeyInfo
from keyward.errors import KeywardError
from keyward.policy.backstop import BackstopMode
from keyward.rotation.backstops import BackstopChange, backstop_for, reconcile_backstops
from keyward.services.transit_keys import TransitKeys
from keyward.vault.errors import VaultForbidden
from keyward.vault.names import InvalidVaultName
from keyward_devstack.vaultdev.app import build_app
from keyward_devstack.vaultdev.config import DevVaultConfig
from tests.conftest import VaultEndpoint
from workflows.rotate_key import skip_reason

DAY = timedelta(days=1)
#: 1,000 encryptions a day: the max key age decides, 90 days; the backstop is 180 days.
RATE = 1000.0
BACKSTOP_SECONDS = 180 * 86_400


def settings_for(vault: VaultEndpoint, keys: dict[str, float], *,
                 mode: BackstopMode = "reconcile", factor: float = 2.0) -> Settings:
    return dataclasses.replace(
        Settings(), vault=vault.settings(),
        rotation=RotationSettings(keys=keys, vault_backstop=mode, vault_backstop_factor=factor))


def period(vault_client: hvac.Client, key: str) -> int:
    return int(vault_client.secrets.transit.read_key(name=key)["data"]["auto_rotate_period"])


def by_key(changes: list[BackstopChange]) -> dict[str, BackstopChange]:
    return {change.key: change for change in changes}


def test_the_service_sets_the_period_reads_it_back_and_switches_it_off(
        vault_client: hvac.Client, transit_key: str) -> None:
    """set_auto_rotate_period writes keys/:name/config and returns the key as Vault then
    reports it; 0 switches Vault's rotation off again."""
    keys = TransitKeys(vault_client)
    info = keys.set_auto_rotate_period(transit_key, "transit", 60 * DAY)
    assert info.auto_rotate_period_seconds == 60 * 86_400
    assert period(vault_client, transit_key) == 60 * 86_400
    assert info.latest_version == 1  # configuring is not rotating
    assert keys.set_auto_rotate_period(transit_key, "transit",
                                       timedelta(0)).auto_rotate_period_seconds == 0
    assert period(vault_client, transit_key) == 0


def test_a_vault_that_ignores_the_period_is_an_error(vault_client: hvac.Client,
                                                    transit_key: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Vault before 1.10 accepts the request and ignores auto_rotate_period: the read-back
    catches that, rather than reporting a backstop Vault does not have."""
    monkeypatch.setattr(vault_client.secrets.transit, "update_key_configuration",
                        lambda **_: None)
    with pytest.raises(KeywardError, match=f"Vault reports auto_rotate_period 0 s for "
                                           f"transit/{transit_key} after keyward set 86400 s"):
        TransitKeys(vault_client).set_auto_rotate_period(transit_key, "transit", DAY)


@pytest.mark.parametrize("bad", [timedelta(minutes=59, seconds=59), timedelta(seconds=1),
                                 timedelta(hours=2, microseconds=1), -DAY])
def test_a_period_vault_would_refuse_is_refused_before_any_request(bad: timedelta) -> None:
    """Under an hour, fractions of a second and negative periods are one clear line, and no
    request is made: this client's Vault does not exist, so a request would fail otherwise."""
    nowhere = TransitKeys(hvac.Client(url="http://127.0.0.1:9", timeout=1))
    with pytest.raises(KeywardError, match="must be 0 \\(off\\) or whole seconds of at least "
                                           "an hour"):
        nowhere.set_auto_rotate_period("payments", "transit", bad)


@pytest.mark.parametrize(("key", "mount"), [("../keys/victim", "transit"),
                                            ("payments", "transit/../sys"), ("a/b", "transit")])
def test_names_are_checked_before_the_write(key: str, mount: str) -> None:
    """The key and mount are held to Vault's naming rule before hvac builds a URL."""
    nowhere = TransitKeys(hvac.Client(url="http://127.0.0.1:9", timeout=1))
    with pytest.raises(InvalidVaultName):
        nowhere.set_auto_rotate_period(key, mount, DAY)


def test_apply_sets_the_backstop_once_then_leaves_it(vault: VaultEndpoint,
                                                     vault_client: hvac.Client,
                                                     transit_key: str) -> None:
    """A key without a period gets the backstop (old → new reported); the next apply finds
    it equal and changes nothing."""
    settings = settings_for(vault, {transit_key: RATE})
    (first,) = reconcile_backstops(TransitKeys(vault_client), settings)
    assert first == BackstopChange(
        key=transit_key, mount="transit", change="set", old_period_seconds=0,
        new_period_seconds=BACKSTOP_SECONDS, backstop_seconds=BACKSTOP_SECONDS,
        interval_seconds=90 * 86_400,
        detail="auto_rotate_period off → 180 days: Vault rotates the key after 180 days if "
               "keyward has not (2 x keyward's interval of 90 days)")
    assert period(vault_client, transit_key) == BACKSTOP_SECONDS
    (second,) = reconcile_backstops(TransitKeys(vault_client), settings)
    assert (second.change, second.old_period_seconds, second.new_period_seconds) == \
        ("unchanged", BACKSTOP_SECONDS, BACKSTOP_SECONDS)
    assert second.detail == "auto_rotate_period 180 days (the backstop)"


def test_a_period_shorter_than_keyward_interval_is_reported_and_reconciled(
        vault: VaultEndpoint, vault_client: hvac.Client, transit_key: str) -> None:
    """An operator's 1-hour period on a key keyward rotates every 90 days: a warning that
    both rotate it, and the period becomes the backstop."""
    vault_client.secrets.transit.update_key_configuration(
        name=transit_key, auto_rotate_period="1h")
    (change,) = reconcile_backstops(TransitKeys(vault_client),
                                    settings_for(vault, {transit_key: RATE}))
    assert (change.change, change.old_period_seconds, change.new_period_seconds) == \
        ("set", 3600, BACKSTOP_SECONDS)
    assert change.warnings == (
        "Vault rotates this key by itself every 1 hour, and keyward every 90 days: both "
        "rotate it, on different cadences; now set to the backstop",)
    assert period(vault_client, transit_key) == BACKSTOP_SECONDS


@pytest.mark.parametrize(("mode", "change"), [("keep-existing", "kept"), ("off", "off")])
def test_keep_existing_and_off_leave_an_operator_period_and_still_warn(
        vault: VaultEndpoint, vault_client: hvac.Client, transit_key: str, mode: BackstopMode,
        change: str) -> None:
    """With rotation.vault_backstop = keep-existing or off, a period already set stays as
    it is; that Vault and keyward both rotate the key is still reported."""
    vault_client.secrets.transit.update_key_configuration(
        name=transit_key, auto_rotate_period="24h")
    (found,) = reconcile_backstops(TransitKeys(vault_client),
                                   settings_for(vault, {transit_key: RATE}, mode=mode))
    assert (found.change, found.old_period_seconds, found.new_period_seconds) == \
        (change, 86_400, 86_400)
    assert len(found.warnings) == 1
    assert "both rotate it" in found.warnings[0]
    assert period(vault_client, transit_key) == 86_400


def test_keep_existing_fills_an_unset_period_and_off_does_not(
        vault: VaultEndpoint, vault_client: hvac.Client, transit_key: str) -> None:
    off = reconcile_backstops(TransitKeys(vault_client),
                              settings_for(vault, {transit_key: RATE}, mode="off"))
    assert off[0].change == "off"
    assert period(vault_client, transit_key) == 0
    filled = reconcile_backstops(TransitKeys(vault_client),
                                 settings_for(vault, {transit_key: RATE}, mode="keep-existing"))
    assert (filled[0].change, filled[0].new_period_seconds) == ("set", BACKSTOP_SECONDS)


def test_a_missing_key_and_a_refused_write_are_reported_and_the_others_still_run(
        vault: VaultEndpoint, vault_client: hvac.Client, transit_key: str) -> None:
    """A key Vault does not have is ``missing``; a write Vault refuses is ``failed`` for
    that key only; the next key is still reconciled."""
    refused = f"refused-{uuid.uuid4().hex[:8]}"
    vault_client.secrets.transit.create_key(name=refused)
    missing = f"missing-{uuid.uuid4().hex[:8]}"

    class RefusingOne(TransitKeys):
        """Vault's answer to a token whose policy lacks keys/+/config (the dev server has
        no ACL engine to refuse it itself)."""

        def set_auto_rotate_period(self, key: str, mount: str,
                                   period: timedelta) -> TransitKeyInfo:
            if key == refused:
                raise VaultForbidden(f"set auto_rotate_period of {mount}/{key}",
                                     "permission denied", status=403)
            return super().set_auto_rotate_period(key, mount, period)

    changes = by_key(reconcile_backstops(
        RefusingOne(vault_client),
        settings_for(vault, {transit_key: RATE, refused: RATE, missing: RATE})))
    assert changes[missing].change == "missing"
    assert (changes[missing].old_period_seconds, changes[missing].new_period_seconds) == \
        (None, None)
    assert "no such key yet" in changes[missing].detail
    assert (changes[refused].change, changes[refused].old_period_seconds,
            changes[refused].new_period_seconds) == ("failed", 0, None)
    assert "permission denied" in changes[refused].detail
    assert changes[transit_key].change == "set"
    assert period(vault_client, transit_key) == BACKSTOP_SECONDS
    assert period(vault_client, refused) == 0


def test_the_backstop_follows_the_rate_and_the_factor(vault: VaultEndpoint) -> None:
    """40M/day rotates every 30 days: the backstop is 60 days, or 75 at factor 2.5."""
    assert backstop_for(settings_for(vault, {}), "k", 40e6).period == 60 * DAY
    assert backstop_for(settings_for(vault, {}, factor=2.5), "k", 40e6).period == 75 * DAY


class FakeClock:
    """Time that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def clocked_vault(tmp_path: Path) -> AsyncIterator[tuple[hvac.Client, FakeClock]]:
    """keyward's dev Vault in-process, on a clock the test moves, sweeping every 10 ms."""
    clock = FakeClock()
    app = build_app(DevVaultConfig(data_dir=tmp_path / "data", root_token="root"),
                    clock=clock, sweep_interval=0.01)
    async with TestServer(app, host="127.0.0.1") as server:
        client = hvac.Client(url=str(server.make_url("")).rstrip("/"), token="root", timeout=10)
        yield client, clock
        client.adapter.close()


async def test_vault_rotates_by_itself_after_the_backstop_and_keyward_sees_that_version(
        clocked_vault: tuple[hvac.Client, FakeClock]) -> None:
    """The dev Vault rotates a key once its latest version is older than the backstop that
    reconcile_backstops set. keyward then treats Vault's version like its own: its
    compare-and-rotate from v1 does not rotate again, and a scheduled run finds the latest
    version too young and skips."""
    client, clock = clocked_vault
    keys = TransitKeys(client)
    await asyncio.to_thread(client.secrets.transit.create_key, name="backstopped")
    (change,) = await asyncio.to_thread(reconcile_backstops, keys, dataclasses.replace(
        Settings(), rotation=RotationSettings(keys={"backstopped": RATE})))
    assert change.change == "set"

    clock.now += BACKSTOP_SECONDS - 1
    await asyncio.sleep(0.1)
    assert (await asyncio.to_thread(keys.read, "backstopped", "transit")).latest_version == 1
    clock.now += 1
    for _ in range(200):
        info = await asyncio.to_thread(keys.read, "backstopped", "transit")
        if info.latest_version == 2:
            break
        await asyncio.sleep(0.01)
    assert info.latest_version == 2
    assert info.version_created[2] == int(clock.now)

    again = await asyncio.to_thread(lambda: keys.rotate_if_current("backstopped", "transit",
                                                                   expected_latest=1))
    assert again.latest_version == 2
    scheduled = RotateKeyInput(key="backstopped", reason="schedule",
                               min_version_age_seconds=45 * 86_400)
    reason = skip_reason(scheduled, again, datetime.fromtimestamp(clock.now + 60, tz=UTC))
    assert reason is not None
    assert "a rotation for this period already happened" in reason
    # Vault's clock restarted with its own rotation: nothing more until a backstop later.
    clock.now += BACKSTOP_SECONDS - 1
    await asyncio.sleep(0.1)
    assert (await asyncio.to_thread(keys.read, "backstopped", "transit")).latest_version == 2
