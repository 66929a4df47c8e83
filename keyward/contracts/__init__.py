"""Contracts: every workflow and activity input and result, and each activity's and
workflow's Temporal name with its argument and result types.

Workflows, activities, the starter, schedules, the usage reporter and the tests all import
these; the modules here import only the standard library and each other, so a contract can
be read (and a workflow replayed) without loading any I/O code. Field names, defaults and
Temporal names are part of recorded histories and of hand-written JSON inputs: add fields
with defaults, never rename.
"""

from __future__ import annotations

from typing import Any

from keyward.contracts.authorities import (
    ACTIVATE_SUCCESSOR_CA,
    PLAN_CA_ROTATION,
    PUBLISH_CA_BUNDLE,
    ROTATE_CA_WORKFLOW,
    STAGE_SUCCESSOR_CA,
    VERIFY_CA_LEAVES,
)
from keyward.contracts.certificates import (
    INSPECT_CERTIFICATE,
    ISSUE_AND_INSTALL_CERTIFICATE,
    RENEW_CERTIFICATE_WORKFLOW,
    VERIFY_CERTIFICATE_SERVED,
)
from keyward.contracts.cloud import (
    ADD_ACCEPTED_CLIENT_CA,
    CLOUD_ACTIVITIES,
    READ_CLOUD_NAMESPACE,
    SET_NAMESPACE_CODEC_SERVER,
)
from keyward.contracts.contract import ActivityContract, WorkflowContract
from keyward.contracts.history import DESCRIBE_HISTORY_WINDOW, REWRAP_SCHEDULE_INPUTS
from keyward.contracts.ledger import TRANSIT_KEY_LEDGER_WORKFLOW
from keyward.contracts.rotation import RESOLVE_ROTATION_INPUT, ROTATE_TRANSIT_KEY_WORKFLOW
from keyward.contracts.transit import (
    INSPECT_TRANSIT_KEY_WORKFLOW,
    READ_TRANSIT_KEY,
    ROTATE_TRANSIT_KEY,
    SET_DECRYPTION_FLOOR,
)

#: Every activity the worker registers, each exactly once (a test holds them to it); those
#: of ``CLOUD_ACTIVITIES`` only when the settings have ``cloud.api_key_file``.
ACTIVITIES: tuple[ActivityContract[Any, Any], ...] = (
    READ_TRANSIT_KEY, ROTATE_TRANSIT_KEY, SET_DECRYPTION_FLOOR,
    DESCRIBE_HISTORY_WINDOW, REWRAP_SCHEDULE_INPUTS,
    INSPECT_CERTIFICATE, ISSUE_AND_INSTALL_CERTIFICATE, VERIFY_CERTIFICATE_SERVED,
    RESOLVE_ROTATION_INPUT,
    PLAN_CA_ROTATION, STAGE_SUCCESSOR_CA, PUBLISH_CA_BUNDLE, ACTIVATE_SUCCESSOR_CA,
    VERIFY_CA_LEAVES,
    READ_CLOUD_NAMESPACE, ADD_ACCEPTED_CLIENT_CA, SET_NAMESPACE_CODEC_SERVER,
)
#: Every workflow the worker hosts.
WORKFLOWS: tuple[WorkflowContract[Any, Any], ...] = (
    INSPECT_TRANSIT_KEY_WORKFLOW, ROTATE_TRANSIT_KEY_WORKFLOW, TRANSIT_KEY_LEDGER_WORKFLOW,
    RENEW_CERTIFICATE_WORKFLOW, ROTATE_CA_WORKFLOW,
)

__all__ = ["ACTIVITIES", "CLOUD_ACTIVITIES", "WORKFLOWS"]
