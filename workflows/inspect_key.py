"""``InspectTransitKey``: report a Transit key's versions and policy through Temporal.

The smallest useful workflow, and the one an operator runs first to see that
the worker can reach Vault::

    temporal workflow execute --type InspectTransitKey --task-queue keyward \
        --input '{"key":"default"}'
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.activity_calls import run_activity

# Passed through the sandbox: the worker's own contract classes and pure policy, loaded
# once. Needed, not only faster: the sandbox swaps in a restricted ``datetime``, and a
# contract imported inside it has datetime fields the payload converter cannot fill.
with workflow.unsafe.imports_passed_through():
    from keyward.contracts.transit import (
        INSPECT_TRANSIT_KEY_WORKFLOW,
        READ_TRANSIT_KEY,
        ReadKeyInput,
        TransitKeyInfo,
    )


@workflow.defn(name=INSPECT_TRANSIT_KEY_WORKFLOW.name)
class InspectTransitKey:
    @workflow.run
    async def run(self, request: ReadKeyInput) -> TransitKeyInfo:
        info = await run_activity(
            READ_TRANSIT_KEY,
            request,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30),
                                     maximum_attempts=10),
            summary=f"read {request.mount}/{request.key}",
        )
        workflow.logger.info("transit key %s is at version %d", info.name, info.latest_version)
        return info
