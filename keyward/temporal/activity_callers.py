"""keyward's activities run only as steps of keyward's own workflows.

An activity does what its input says: ``SetDecryptionFloor`` raises the floor (and may
trim versions, irreversibly) without re-deciding whether that is safe, because the
workflow that scheduled it decided. But Temporal lets an activity start without that
workflow: as a *standalone activity* (``temporal activity execute --type
SetDecryptionFloor --task-queue keyward``, which needs only the right to start
executions), or scheduled onto keyward's task queue by any other workflow in the
namespace. Both hand keyward an input the caller wrote. This worker interceptor refuses
every activity whose caller is not one of the workflow types the worker itself hosts,
with a non-retryable ``ForeignCaller`` error, before the activity body runs.

What it cannot tell: a workflow of another worker that registered a keyward workflow type
name. Running such a worker means polling the namespace's task queues, which keyward's
own task queue is one of, so keyward's namespace must not give that right to anyone but
keyward's worker and its operators (docs/trust-boundary.md, "What is still trusted").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from keyward.contracts import failures
from keyward.errors import KeywardError
from keyward.temporal.failures import to_application_error


class KeywardCallersOnly(Interceptor):
    """Refuses activities not scheduled by one of ``workflow_types``."""

    def __init__(self, workflow_types: Iterable[str]) -> None:
        self._types = frozenset(workflow_types)

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _CallerCheck(next, self._types)


class _CallerCheck(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor,
                 types: frozenset[str]) -> None:
        super().__init__(next)
        self._types = types

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        # Runs on the event loop for `def` activities too, before the executor is used.
        info = activity.info()
        caller = info.workflow_type if info.in_workflow else None
        if caller not in self._types:
            who = f"workflow type {caller!r}" if caller else "no workflow (a standalone activity)"
            raise to_application_error(KeywardError(
                f"refusing activity {info.activity_type}: it was started by {who}; keyward's "
                "activities run only as steps of keyward's workflows",
                failure_type=failures.FOREIGN_CALLER))
        return await self.next.execute_activity(input)
