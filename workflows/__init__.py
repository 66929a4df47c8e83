"""Deterministic workflow code only: no I/O, no clocks, no randomness outside Temporal's APIs.

Workflow modules import the standard library, temporalio, ``keyward.contracts`` and the
pure policy (``keyward.policy``, ``keyward.vault.names``) and nothing else
(docs/architecture.md; ``tests/test_architecture.py`` enforces it).
"""

from __future__ import annotations

from keyward.contracts import WORKFLOWS
from workflows.inspect_key import InspectTransitKey
from workflows.key_ledger import TransitKeyLedger
from workflows.renew_certificate import RenewCertificate
from workflows.rotate_key import RotateTransitKey

#: Every workflow the keyward worker hosts. A new one goes here and its contract into
#: ``keyward.contracts.WORKFLOWS``; a test holds the two lists to each other.
ALL_WORKFLOWS: tuple[type, ...] = (InspectTransitKey, RotateTransitKey, TransitKeyLedger,
                                   RenewCertificate)
#: Their Temporal type names: the only callers keyward's activities serve.
WORKFLOW_TYPES: tuple[str, ...] = tuple(contract.name for contract in WORKFLOWS)

__all__ = ["ALL_WORKFLOWS", "WORKFLOW_TYPES", "InspectTransitKey", "RenewCertificate",
           "RotateTransitKey", "TransitKeyLedger"]
