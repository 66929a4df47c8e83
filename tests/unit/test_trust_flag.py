"""Which values carry the ``authenticated`` flag, and what clearing it leaves alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from keyward.codec.trust import (
    AUTHENTICATED_KEY,
    is_authenticated,
    stamp,
    unstamped,
    without_stamp,
)


@dataclass(frozen=True)
class Flagged:
    name: str
    authenticated: bool = False


@dataclass(frozen=True)
class Unflagged:
    name: str


def test_clearing_the_flag_sets_it_false_on_a_flagged_dataclass() -> None:
    """A dataclass with an ``authenticated`` field gets a copy with the flag cleared."""
    assert unstamped(Flagged("x", authenticated=True)) == Flagged("x", authenticated=False)


@pytest.mark.parametrize("value", [Unflagged("x"), Flagged, "text", {"authenticated": True}, 3,
                                   None])
def test_values_without_the_flag_are_returned_unchanged(value: Any) -> None:
    """A dataclass without the field, a dataclass *class*, and non-dataclasses (even a dict
    with an ``authenticated`` key) are returned as they are."""
    assert unstamped(value) is value


def test_the_stamp_is_the_exact_value_and_strippable() -> None:
    """Only the stamp keyward writes authenticates; a copy without it is made, the
    original payload is left intact, and an unstamped payload is passed through as is."""
    payload = stamp(Payload(metadata={"encoding": b"json/plain"}, data=b"{}"))
    assert is_authenticated(payload)
    forged = Payload(metadata={AUTHENTICATED_KEY: b"true"})
    assert not is_authenticated(forged)
    clean = without_stamp(payload)
    assert AUTHENTICATED_KEY not in clean.metadata
    assert clean.data == b"{}"
    assert is_authenticated(payload)
    plain = Payload(metadata={"encoding": b"json/plain"})
    assert without_stamp(plain) is plain
