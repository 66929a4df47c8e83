"""``RotateTransitKey``: rotate one Vault Transit key, once per trigger, and retire old
versions only when Temporal can no longer hold their payloads.

Steps: read the key → skip if this trigger's rotation already happened → rotate
(compare-and-rotate, so a retried activity does not rotate twice) → check the
version advanced → maybe raise the decryption floor → result. The Web UI shows
the key, versions and outcome in the memo, the current details and the
activity summaries.

Run it by hand with ``starter.py rotate-key KEY``, or through the codec server so the
CLI encrypts the input (a plain-JSON input is refused, see below)::

    temporal workflow execute --type RotateTransitKey --task-queue keyward \\
        --input '{"key": "default"}' --codec-endpoint <codec server>

The input is untrusted: anyone who can start a workflow can send one. So it must have
been encrypted (``authenticated``, set by the worker's converter), its key name must be a
Vault name, and it only chooses *which* key and *why*: the mount, the namespaces checked,
the buffers, whether to raise the floor and whether to trim always come from the worker's
own settings (``ResolveRotationInput``), because they decide what becomes unreadable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from workflows.activity_calls import run_activity

# Passed through the sandbox: the worker's own contract classes and pure policy, loaded
# once. Needed, not only faster: the sandbox swaps in a restricted ``datetime``, and a
# contract imported inside it has datetime fields the payload converter cannot fill.
with workflow.unsafe.imports_passed_through():
    from keyward.contracts import failures
    from keyward.contracts.history import (
        DESCRIBE_HISTORY_WINDOW,
        REWRAP_SCHEDULE_INPUTS,
        HistoryWindowRequest,
        RewrapSchedulesRequest,
    )
    from keyward.contracts.rotation import (
        RESOLVE_ROTATION_INPUT,
        ROTATE_TRANSIT_KEY_WORKFLOW,
        RotateKeyInput,
        RotateKeyResult,
    )
    from keyward.contracts.transit import (
        READ_TRANSIT_KEY,
        ROTATE_TRANSIT_KEY,
        SET_DECRYPTION_FLOOR,
        FloorRequest,
        ReadKeyInput,
        RotateRequest,
        TransitKeyInfo,
    )
    from keyward.policy.retention import FloorDecision, RetentionError, decryption_floor
    from keyward.vault.names import InvalidVaultName, check_key_name

#: Vault calls: keep retrying while Vault is unreachable (the workflow waits it out);
#: permanent errors are non-retryable ApplicationErrors and fail at once.
VAULT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                          maximum_interval=timedelta(minutes=1))
ACTIVITY_TIMEOUT = timedelta(seconds=30)
#: Patch id: inputs without settings_from="input" are filled in from the worker settings.
RESOLVE_FROM_WORKER_SETTINGS = "rotation-input-from-worker-settings"
#: Patch id: the input must be authenticated and name a valid key, and every protective
#: setting comes from the worker whatever ``settings_from`` says (issue 12).
TRUSTED_ROTATION_INPUT = "rotation-input-trust-boundary"
#: How to start this workflow so that its input is encrypted (shown when it was not).
HOW_TO_START = ("start it with `starter.py rotate-key KEY`, or with `temporal workflow execute "
                "--type RotateTransitKey ... --codec-endpoint <codec server>` so the CLI "
                "encrypts the input")


def skip_reason(request: RotateKeyInput, info: TransitKeyInfo, now: datetime) -> str | None:
    """Why this trigger must not rotate (None: rotate). Pure, so it is unit-testable."""
    if request.from_version is not None and info.latest_version > request.from_version:
        return (f"already rotated past v{request.from_version} "
                f"(latest is v{info.latest_version})")
    if request.min_version_age_seconds > 0:
        created = info.version_created.get(info.latest_version)
        if created is not None:
            age = now.timestamp() - created
            if age < request.min_version_age_seconds:
                return (f"v{info.latest_version} is only {int(age)} s old "
                        f"(< {request.min_version_age_seconds} s): a rotation for this "
                        "period already happened")
    return None


@workflow.defn(name=ROTATE_TRANSIT_KEY_WORKFLOW.name)
class RotateTransitKey:
    @workflow.run
    async def run(self, request: RotateKeyInput) -> RotateKeyResult:
        if workflow.patched(TRUSTED_ROTATION_INPUT):
            _check_trusted(request)
            request = await self._resolve(request)
        elif request.settings_from != "input" and workflow.patched(RESOLVE_FROM_WORKER_SETTINGS):
            request = await self._resolve(request)
        name = f"{request.mount}/{request.key}"
        workflow.set_current_details(f"Rotating {name} ({request.reason})")
        before = await self._read(request, f"read {name}")
        skipped = skip_reason(request, before, workflow.now())
        after = before
        rotated_at: datetime | None = None
        if skipped is None:
            after = await run_activity(
                ROTATE_TRANSIT_KEY,
                RotateRequest(request.key, request.mount, before.latest_version),
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VAULT_RETRY,
                summary=f"rotate {name} from v{before.latest_version}")
            if after.latest_version <= before.latest_version:
                raise ApplicationError(
                    f"Vault reports {name} still at v{after.latest_version} after rotating "
                    f"from v{before.latest_version}", type=failures.ROTATION_NOT_VERIFIED,
                    non_retryable=True)
            rotated_at = workflow.now()

        decision = await self._maybe_raise_floor(request, after)
        result = RotateKeyResult(
            key=request.key, reason=request.reason, rotated=skipped is None,
            old_version=before.latest_version, new_version=after.latest_version,
            rotated_at=rotated_at, skipped_because=skipped,
            decryption_floor=decision.new_floor, floor_explanation=decision.reason)
        outcome = (f"v{result.old_version} → v{result.new_version}" if result.rotated
                   else f"skipped: {skipped}")
        workflow.upsert_memo({"key": name, "outcome": outcome, "reason": request.reason,
                              "decryption_floor": decision.new_floor})
        workflow.set_current_details(f"{name}: {outcome}; floor v{decision.new_floor} "
                                     f"({decision.reason})")
        workflow.logger.info("rotation of %s finished: %s", name, outcome)
        return result

    async def _resolve(self, request: RotateKeyInput) -> RotateKeyInput:
        return await run_activity(
            RESOLVE_ROTATION_INPUT, request, start_to_close_timeout=ACTIVITY_TIMEOUT,
            summary=f"take {request.key}'s rotation settings from the worker")

    async def _read(self, request: RotateKeyInput, summary: str) -> TransitKeyInfo:
        return await run_activity(
            READ_TRANSIT_KEY, ReadKeyInput(request.key, request.mount),
            start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VAULT_RETRY, summary=summary)

    async def _maybe_raise_floor(self, request: RotateKeyInput,
                                 info: TransitKeyInfo) -> FloorDecision:
        floor = info.min_decryption_version
        if not request.raise_decryption_floor or floor >= info.latest_version:
            why = ("floor changes are off" if not request.raise_decryption_floor
                   else "only the latest version is decryptable")
            return FloorDecision(current_floor=floor, new_floor=floor, retired=(), reason=why)
        namespaces = request.namespaces or [workflow.info().namespace]
        # Schedules keep their encrypted input forever: move it to the latest version first,
        # or it would hold every older version alive.
        await run_activity(
            REWRAP_SCHEDULE_INPUTS,
            RewrapSchedulesRequest(namespaces=namespaces, key=request.key,
                                   latest_version=info.latest_version),
            start_to_close_timeout=timedelta(minutes=5), heartbeat_timeout=timedelta(minutes=1),
            retry_policy=VAULT_RETRY, summary="re-encrypt schedule inputs under the new version")
        grace = timedelta(seconds=request.encryption_grace_seconds)
        thresholds = [_created(info, version + 1) + grace
                      for version in range(floor, info.latest_version)]
        # Reads the start event of every execution still present (bounded by the worker's
        # rotation.history_scan_limit), so it may take a while on a busy namespace.
        window = await run_activity(
            DESCRIBE_HISTORY_WINDOW,
            HistoryWindowRequest(namespaces=namespaces, thresholds=thresholds, key=request.key,
                                 from_version=floor),
            start_to_close_timeout=timedelta(minutes=30), heartbeat_timeout=timedelta(minutes=2),
            retry_policy=VAULT_RETRY,
            summary="ask Temporal which old payloads it may still hold")
        if window.incomplete is not None:
            return FloorDecision(current_floor=floor, new_floor=floor, retired=(),
                                 reason=f"v{floor} kept: {window.incomplete}")
        try:
            decision = decryption_floor(
                version_created={v: _created(info, v) for v in info.version_created},
                latest_version=info.latest_version, current_floor=floor, now=workflow.now(),
                retention=timedelta(seconds=window.retention_seconds),
                # A run that encrypted with a cached data key up to `grace` after the
                # rotation and then closed stays in Temporal for `retention` after that.
                buffer=timedelta(seconds=request.retention_buffer_seconds) + grace,
                encryption_grace=grace, oldest_execution_start=window.oldest_execution_start,
                # Retry attempts and cron runs carry their first input whatever their start
                # time says, and schedules what they were last written with.
                oldest_version_in_use=window.oldest_version_in_use,
                version_in_use_by=window.version_in_use_by)
        except RetentionError as exc:
            # Bad input cannot get better by retrying the workflow task.
            raise ApplicationError(f"cannot decide the decryption floor: {exc}",
                                   type=failures.INVALID_FLOOR_INPUT, non_retryable=True) from exc
        if decision.new_floor > floor:
            await run_activity(
                SET_DECRYPTION_FLOOR,
                FloorRequest(request.key, request.mount, decision.new_floor,
                             trim=request.trim_archived_versions),
                start_to_close_timeout=ACTIVITY_TIMEOUT, retry_policy=VAULT_RETRY,
                summary=f"raise decryption floor of {request.mount}/{request.key} to "
                        f"v{decision.new_floor}")
        return decision


def _check_trusted(request: RotateKeyInput) -> None:
    """Refuse, before any Vault call, what an untrusted caller could have sent.

    Both failures are permanent (retrying the workflow task cannot change the input), so
    they are non-retryable and the run fails at once with a message saying what to do.
    """
    if not request.authenticated:
        raise ApplicationError(
            f"refusing to rotate {str(request.key)[:64]!a}: the input arrived "
            f"unencrypted, and anyone who can start a workflow can send plain JSON; "
            f"{HOW_TO_START}",
            type=failures.UNAUTHENTICATED_INPUT, non_retryable=True)
    try:
        check_key_name(request.key)
    except InvalidVaultName as exc:
        raise ApplicationError(f"refusing to rotate: {exc}", type=failures.INVALID_KEY_NAME,
                               non_retryable=True) from exc


def _created(info: TransitKeyInfo, version: int) -> datetime:
    return datetime.fromtimestamp(info.version_created[version], tz=UTC)
