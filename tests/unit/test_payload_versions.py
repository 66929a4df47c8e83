"""The payload walk and the key versions it reads, without decrypting anything."""

from __future__ import annotations

from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.nexus.v1 import Request, StartOperationRequest

from keyward.temporal.payload_versions import (
    iter_payloads,
    key_version,
    key_versions,
    stale_payloads,
)


def encrypted(key: str, version: str) -> Payload:
    return Payload(metadata={"encoding": b"binary/encrypted", "keyward-format": b"1",
                             "keyward-key": key.encode(), "keyward-key-version": version.encode(),
                             "keyward-scheme": b"direct", "keyward-compression": b"none"})


def test_a_payload_is_its_own_only_payload() -> None:
    """A Payload yields itself and nothing inside it."""
    payload = encrypted("k", "1")
    assert list(iter_payloads(payload)) == [payload]


def test_key_version_reads_only_the_named_keys_well_formed_payloads() -> None:
    """The version of the named key; None for another key, plain or malformed payloads."""
    assert key_version(encrypted("k", "4"), "k") == 4
    assert key_version(encrypted("other", "4"), "k") is None
    assert key_version(encrypted("k", "04"), "k") is None
    assert key_version(Payload(metadata={"encoding": b"json/plain"}, data=b"1"), "k") is None


def test_the_walk_covers_fields_after_a_skipped_one() -> None:
    """Scalar fields and maps of scalars are skipped, and the fields after them still walked."""
    event = HistoryEvent(event_id=3)
    started = event.workflow_execution_started_event_attributes
    started.workflow_type.name = "W"
    started.attempt = 2
    started.input.payloads.add().CopyFrom(encrypted("k", "2"))
    started.input.payloads.add().CopyFrom(encrypted("k", "3"))
    started.memo.fields["m"].CopyFrom(encrypted("k", "5"))
    assert [key_version(p, "k") for p in iter_payloads(event)] == [2, 3, 5]
    assert key_versions(event, "k") == {2, 3, 5}


def test_stale_payloads_are_those_below_the_latest_version() -> None:
    """Payloads under an older version of the key are stale; the latest, newer ones, other
    keys and plain payloads are not; the returned payloads are the message's own."""
    event = HistoryEvent()
    payloads = event.workflow_execution_started_event_attributes.input.payloads
    for key, version in (("k", "1"), ("k", "3"), ("k", "4"), ("other", "1")):
        payloads.add().CopyFrom(encrypted(key, version))
    payloads.add().CopyFrom(Payload(metadata={"encoding": b"json/plain"}))
    stale = stale_payloads(event, "k", 3)
    assert [key_version(p, "k") for p in stale] == [1]
    assert stale[0] is not None
    stale[0].data = b"rewritten"
    assert payloads[0].data == b"rewritten"


def test_a_map_of_strings_does_not_end_the_walk() -> None:
    """A map whose values are not messages (a Nexus request's string headers) is skipped,
    and the payload in a later field is still found."""
    request = Request(header={"k": "v"},
                      start_operation=StartOperationRequest(payload=encrypted("k", "6")))
    assert key_versions(request, "k") == {6}
