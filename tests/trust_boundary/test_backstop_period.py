"""Issue 15, part 4: Vault's ``auto_rotate_period`` comes from the operator's settings only.

The backstop period decides how often Vault rotates a key by itself. A short one would
make Vault rotate far more often than keyward plans (and keyward then retires versions on
Vault's cadence); ``0`` switches the backstop off. So nothing that arrives through
Temporal may choose it: no workflow, activity or signal input carries a period, and only
``starter.py schedules apply`` (the operator, with keyward's settings) writes one.
"""

from __future__ import annotations

import dataclasses
import re
import typing
import uuid
from pathlib import Path

import hvac
from temporalio.client import Client

from keyward.contracts import ACTIVITIES, WORKFLOWS
from keyward.contracts.ledger import REPORT_SIGNAL
from keyward.contracts.rotation import RotateKeyResult
from tests.conftest import VaultEndpoint
from tests.e2e.test_rotation import encrypting, running_worker, settings_for

ROOT = Path(__file__).resolve().parents[2]
#: Field names that could carry a rotation period.
PERIOD_FIELD = re.compile(r"period|auto_rotate", re.IGNORECASE)


def _field_names(cls: type, seen: set[type]) -> set[str]:
    """Every field name of a dataclass and of the dataclasses inside it."""
    if cls in seen or not dataclasses.is_dataclass(cls):
        return set()
    seen.add(cls)
    names: set[str] = set()
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        names.add(f"{cls.__name__}.{field.name}")
        for inner in _types_in(hints[field.name]):
            names |= _field_names(inner, seen)
    return names


def _types_in(hint: object) -> list[type]:
    found = [hint] if isinstance(hint, type) else []
    for arg in typing.get_args(hint):
        found += _types_in(arg)
    return found


def test_no_input_that_arrives_through_temporal_carries_a_period() -> None:
    """Every workflow input, activity input and signal keyward accepts, nested inputs
    included, has no field that could carry a rotation period."""
    inputs = [c.arg_type for c in (*ACTIVITIES, *WORKFLOWS)] + [REPORT_SIGNAL.arg_type]
    seen: set[type] = set()
    names = set().union(*(_field_names(cls, seen) for cls in inputs))
    assert names, "no input fields found: did the contracts move?"
    assert [name for name in names if PERIOD_FIELD.search(name.split(".")[1])] == []


def test_only_the_transit_key_service_writes_a_period_and_only_schedules_apply_calls_it(
) -> None:
    """``auto_rotate_period=`` appears in one place that talks to Vault, the Transit-key
    service; its setter is called from the backstop reconciliation alone, which no
    workflow or activity imports."""
    writers, callers = [], []
    for path in sorted(ROOT.glob("**/*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("tests/", "bench/", "devstack/", ".")) or "/." in relative:
            continue
        text = path.read_text()
        if "auto_rotate_period=" in text:
            writers.append(relative)
        if "set_auto_rotate_period(" in text and "def set_auto_rotate_period(" not in text:
            callers.append(relative)
    assert writers == ["keyward/services/transit_keys.py"]
    assert callers == ["keyward/rotation/backstops.py"]
    for package in ("workflows", "activities"):
        for path in (ROOT / package).glob("*.py"):
            assert "keyward.rotation.backstops" not in path.read_text(), path


async def test_a_crafted_rotation_input_cannot_set_a_period(
        temporal_client: Client, vault: VaultEndpoint, vault_client: hvac.Client,
        transit_key: str, task_queue: str) -> None:
    """An encrypted RotateTransitKey input that adds period fields (what a caller with
    keyward's codec could send) rotates the key and leaves its auto_rotate_period alone."""
    settings = settings_for(vault, task_queue, transit_key)
    client, bundle = encrypting(temporal_client, settings, vault.token)
    crafted = {"key": transit_key, "reason": "crafted", "auto_rotate_period": "1h",
               "auto_rotate_period_seconds": 3600, "period": "1h"}
    try:
        async with running_worker(client, settings):
            result = await client.execute_workflow(
                "RotateTransitKey", crafted, result_type=RotateKeyResult,
                id=f"crafted-period-{uuid.uuid4()}", task_queue=task_queue)
    finally:
        await bundle.close()
    assert (result.rotated, result.new_version) == (True, 2)
    key = vault_client.secrets.transit.read_key(name=transit_key)["data"]
    assert key["auto_rotate_period"] == 0
