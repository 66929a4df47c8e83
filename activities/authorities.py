"""Activities that rotate a certificate authority, adapting
:class:`keyward.services.authorities.CaRotations` to Temporal.

Async, so the stage step can ask Temporal whether another run still owns the rotation (the
worker's own client, ``activity.client()``); the file and key work runs on a thread. The
owner is the calling workflow run as Temporal reports it, never a value from the input.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from keyward.config import Settings
from keyward.contracts import failures
from keyward.contracts.authorities import (
    ACTIVATE_SUCCESSOR_CA,
    PLAN_CA_ROTATION,
    PUBLISH_CA_BUNDLE,
    STAGE_SUCCESSOR_CA,
    VERIFY_CA_LEAVES,
    BundlePublished,
    BundleRequest,
    CaRef,
    CaRotationPlan,
    CaSummary,
    LeavesVerified,
)
from keyward.errors import KeywardError
from keyward.services.authorities import CaRotations, Owner
from keyward.temporal.failures import as_temporal_failure, to_application_error

T = TypeVar("T")


class CaRotationActivities:
    """``vault`` is the worker's hvac client (``vault-pki`` CAs); ``azure_options`` the Key
    Vault ``credential``/``client_kwargs`` (tests point them at the emulator)."""

    def __init__(self, settings: Settings, *, vault: Any | None = None,
                 azure_options: dict[str, Any] | None = None) -> None:
        self._rotations = CaRotations(settings, vault=vault, azure_options=azure_options)

    @activity.defn(name=PLAN_CA_ROTATION.name)
    async def plan(self, ref: CaRef) -> CaRotationPlan:
        return await _off_loop(lambda: self._rotations.plan(ref.name))

    @activity.defn(name=STAGE_SUCCESSOR_CA.name)
    async def stage(self, ref: CaRef) -> CaSummary:
        """Claim the rotation for the calling run (refused while another run of it is
        still running) and make or reuse the successor."""
        info = activity.info()
        me = Owner(info.workflow_id or "", info.workflow_run_id or "")
        recorded = await _off_loop(lambda: self._rotations.owner(ref.name))
        if recorded is not None and recorded != me and await _running(recorded):
            raise to_application_error(KeywardError(
                f"certificate authority {ref.name!r} is being rotated by {recorded}; "
                "wait for it or cancel it", failure_type=failures.CA_ROTATION_IN_PROGRESS))
        return await _off_loop(lambda: self._rotations.stage(ref.name, me))

    @activity.defn(name=PUBLISH_CA_BUNDLE.name)
    async def publish(self, request: BundleRequest) -> BundlePublished:
        return await _off_loop(lambda: self._rotations.publish(request.name, request.phase))

    @activity.defn(name=ACTIVATE_SUCCESSOR_CA.name)
    async def activate(self, ref: CaRef) -> CaSummary:
        return await _off_loop(lambda: self._rotations.activate(ref.name))

    @activity.defn(name=VERIFY_CA_LEAVES.name)
    async def verify_leaves(self, ref: CaRef) -> LeavesVerified:
        return await _off_loop(lambda: self._rotations.verify_leaves(ref.name))


async def _off_loop(operation: Callable[[], T]) -> T:
    return await asyncio.to_thread(as_temporal_failure, operation)


async def _running(owner: Owner) -> bool:
    """Whether the recorded owner's run is still running (unknown to Temporal: no)."""
    handle = activity.client().get_workflow_handle(owner.workflow_id, run_id=owner.run_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING
