"""Deterministic workflow code only: no I/O, no clocks, no randomness outside Temporal's APIs."""

from __future__ import annotations

from workflows.inspect_key import InspectTransitKey
from workflows.key_ledger import TransitKeyLedger
from workflows.renew_certificate import RenewCertificate
from workflows.rotate_key import RotateTransitKey

#: Every workflow the keyward worker hosts. Add new ones here and nowhere else.
ALL_WORKFLOWS: tuple[type, ...] = (InspectTransitKey, RotateTransitKey, TransitKeyLedger,
                                   RenewCertificate)
#: Their Temporal type names: the only callers keyward's activities serve.
WORKFLOW_TYPES: tuple[str, ...] = ("InspectTransitKey", "RotateTransitKey", "TransitKeyLedger",
                                   "RenewCertificate")

__all__ = ["ALL_WORKFLOWS", "WORKFLOW_TYPES", "InspectTransitKey", "RenewCertificate",
           "RotateTransitKey", "TransitKeyLedger"]
