"""CA rotation: the ``RotateCertificateAuthority`` workflow and its activities.

Every input names a CA by its settings name and nothing more: what to publish, when the
old CA may leave the bundles and where its key is archived come from the worker's settings
and the rotation's state on disk, never from a workflow's input (anyone who can start a
workflow could otherwise withdraw trust early).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from keyward.contracts.contract import ActivityContract, WorkflowContract

#: "overlap": the active CA and the other one of the rotation (staged or replaced);
#: "final": the active CA alone, refused until the old one may go (see the activity).
BundlePhase = Literal["overlap", "final"]


@dataclass(frozen=True)
class CaRef:
    name: str


@dataclass(frozen=True)
class CaRotationInput:
    name: str


@dataclass(frozen=True)
class CaSummary:
    """A CA certificate's public facts (never its key)."""

    fingerprint: str
    subject: str
    not_after: datetime


@dataclass(frozen=True)
class CaRotationPlan:
    """What the worker's settings say about one CA's rotation, and where it stands."""

    name: str
    active: CaSummary
    #: The certificates the CA signs (their local-ca issuer names its files).
    leaves: tuple[str, ...]
    soak_seconds: float
    #: From the switch until the old CA may leave the bundles: the longest leaf lifetime
    #: plus the grace.
    retire_after_seconds: float
    #: A successor already staged (a resumed rotation), else None.
    staged: CaSummary | None = None
    #: The CA the active one replaced, while it is still trusted, else None.
    previous: CaSummary | None = None
    switched_at: datetime | None = None


@dataclass(frozen=True)
class BundleRequest:
    name: str
    phase: BundlePhase


@dataclass(frozen=True)
class BundlePublished:
    fingerprints: tuple[str, ...]
    #: Trust points written ("unchanged" ones too: a rerun changes nothing).
    trust_points: tuple[str, ...] = field(default_factory=tuple)
    changed: int = 0


@dataclass(frozen=True)
class LeafCheck:
    certificate: str
    serial: str | None
    chains_to_active: bool
    detail: str


@dataclass(frozen=True)
class LeavesVerified:
    checks: tuple[LeafCheck, ...]

    @property
    def all_good(self) -> bool:
        return all(check.chains_to_active for check in self.checks)


@dataclass(frozen=True)
class CaRotationResult:
    name: str
    old: str
    new: str
    leaves_renewed: tuple[str, ...]
    retired_at: datetime


PLAN_CA_ROTATION = ActivityContract("PlanCaRotation", CaRef, CaRotationPlan)
#: Make the successor CA (idempotent: a staged one is kept) and claim the rotation.
STAGE_SUCCESSOR_CA = ActivityContract("StageSuccessorCa", CaRef, CaSummary)
PUBLISH_CA_BUNDLE = ActivityContract("PublishCaBundle", BundleRequest, BundlePublished)
#: Switch issuance to the successor (refused until every bundle holds it).
ACTIVATE_SUCCESSOR_CA = ActivityContract("ActivateSuccessorCa", CaRef, CaSummary)
VERIFY_CA_LEAVES = ActivityContract("VerifyCaLeaves", CaRef, LeavesVerified)

ROTATE_CA_WORKFLOW = WorkflowContract("RotateCertificateAuthority", CaRotationInput,
                                      CaRotationResult)
