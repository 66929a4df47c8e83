"""Workflow and schedule ids, defined once so starters, workers and ledgers agree.

Ids carry the mount and key, so two keys (or the same key name on two mounts) never
collide, and an operator can find a key's workflows in the Web UI by prefix.
"""

from __future__ import annotations

PREFIX = "keyward"


def rotation_schedule_id(mount: str, key: str) -> str:
    return f"{PREFIX}/rotate/{mount}/{key}"


def scheduled_rotation_workflow_id(mount: str, key: str) -> str:
    """The schedule appends the scheduled time, so each firing has its own id."""
    return f"{PREFIX}/rotate/{mount}/{key}/scheduled"


def budget_rotation_workflow_id(mount: str, key: str, version: int) -> str:
    """One per version: the ledger can never start two budget rotations from one version."""
    return f"{PREFIX}/rotate/{mount}/{key}/budget-v{version}"


def manual_rotation_workflow_id(mount: str, key: str, nonce: str) -> str:
    return f"{PREFIX}/rotate/{mount}/{key}/manual-{nonce}"


def ledger_workflow_id(mount: str, key: str) -> str:
    return f"{PREFIX}/ledger/{mount}/{key}"


def renewal_schedule_id(name: str) -> str:
    return f"{PREFIX}/renew/{name}"


def scheduled_renewal_workflow_id(name: str) -> str:
    return f"{PREFIX}/renew/{name}/scheduled"


def manual_renewal_workflow_id(name: str, nonce: str) -> str:
    return f"{PREFIX}/renew/{name}/manual-{nonce}"


def ca_rotation_workflow_id(name: str) -> str:
    """One id per CA: a second start while a rotation runs is refused by Temporal itself."""
    return f"{PREFIX}/ca-rotation/{name}"


def is_keyward_schedule(schedule_id: str) -> bool:
    return schedule_id.startswith((f"{PREFIX}/rotate/", f"{PREFIX}/renew/"))
