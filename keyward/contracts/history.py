"""What Temporal still holds: the history window the decryption floor waits for, and the
re-encryption of schedule inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from keyward.contracts.contract import ActivityContract


@dataclass(frozen=True)
class HistoryWindowRequest:
    #: Every namespace whose payloads use the key.
    namespaces: list[str]
    #: Candidate thresholds, ascending: "is any execution that started before T still here?"
    thresholds: list[datetime] = field(default_factory=list)
    #: The Transit key whose versions the payloads still present are checked for.
    key: str = ""
    #: Versions below this (the current floor) are not reported: nothing decrypts them.
    from_version: int = 1


@dataclass(frozen=True)
class HistoryWindow:
    #: The longest retention among the namespaces.
    retention_seconds: int
    #: Start time of an execution still present that started before the lowest blocked
    #: threshold (None: no threshold is blocked), and where it lives, for the explanation.
    oldest_execution_start: datetime | None = None
    oldest_execution: str | None = None
    #: The lowest version of the key (at or above ``from_version``) that a payload still
    #: present is encrypted under, and which execution or schedule carries it.
    oldest_version_in_use: int | None = None
    version_in_use_by: str | None = None
    #: Why not everything could be checked (None: all was); when set, the floor stays.
    incomplete: str | None = None


@dataclass(frozen=True)
class RewrapSchedulesRequest:
    namespaces: list[str]
    key: str
    latest_version: int


@dataclass(frozen=True)
class RewrapSchedulesResult:
    #: "namespace/schedule-id" of every schedule whose stored payloads were re-encrypted.
    updated: list[str]


DESCRIBE_HISTORY_WINDOW = ActivityContract("DescribeHistoryWindow", HistoryWindowRequest,
                                           HistoryWindow)
REWRAP_SCHEDULE_INPUTS = ActivityContract("RewrapScheduleInputs", RewrapSchedulesRequest,
                                          RewrapSchedulesResult)
