"""`python starter.py ...` as an operator runs it, against `python worker.py --dev`.

One local stack for the module (starting it is most of the cost), configured like a
user's shell: ``KEYWARD_ROTATION__KEYS=default=40000000`` for worker and starter. The
tests run in file order against it; the first rotation here is the one from v1 to v2.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import hvac
import pytest

from keyward_devstack.temporal_dev import temporal_cli_path
from tests.e2e.devstack import ROOT, DevWorker
from tests.support import wait_until

RATE = "default=40000000"
SCHEDULE = "keyward/rotate/transit/default"
#: 40M/day at the default safety factor 0.5: the budget lasts 53 days, so 30 days.
CADENCE = "40,000,000/day → NIST bound 107 days → budget 53 days at safety factor 0.5 → " \
          "rotate every 30 days"
KEY = "transit/default"
#: Twice the interval: Vault rotates the key by itself only when keyward could not.
BACKSTOP = "Vault rotates the key after 60 days if keyward has not (2 x keyward's interval " \
           "of 30 days)"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWorker]:
    # A short report interval so `status` soon has ledger counts to show.
    worker = DevWorker.on_free_ports(tmp_path_factory.mktemp("starter-cli"),
                                     KEYWARD_ROTATION__KEYS=RATE,
                                     KEYWARD_ROTATION__LEDGER_REPORT_SECONDS="0.5")
    try:
        worker.start()
        worker.wait_ready()
        yield worker
    finally:
        worker.shut_down()


def starter(stack: DevWorker, *args: str, keys: str = RATE,
            **env_vars: str) -> subprocess.CompletedProcess[str]:
    env = stack.client_env | {"KEYWARD_ROTATION__KEYS": keys} | env_vars
    return subprocess.run([sys.executable, "starter.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def changes(stdout: str) -> dict[str, tuple[str, str]]:
    """`schedules apply`'s schedule lines as {schedule id: (change, detail)}."""
    found: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines():
        change, schedule_id, detail = line.split(maxsplit=2)
        if change not in ("backstop", "warning"):
            found[schedule_id] = (change, detail)
    return found


def backstops(stdout: str) -> dict[str, tuple[str, str]]:
    """`schedules apply`'s Vault backstop lines as {mount/key: (change, detail)}."""
    found: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines():
        kind, key, detail = line.split(maxsplit=2)
        if kind == "backstop":
            change, _, detail = detail.partition(": ")
            found[key] = (change, detail)
    return found


def warnings(stdout: str) -> list[tuple[str, str]]:
    return [(key, detail) for kind, key, detail in
            (line.split(maxsplit=2) for line in stdout.splitlines()) if kind == "warning"]


def vault(stack: DevWorker) -> hvac.Client:
    env = stack.client_env
    return hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"], timeout=10)


def auto_rotate_period(stack: DevWorker) -> int:
    client = vault(stack)
    try:
        return int(client.secrets.transit.read_key(name="default")["data"]["auto_rotate_period"])
    finally:
        client.adapter.close()


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr without the JSON log lines: what the person reads as the error."""
    return [line for line in result.stderr.splitlines() if not line.startswith("{")]


def latest_version(stack: DevWorker) -> int:
    client = vault(stack)
    try:
        return int(client.secrets.transit.read_key(name="default")["data"]["latest_version"])
    finally:
        client.adapter.close()


def test_schedules_apply_creates_once_then_changes_nothing(stack: DevWorker) -> None:
    """The first apply creates the key's schedule and sets Vault's backstop period;
    applying again reports both unchanged."""
    stack.temporal("schedule", "delete", "--schedule-id", SCHEDULE)  # absent on a fresh stack

    first = ok(starter(stack, "schedules", "apply"))
    assert changes(first) == {SCHEDULE: ("created", CADENCE)}
    assert backstops(first) == {KEY: ("set", f"auto_rotate_period off → 60 days: {BACKSTOP}")}
    assert auto_rotate_period(stack) == 60 * 86_400

    second = ok(starter(stack, "schedules", "apply"))
    assert changes(second) == {SCHEDULE: ("unchanged", "every 30 days")}
    assert backstops(second) == {KEY: ("unchanged", "auto_rotate_period 60 days (the backstop)")}
    assert warnings(second) == []


def test_changed_rate_recreates_the_schedule_with_the_new_cadence(stack: DevWorker) -> None:
    """A hundred times the rate gives a 12-hour cadence; the schedule is recreated with it."""
    ok(starter(stack, "schedules", "apply"))
    try:
        faster = changes(ok(starter(stack, "schedules", "apply", keys="default=4000000000")))
        change, detail = faster[SCHEDULE]
        assert change == "recreated"
        assert detail.startswith("cadence changed: 4,000,000,000/day")
        assert detail.endswith("rotate every 12 hours")
        listed = ok(starter(stack, "schedules", "list", keys="default=4000000000"))
        assert f"{SCHEDULE}  every 12 hours" in listed
        assert auto_rotate_period(stack) == 86_400  # the backstop follows: 2 x 12 hours
    finally:
        restored = ok(starter(stack, "schedules", "apply"))
    assert changes(restored)[SCHEDULE] == ("recreated", f"cadence changed: {CADENCE}")
    assert backstops(restored)[KEY] == ("set", f"auto_rotate_period 1 day → 60 days: {BACKSTOP}")


def test_removed_key_is_stale_until_pruned(stack: DevWorker) -> None:
    """A key dropped from the settings leaves a stale schedule; --prune deletes it."""
    extra = "keyward/rotate/transit/extra"
    added_out = ok(starter(stack, "schedules", "apply", keys=f"{RATE},extra=1000"))
    added = changes(added_out)
    assert added[extra][0] == "created"
    # Vault has no key "extra" (its first encryption would create it): said, not an error.
    assert backstops(added_out)["transit/extra"][0] == "missing"

    removed = changes(ok(starter(stack, "schedules", "apply")))
    assert removed[extra] == ("stale", "key no longer configured; --prune deletes it")
    assert removed[SCHEDULE][0] == "unchanged"

    pruned = changes(ok(starter(stack, "schedules", "apply", "--prune")))
    assert pruned[extra] == ("deleted", "key no longer configured")
    assert extra not in changes(ok(starter(stack, "schedules", "apply")))
    # The stack's own worker-certificate schedule is not in these settings, and is neither
    # called stale nor pruned: its memo says `worker --dev` manages it.
    assert not any(schedule.startswith("keyward/renew/") for schedule in pruned)
    listed = ok(starter(stack, "schedules", "list"))
    assert "keyward/renew/keyward-worker" in listed


def test_schedules_list_shows_interval_next_run_and_cadence(stack: DevWorker) -> None:
    """`schedules list` names each schedule with its interval, next run and the why."""
    ok(starter(stack, "schedules", "apply"))
    listed = ok(starter(stack, "schedules", "list")).splitlines()
    row = next(i for i, line in enumerate(listed) if line.startswith(SCHEDULE))
    assert re.fullmatch(rf"{SCHEDULE}  every 30 days  next \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00",
                        listed[row]), listed
    assert listed[row + 1] == f"    transit/default: {CADENCE}"


def test_rotate_key_rotates_from_v1_to_v2(stack: DevWorker) -> None:
    """`rotate-key default` runs the rotation workflow and prints its result as JSON."""
    result = json.loads(ok(starter(stack, "rotate-key", "default")))
    assert (result["key"], result["reason"]) == ("default", "manual")
    assert (result["rotated"], result["old_version"], result["new_version"]) == (True, 1, 2)
    assert latest_version(stack) == 2


def test_status_shows_version_next_rotation_and_budget(stack: DevWorker) -> None:
    """`status` has a row per key: latest version, floor, next rotation, ledger budget used."""
    ok(starter(stack, "schedules", "apply"))
    # The worker encrypts the result, so its usage reporter has counts to send the ledger.
    ok(starter(stack, "inspect-key", "default"))
    row = re.compile(rf"default\s+v{latest_version(stack)}\s+\d+h \d+m\s+v1\s+"
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d\+00:00\s+(?P<budget>.+?)\s*")
    shown: list[str] = []

    def ledger_counts_shown() -> bool:
        lines = ok(starter(stack, "status")).splitlines()
        shown[:] = lines
        match = row.fullmatch(lines[1])
        assert match is not None, lines
        assert lines[0].split()[:2] == ["key", "version"]
        return match["budget"] != "no reports yet"

    wait_until(ledger_counts_shown, within=20, interval=0.5, what="ledger counts in status")
    match = row.fullmatch(shown[1])
    assert match is not None
    assert re.fullmatch(r"[\d,]+ of 2,147,483,648 \(\d+\.\d{4}%\)", match["budget"]), shown


def test_readme_temporal_cli_command_rotates(stack: DevWorker) -> None:
    """The README's `temporal workflow execute --type RotateTransitKey` command works."""
    before = latest_version(stack)
    executed = subprocess.run(
        [str(temporal_cli_path()), "workflow", "execute", "--type", "RotateTransitKey",
         "--task-queue", "keyward", "--input", '{"key": "default"}',
         "--address", f"127.0.0.1:{stack.temporal_port}",
         # The stack's codec server, so the CLI shows the result the worker encrypted.
         "--codec-endpoint", f"http://127.0.0.1:{stack.codec_port}", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False)
    assert executed.returncode == 0, executed.stdout + executed.stderr
    document = json.loads(executed.stdout)
    assert document["status"] == "COMPLETED", document
    result = document["result"]
    assert (result["rotated"], result["old_version"], result["new_version"]) == \
        (True, before, before + 1)
    assert latest_version(stack) == before + 1


def test_rotate_key_of_unknown_key_is_one_clear_line(stack: DevWorker) -> None:
    """A key Vault does not have fails the workflow at once: exit 1, one line naming it."""
    result = starter(stack, "rotate-key", "no-such-key")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert line.startswith("keyward: rotate-key failed: ")
    assert "transit/no-such-key" in line
    assert "404" in line


def test_status_of_unknown_key_is_one_clear_line(stack: DevWorker) -> None:
    """`status` of a key Vault does not have: exit 1 and one line naming the key."""
    result = starter(stack, "status", "no-such-key")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result)
    assert line.startswith("keyward: status failed: ")
    assert "transit/no-such-key" in line


def test_a_period_vault_and_keyward_both_rotate_on_is_a_warning(stack: DevWorker) -> None:
    """An operator's 1-hour auto_rotate_period on a key keyward rotates every 30 days: apply
    warns that both rotate it and sets the backstop; with rotation.vault_backstop = off it
    only warns, and Vault keeps the operator's period."""
    ok(starter(stack, "schedules", "apply"))
    client = vault(stack)
    try:
        client.secrets.transit.update_key_configuration(name="default", auto_rotate_period="1h")
        left = ok(starter(stack, "schedules", "apply", KEYWARD_ROTATION__VAULT_BACKSTOP="off"))
        assert backstops(left) == {KEY: ("off", "auto_rotate_period 1 hour: left alone "
                                                "(rotation.vault_backstop = off)")}
        both = ("Vault rotates this key by itself every 1 hour, and keyward every 30 days: "
                "both rotate it, on different cadences")
        assert warnings(left) == [(KEY, both)]
        assert auto_rotate_period(stack) == 3600

        fixed = ok(starter(stack, "schedules", "apply"))
        assert backstops(fixed) == {KEY: ("set", f"auto_rotate_period 1 hour → 60 days: "
                                                 f"{BACKSTOP}")}
        assert warnings(fixed) == [(KEY, f"{both}; now set to the backstop")]
        assert auto_rotate_period(stack) == 60 * 86_400
    finally:
        client.adapter.close()


def test_every_operator_command_can_print_json(stack: DevWorker) -> None:
    """`--json` makes `schedules apply`, `schedules list` and `status` print one JSON
    document with the same facts as their tables (for scripts and dashboards)."""
    applied = json.loads(ok(starter(stack, "schedules", "apply", "--json")))
    assert set(applied) == {"schedules", "backstops"}
    changes = applied["schedules"]
    assert {change["schedule_id"] for change in changes} >= {SCHEDULE}
    assert all(set(change) == {"schedule_id", "key", "change", "detail"} for change in changes)
    assert applied["backstops"] == [{
        "key": "default", "mount": "transit", "change": "unchanged",
        "old_period_seconds": 60 * 86_400, "new_period_seconds": 60 * 86_400,
        "backstop_seconds": 60 * 86_400, "interval_seconds": 30 * 86_400,
        "detail": "auto_rotate_period 60 days (the backstop)", "warnings": []}]
    listed = json.loads(ok(starter(stack, "schedules", "list", "--json")))
    (mine,) = [info for info in listed if info["schedule_id"] == SCHEDULE]
    assert mine["interval_seconds"] == 30 * 86_400
    assert mine["note"] == f"transit/default: {CADENCE}"
    assert mine["paused"] is False
    shown = json.loads(ok(starter(stack, "status", "--json")))
    (key,) = shown["keys"]
    assert key["key"] == "default"
    assert key["latest_version"] == latest_version(stack)
    assert key["decryption_floor"] == 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d\+00:00", key["next_rotation"]), key
    assert isinstance(shown["certificates"], list)
    assert shown["as_of"].endswith("+00:00")
