"""``RotateCertificateAuthority``: replace a CA without a moment in which a live leaf is
untrusted.

plan (from the worker's settings) → stage the successor → publish old + new to every trust
bundle → soak → switch issuance → renew every leaf the CA signs (child ``RenewCertificate``
runs) → verify each leaf chains to the new CA → wait out the longest leaf lifetime + grace
→ publish the new CA alone (the old one's key stays archived).

Every step is an idempotent activity that reads where the rotation stands from the CA's
state on disk, so a resumed or repeated run converges. The input names the CA and nothing
else: what is published, and when the old CA may go, the activities decide from settings,
disk and clock. Cancelling the run at any point before the last step leaves the old CA
trusted everywhere; a second run while one is running is refused with its id.

    temporal workflow execute --type RotateCertificateAuthority --task-queue keyward \\
        --workflow-id ca-rotation/local --input '{"name": "local"}'
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.activity_calls import run_activity

with workflow.unsafe.imports_passed_through():
    from keyward.contracts import failures
    from keyward.contracts.authorities import (
        ACTIVATE_SUCCESSOR_CA,
        PLAN_CA_ROTATION,
        PUBLISH_CA_BUNDLE,
        ROTATE_CA_WORKFLOW,
        STAGE_SUCCESSOR_CA,
        VERIFY_CA_LEAVES,
        BundleRequest,
        CaRef,
        CaRotationInput,
        CaRotationResult,
    )
    from keyward.contracts.certificates import (
        RENEW_CERTIFICATE_WORKFLOW,
        RenewCertificateInput,
        RenewCertificateResult,
    )

STEP = timedelta(minutes=2)
#: Files and keys: transient failures retried with backoff, for as long as it takes.
STEP_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=5))
#: The last step is refused until the old CA may go; keep asking, not too often.
RETIRE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=10))


@workflow.defn(name=ROTATE_CA_WORKFLOW.name)
class RotateCertificateAuthority:
    @workflow.run
    async def run(self, request: CaRotationInput) -> CaRotationResult:
        ref = CaRef(request.name)
        plan = await run_activity(PLAN_CA_ROTATION, ref, start_to_close_timeout=STEP,
                                  retry_policy=STEP_RETRY,
                                  summary=f"read CA {request.name}'s settings and state")
        old = plan.previous.fingerprint if plan.previous is not None \
            else plan.active.fingerprint
        self._show(request.name, "1/6 staging the successor CA", old=old)
        staged = await run_activity(
            STAGE_SUCCESSOR_CA, ref, start_to_close_timeout=STEP, retry_policy=STEP_RETRY,
            summary=f"make (or reuse) CA {request.name}'s successor")
        self._show(request.name, "2/6 publishing the old + new bundle", old=old,
                   new=staged.fingerprint)
        published = await run_activity(
            PUBLISH_CA_BUNDLE, BundleRequest(request.name, "overlap"),
            start_to_close_timeout=STEP, retry_policy=STEP_RETRY,
            summary=f"publish old + new CA to {request.name}'s trust bundles")
        if plan.switched_at is None:
            until = workflow.now() + timedelta(seconds=plan.soak_seconds)
            self._show(request.name, f"3/6 soaking: {len(published.trust_points)} bundle(s) "
                       f"hold both CAs; issuance switches at {until.isoformat()}", old=old,
                       new=staged.fingerprint)
            await workflow.sleep(timedelta(seconds=plan.soak_seconds))
        await run_activity(ACTIVATE_SUCCESSOR_CA, ref, start_to_close_timeout=STEP,
                           retry_policy=STEP_RETRY,
                           summary=f"switch {request.name}'s issuance to the successor")
        switched = plan.switched_at or workflow.now()
        self._show(request.name, f"4/6 renewing {len(plan.leaves)} leaf certificate(s) from "
                   "the new CA", old=old, new=staged.fingerprint)
        for leaf in plan.leaves:
            await workflow.execute_child_workflow(
                RENEW_CERTIFICATE_WORKFLOW.name, RenewCertificateInput(leaf, force=True),
                id=f"{workflow.info().workflow_id}/renew/{leaf}",
                result_type=RenewCertificateResult)
        self._show(request.name, "5/6 verifying every leaf chains to the new CA", old=old,
                   new=staged.fingerprint)
        verified = await run_activity(VERIFY_CA_LEAVES, ref, start_to_close_timeout=STEP,
                                      retry_policy=STEP_RETRY,
                                      summary=f"check {request.name}'s leaves")
        if not verified.all_good:
            stale = "; ".join(f"{c.certificate}: {c.detail}" for c in verified.checks
                              if not c.chains_to_active)
            raise ApplicationError(f"leaves do not chain to the new CA ({stale}); the old CA "
                                   "stays trusted", type=failures.CA_ROTATION_REFUSED,
                                   non_retryable=True)
        retire = switched + timedelta(seconds=plan.retire_after_seconds)
        self._show(request.name, f"6/6 old CA trusted until {retire.isoformat()} (longest "
                   "leaf lifetime + grace)", old=old, new=staged.fingerprint)
        wait = retire - workflow.now()
        if wait > timedelta(0):
            await workflow.sleep(wait)
        await run_activity(PUBLISH_CA_BUNDLE, BundleRequest(request.name, "final"),
                           start_to_close_timeout=STEP, retry_policy=RETIRE_RETRY,
                           summary=f"remove the old CA from {request.name}'s trust bundles")
        result = CaRotationResult(name=request.name, old=old, new=staged.fingerprint,
                                  leaves_renewed=plan.leaves, retired_at=workflow.now())
        self._show(request.name, "done: the new CA alone is trusted; the old CA's key is "
                   "archived", old=old, new=staged.fingerprint)
        return result

    def _show(self, name: str, phase: str, *, old: str, new: str | None = None) -> None:
        """What the Web UI shows: the phase as current details, both CAs in the memo."""
        workflow.set_current_details(f"CA {name}: {phase}")
        workflow.upsert_memo({"certificate_authority": name, "phase": phase,
                              "old_ca": old[:16], "new_ca": new[:16] if new else None})
