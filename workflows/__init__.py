"""Deterministic workflow code only: no I/O, no clocks, no randomness outside Temporal's APIs."""

from __future__ import annotations

from workflows.inspect_key import InspectTransitKey

#: Every workflow the keyward worker hosts. Add new ones here and nowhere else.
ALL_WORKFLOWS: tuple[type, ...] = (InspectTransitKey,)

__all__ = ["ALL_WORKFLOWS", "InspectTransitKey"]
