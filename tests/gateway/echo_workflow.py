"""A trivial workflow for the gateway tests, in its own module so the sandbox imports
only temporalio (not pytest or the test's fixtures) when it loads it."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow


@dataclass(frozen=True)
class EchoInput:
    text: str


@dataclass(frozen=True)
class EchoOutput:
    text: str


@workflow.defn
class EchoWorkflow:
    """Returns its input: anything more would test Temporal, not the gateway."""

    @workflow.run
    async def run(self, request: EchoInput) -> EchoOutput:
        return EchoOutput(text=request.text)
