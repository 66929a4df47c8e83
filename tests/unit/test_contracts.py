"""Every activity and workflow keyward registers is the one its contract describes.

Workflows call activities by the contract alone (name and result type), so a contract
that drifted from its implementation would only show at run time, in a failed activity:
these tests hold the two together — names, argument types and result types, both ways.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hvac
import pytest
from temporalio import activity, workflow
from temporalio.converter import DataConverter

from activities import build_activities
from keyward.codec.trust import TrustStampingPayloadConverter, stamp
from keyward.config import Settings
from keyward.config.cloud import CloudSettings
from keyward.contracts import ACTIVITIES, CLOUD_ACTIVITIES, WORKFLOWS
from keyward.contracts.cloud import AddClientCAInput, SetCodecServerInput
from keyward.contracts.contract import ActivityContract
from keyward.contracts.ledger import (
    REPORT_SIGNAL,
    USAGE_QUERY,
    LedgerInput,
    UsageReport,
    VersionCount,
)
from keyward.contracts.rotation import RotateKeyInput
from workflows import ALL_WORKFLOWS, WORKFLOW_TYPES
from workflows.key_ledger import TransitKeyLedger

#: Settings that make the worker register every activity: the Cloud namespace ones need
#: cloud.api_key_file (settings built in code name files that need not exist).
WITH_CLOUD = Settings(cloud=CloudSettings(api_key_file=Path("/nonexistent/cloud-api-key")))


def registered(settings: Settings = WITH_CLOUD) -> list[Callable[..., Any]]:
    # Building the activities connects nothing: the clients are only held (the Cloud Ops
    # client is not even made, nor its key file read, before the first call).
    return build_activities(vault=hvac.Client(url="http://127.0.0.1:1"), settings=settings)


def activity_name(fn: Callable[..., Any]) -> str | None:
    # temporalio has no public accessor for an activity's definition; the worker reads this.
    return activity._Definition.must_from_callable(fn).name


def annotations(fn: Callable[..., Any]) -> tuple[list[Any], Any]:
    """Parameter and return annotations, evaluated (the modules use string annotations)."""
    signature = inspect.signature(fn, eval_str=True)
    result = signature.return_annotation
    return ([p.annotation for p in signature.parameters.values()],
            type(None) if result is None else result)


def test_every_activity_contract_has_exactly_one_registered_activity() -> None:
    """Each contract's name is registered once, and nothing is registered without one."""
    names = Counter(activity_name(fn) for fn in registered())
    assert all(count == 1 for count in names.values()), names
    assert set(names) == {contract.name for contract in ACTIVITIES}
    assert len(ACTIVITIES) == len({contract.name for contract in ACTIVITIES})


def test_the_cloud_namespace_activities_are_registered_only_with_a_cloud_api_key() -> None:
    """Without cloud.api_key_file the worker does not answer to their names at all."""
    without = {activity_name(fn) for fn in registered(Settings())}
    cloud = {contract.name for contract in CLOUD_ACTIVITIES}
    assert without == {contract.name for contract in ACTIVITIES} - cloud
    assert cloud <= {activity_name(fn) for fn in registered()}
    assert set(CLOUD_ACTIVITIES) <= set(ACTIVITIES)


def test_every_registered_activity_takes_and_returns_its_contract_types() -> None:
    """One argument of the contract's type in, the contract's result type out."""
    contracts: dict[str, ActivityContract[Any, Any]] = {c.name: c for c in ACTIVITIES}
    for fn in registered():
        contract = contracts[str(activity_name(fn))]
        assert annotations(fn) == ([contract.arg_type], contract.result_type), contract.name


def test_every_workflow_is_the_one_its_contract_names() -> None:
    """Same workflows, same order, same names, argument and result types."""
    assert len(ALL_WORKFLOWS) == len(WORKFLOWS)
    for cls, contract in zip(ALL_WORKFLOWS, WORKFLOWS, strict=True):
        definition = workflow._Definition.must_from_class(cls)
        assert definition.name == contract.name
        params, result = annotations(definition.run_fn)
        assert (params[1:], result) == ([contract.arg_type], contract.result_type), cls
    assert tuple(contract.name for contract in WORKFLOWS) == WORKFLOW_TYPES


def test_the_ledger_signal_and_query_match_their_contracts() -> None:
    definition = workflow._Definition.must_from_class(TransitKeyLedger)
    signal = definition.signals[REPORT_SIGNAL.name]
    assert annotations(signal.fn)[0][1:] == [REPORT_SIGNAL.arg_type]
    query = definition.queries[USAGE_QUERY.name]
    assert annotations(query.fn)[1] == USAGE_QUERY.result_type


def test_a_key_alone_still_makes_a_rotation_and_a_ledger_input() -> None:
    """``--input '{"key": "payments"}'`` keeps working (every other field has a default) and
    the field names are the recorded ones."""
    converter = DataConverter.default.payload_converter
    rotation, ledger = converter.from_payloads(converter.to_payloads([{"key": "payments"}] * 2),
                                               [RotateKeyInput, LedgerInput])
    assert (rotation, ledger) == (RotateKeyInput(key="payments"), LedgerInput(key="payments"))
    assert [f.name for f in dataclasses.fields(RotateKeyInput)] == [
        "key", "mount", "reason", "from_version", "min_version_age_seconds",
        "raise_decryption_floor", "namespaces", "retention_buffer_seconds",
        "encryption_grace_seconds", "trim_archived_versions", "settings_from",
        "authenticated"]
    report = json.loads(converter.to_payloads([UsageReport("w", [VersionCount(2, 5)])])[0].data)
    assert report == {"reporter": "w", "counts": [{"version": 2, "encryptions": 5}],
                      "authenticated": False}


#: The fields without defaults of the inputs below that have more than a ``key``.
_REQUIRED_FIELDS: dict[type[Any], dict[str, Any]] = {
    UsageReport: {"reporter": "w", "counts": []},
    AddClientCAInput: {"namespace": "orders.a1b2c", "ca_pem": "x"},
    SetCodecServerInput: {"namespace": "orders.a1b2c", "endpoint": "https://x"},
}


@pytest.mark.parametrize("cls", [RotateKeyInput, LedgerInput, UsageReport, AddClientCAInput,
                                 SetCodecServerInput])
def test_the_worker_converter_still_decides_authenticated_for_the_moved_inputs(
        cls: type[Any]) -> None:
    """keyward/codec/trust.py finds the inputs by their ``authenticated`` field: a plain
    JSON payload claiming it is read as unauthenticated, a stamped one as authenticated."""
    converter = TrustStampingPayloadConverter()
    fields = _REQUIRED_FIELDS.get(cls, {"key": "k"})
    claimed = converter.to_payloads([{**fields, "authenticated": True}])
    value, = converter.from_payloads(claimed, [cls])
    assert isinstance(value, cls)
    assert value.authenticated is False
    value, = converter.from_payloads([stamp(claimed[0])], [cls])
    assert value.authenticated is True
