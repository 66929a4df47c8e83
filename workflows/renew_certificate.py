"""``RenewCertificate``: keep one named certificate (from the settings) renewed.

inspect what is installed → renew only inside the renewal window (a third of the
lifetime left by default, with a per-certificate jitter) or when what is installed
is unusable → issue, validate and install in one activity (the private key never
enters Temporal) → optionally verify with a TLS handshake → result. Idempotent:
a run outside the window changes nothing.

    temporal workflow execute --type RenewCertificate --task-queue keyward \\
        --input '{"name": "worker"}'
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
    from keyward.contracts.certificates import (
        INSPECT_CERTIFICATE,
        ISSUE_AND_INSTALL_CERTIFICATE,
        RENEW_CERTIFICATE_WORKFLOW,
        VERIFY_CERTIFICATE_SERVED,
        CertificateRef,
        InstalledCertificate,
        RenewCertificateInput,
        RenewCertificateResult,
        VerifyRequest,
    )
    from keyward.policy.renewal import DEFAULT_RENEW_FRACTION, renewal_decision

#: Issuers may be briefly unreachable: keep trying with backoff; the old pair stays in place.
ISSUER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                           maximum_interval=timedelta(minutes=2))
QUICK = timedelta(seconds=30)
#: Patch id: the default renewal window is a third of the configured lifetime.
WINDOW_FROM_CONFIGURED_LIFETIME = "renew-window-from-configured-lifetime"


@workflow.defn(name=RENEW_CERTIFICATE_WORKFLOW.name)
class RenewCertificate:
    @workflow.run
    async def run(self, request: RenewCertificateInput) -> RenewCertificateResult:
        ref = CertificateRef(request.name)
        installed = await run_activity(
            INSPECT_CERTIFICATE, ref, start_to_close_timeout=QUICK,
            retry_policy=ISSUER_RETRY, summary=f"inspect installed certificate {request.name}")
        reason, renew, critical = self._decide(request, installed)
        if critical:
            workflow.logger.error("certificate %s is close to expiry: %s", request.name, reason)
            workflow.metric_meter().create_counter(
                "keyward_certificate_critical", "checks that found a certificate near expiry",
            ).add(1, {"certificate": request.name})
        if not renew:
            return self._finish(RenewCertificateResult(
                name=request.name, renewed=False, serial=installed.serial,
                not_after=installed.not_after, reason=reason, critical=critical))

        renewed = await run_activity(
            ISSUE_AND_INSTALL_CERTIFICATE, ref,
            # cert-manager may take a couple of minutes to sign; the activity heartbeats after.
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=ISSUER_RETRY, summary=f"issue, validate and install {request.name}")
        verified = await run_activity(
            VERIFY_CERTIFICATE_SERVED, VerifyRequest(request.name, renewed.serial),
            start_to_close_timeout=QUICK,
            retry_policy=RetryPolicy(maximum_attempts=5, maximum_interval=timedelta(seconds=10)),
            summary=f"verify {request.name} with a TLS handshake")
        return self._finish(RenewCertificateResult(
            name=request.name, renewed=True, serial=renewed.serial,
            not_after=renewed.not_after,
            reason=f"{reason}; serial {renewed.serial} from {renewed.issuer}; {verified}"))

    def _decide(self, request: RenewCertificateInput,
                installed: InstalledCertificate) -> tuple[str, bool, bool]:
        if installed.problem:
            return f"installed certificate unusable ({installed.problem}): replacing", True, True
        if not installed.present or installed.not_before is None or installed.not_after is None:
            return "nothing installed yet: issuing", True, False
        renew_before = _delta(installed.renew_before_seconds)
        if renew_before is None and workflow.patched(WINDOW_FROM_CONFIGURED_LIFETIME):
            # A third of the lifetime asked for, not of not_after - not_before: issuers
            # backdate not_before for clock skew (a minute here), which would otherwise pull
            # a short-lived certificate's renewal far earlier than 2/3 of its life.
            renew_before = timedelta(seconds=installed.lifetime_seconds) * DEFAULT_RENEW_FRACTION
        decision = renewal_decision(
            not_before=installed.not_before, not_after=installed.not_after,
            now=workflow.now(), seed=installed.serial or request.name,
            renew_before=renew_before,
            critical_below=_delta(installed.critical_seconds))
        if request.force and not decision.renew:
            return f"forced ({decision.reason})", True, decision.critical
        return decision.reason, decision.renew, decision.critical

    def _finish(self, result: RenewCertificateResult) -> RenewCertificateResult:
        outcome = f"renewed, serial {result.serial}" if result.renewed else "not renewed"
        workflow.upsert_memo({"certificate": result.name, "outcome": outcome,
                              "not_after": result.not_after.isoformat()
                              if result.not_after else None})
        workflow.set_current_details(f"{result.name}: {outcome}. {result.reason}")
        return result


def _delta(seconds: int | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)
