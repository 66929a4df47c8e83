"""A trivial workflow for bench/reload.py and tests/reload, in its own module so the
sandbox imports only temporalio (not pytest or the test's fixtures) when it loads it."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow


@dataclass(frozen=True)
class PingInput:
    sequence: int


@dataclass(frozen=True)
class PingOutput:
    sequence: int


@workflow.defn
class PingWorkflow:
    """Returns its input: the tests measure the connection, not the workflow."""

    @workflow.run
    async def run(self, request: PingInput) -> PingOutput:
        return PingOutput(sequence=request.sequence)
