"""The ``TransitKeyLedger`` workflow: its input, the usage reports it is signalled with,
and the state its query answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from keyward.contracts.contract import QueryContract, SignalContract, WorkflowContract
from keyward.contracts.rotation import RotateKeyInput


@dataclass(frozen=True)
class VersionCount:
    version: int
    encryptions: int


@dataclass(frozen=True)
class UsageReport:
    reporter: str
    counts: list[VersionCount]
    #: Set by the worker's converter: True only when the report arrived encrypted (the
    #: worker's UsageReporter encrypts). What the JSON says is ignored.
    authenticated: bool = False


@dataclass(frozen=True)
class LedgerInput:
    key: str
    mount: str = "transit"
    #: Encryptions allowed per version (2^32 * safety factor).
    budget: int = 2**31
    rotate_at: float = 0.9
    #: Passed on to the rotations the ledger starts.
    rotation: RotateKeyInput | None = None
    #: Carried across continue-as-new.
    counts: dict[int, int] = field(default_factory=dict)
    rotations_started: list[int] = field(default_factory=list)
    #: Set by the worker's converter: True only when this input arrived encrypted (the
    #: UsageReporter's signal-with-start, the ledger's own continue-as-new). What the JSON
    #: says is ignored.
    authenticated: bool = False


@dataclass(frozen=True)
class LedgerState:
    key: str
    budget: int
    counts: dict[int, int]
    current_version: int
    used_fraction: float
    rotations_started: list[int]


#: Runs until continued-as-new; it never returns a result.
TRANSIT_KEY_LEDGER_WORKFLOW = WorkflowContract("TransitKeyLedger", LedgerInput, type(None))
#: A process's encryption counts since its last report (signal-with-start creates the ledger).
REPORT_SIGNAL = SignalContract("report", UsageReport)
USAGE_QUERY = QueryContract("usage", LedgerState)
