"""``TransitKeyLedger``: the encryption count per Transit key version, summed across processes.

Vault Transit does not count encryptions per key version, so every codec process
counts its own and reports them here periodically (signal-with-start, one ledger
per key). When the current version's count crosses ``rotate_at * budget`` the
ledger starts ``RotateTransitKey`` for that version — once: the child's id names
the version, and the rotation workflow itself skips if the key already moved on.

Its input and reports are untrusted (anyone who can start or signal a workflow can send
them), and counts decide rotations, so only encrypted ones count: a report that arrived
as plain JSON is logged and ignored, and a ledger started with a plain-JSON input fails at
once without starting anything (it would otherwise run on a budget the sender chose, and
its continue-as-new would encrypt that choice). The next real report starts a fresh one.

The ledger runs forever; it continues-as-new when Temporal suggests it (or its
history grows past a bound), carrying its counts, so its history stays small.
"""

from __future__ import annotations

import contextlib
import dataclasses
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

from workflows.rotate_key import RotateTransitKey

# Passed through the sandbox: the worker's own contract classes and pure policy, loaded
# once. Needed, not only faster: the sandbox swaps in a restricted ``datetime``, and a
# contract imported inside it has datetime fields the payload converter cannot fill.
with workflow.unsafe.imports_passed_through():
    from keyward.contracts import failures
    from keyward.contracts.ids import budget_rotation_workflow_id
    from keyward.contracts.ledger import (
        REPORT_SIGNAL,
        TRANSIT_KEY_LEDGER_WORKFLOW,
        USAGE_QUERY,
        LedgerInput,
        LedgerState,
        UsageReport,
    )
    from keyward.contracts.rotation import RotateKeyInput

#: Versions kept in the ledger's state (older ones no longer matter to the budget).
KEPT_VERSIONS = 8
MAX_HISTORY_EVENTS = 5_000
#: Patch id: unauthenticated inputs fail the ledger and unauthenticated reports are not
#: counted (issue 12).
TRUSTED_LEDGER_INPUT = "ledger-input-trust-boundary"
TRUSTED_USAGE_REPORTS = "ledger-reports-trust-boundary"


@workflow.defn(name=TRANSIT_KEY_LEDGER_WORKFLOW.name)
class TransitKeyLedger:
    def __init__(self) -> None:
        self._pending: list[UsageReport] = []
        self._counts: dict[int, int] = {}
        self._started: list[int] = []
        self._input: LedgerInput | None = None

    @workflow.signal(name=REPORT_SIGNAL.name)
    def report(self, usage: UsageReport) -> None:
        self._pending.append(usage)

    @workflow.query(name=USAGE_QUERY.name)
    def usage(self) -> LedgerState:
        assert self._input is not None
        current = max(self._counts, default=0)
        used = self._counts.get(current, 0)
        return LedgerState(key=self._input.key, budget=self._input.budget,
                           counts=dict(self._counts), current_version=current,
                           used_fraction=used / self._input.budget,
                           rotations_started=list(self._started))

    @workflow.run
    async def run(self, request: LedgerInput) -> None:
        self._input = request
        if workflow.patched(TRUSTED_LEDGER_INPUT) and not request.authenticated:
            raise ApplicationError(
                f"refusing to keep the ledger of {str(request.key)[:64]!a}: its input "
                "arrived unencrypted, and anyone who can start a workflow can send plain "
                "JSON; the worker's usage reports start the ledger themselves",
                type=failures.UNAUTHENTICATED_INPUT, non_retryable=True)
        self._counts = {int(v): n for v, n in request.counts.items()}
        self._started = list(request.rotations_started)
        while True:
            await workflow.wait_condition(
                lambda: bool(self._pending) or self._should_continue_as_new())
            while self._pending:
                self._apply(self._pending.pop(0))
                await self._maybe_rotate(request)
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                if self._pending:
                    continue  # a report arrived meanwhile: count it before handing over
                workflow.continue_as_new(LedgerInput(
                    key=request.key, mount=request.mount, budget=request.budget,
                    rotate_at=request.rotate_at, rotation=request.rotation,
                    counts=self._counts, rotations_started=self._started[-KEPT_VERSIONS:]))

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return (info.is_continue_as_new_suggested()
                or info.get_current_history_length() > MAX_HISTORY_EVENTS)

    def _apply(self, usage: UsageReport) -> None:
        if not usage.authenticated and workflow.patched(TRUSTED_USAGE_REPORTS):
            workflow.logger.warning(
                "ignoring a usage report for %s from %r: it arrived unencrypted, so anyone "
                "could have sent it", self._input.key if self._input else "?",
                usage.reporter[:64])
            return
        for item in usage.counts:
            self._counts[item.version] = self._counts.get(item.version, 0) + item.encryptions
        for stale in sorted(self._counts)[:-KEPT_VERSIONS]:
            del self._counts[stale]

    async def _maybe_rotate(self, request: LedgerInput) -> None:
        current = max(self._counts, default=0)
        used = self._counts.get(current, 0)
        if current == 0 or current in self._started or used < request.rotate_at * request.budget:
            return
        self._started.append(current)
        base = request.rotation or RotateKeyInput(key=request.key, mount=request.mount)
        rotation = dataclasses.replace(base, key=request.key, mount=request.mount,
                                       reason="budget", from_version=current,
                                       min_version_age_seconds=0)
        workflow.logger.info("v%d of %s used %d of %d encryptions: starting a rotation",
                             current, request.key, used, request.budget)
        # Already started for this version (e.g. before continue-as-new): nothing to do.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                RotateTransitKey.run, rotation,
                id=budget_rotation_workflow_id(request.mount, request.key, current),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                execution_timeout=timedelta(hours=6),
                static_summary=f"budget rotation of {request.key} from v{current}")
