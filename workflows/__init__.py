"""Deterministic workflow code only: no I/O, no clocks, no randomness outside Temporal's APIs.

Workflow modules import the standard library, temporalio, ``keyward.contracts`` and the
pure policy (``keyward.policy``, ``keyward.vault.names``) and nothing else, the keyward
ones through ``workflow.unsafe.imports_passed_through()`` (docs/architecture.md;
``tests/test_architecture.py`` enforces both).
"""

from __future__ import annotations

from temporalio import workflow

from workflows.inspect_key import InspectTransitKey
from workflows.key_ledger import TransitKeyLedger
from workflows.renew_certificate import RenewCertificate
from workflows.rotate_ca import RotateCertificateAuthority
from workflows.rotate_key import RotateTransitKey

# Passed through, as in every workflow module: this package runs first in the sandbox, and
# a contract module it loaded there would shadow the worker's own (see inspect_key.py).
with workflow.unsafe.imports_passed_through():
    from keyward.contracts import WORKFLOWS

#: Every workflow the keyward worker hosts. A new one goes here and its contract into
#: ``keyward.contracts.WORKFLOWS``; a test holds the two lists to each other.
ALL_WORKFLOWS: tuple[type, ...] = (InspectTransitKey, RotateTransitKey, TransitKeyLedger,
                                   RenewCertificate, RotateCertificateAuthority)
#: Their Temporal type names: the only callers keyward's activities serve.
WORKFLOW_TYPES: tuple[str, ...] = tuple(contract.name for contract in WORKFLOWS)

__all__ = ["ALL_WORKFLOWS", "WORKFLOW_TYPES", "InspectTransitKey", "RenewCertificate",
           "RotateCertificateAuthority",
           "RotateTransitKey", "TransitKeyLedger"]
