"""How a workflow calls an activity: through its contract, never its implementation.

The contract carries the Temporal name and the result type, so a workflow module imports
no activity code (no hvac, no Temporal client, nothing with I/O) and names no activity by
a bare string; the activity declares ``@activity.defn(name=CONTRACT.name)`` from the same
contract, and a test holds every registered activity to its contract.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():  # as every contract import of a workflow
    from keyward.contracts.contract import ActivityContract

ArgT = TypeVar("ArgT")
ResultT = TypeVar("ResultT")


async def run_activity(contract: ActivityContract[ArgT, ResultT], arg: ArgT, *,
                       start_to_close_timeout: timedelta,
                       retry_policy: RetryPolicy | None = None,
                       heartbeat_timeout: timedelta | None = None,
                       summary: str | None = None) -> ResultT:
    """``workflow.execute_activity`` for ``contract``: its name, its result type."""
    result: ResultT = await workflow.execute_activity(
        contract.name, arg, result_type=contract.result_type,
        start_to_close_timeout=start_to_close_timeout, retry_policy=retry_policy,
        heartbeat_timeout=heartbeat_timeout, summary=summary)
    return result
