"""``parse_permissions``: total over any claim value, and monotonic in what it grants."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyward.codecserver.permissions import Operation, Permissions, Role, parse_permissions

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
NAMESPACES = st.sampled_from(["orders", "ORDERS", "team-a", "temporal-system", "", "a:b"])
ROLES = st.sampled_from(["read", "write", "worker", "admin", "READ", "Admin", "owner", ""])
ENTRIES = st.builds(lambda ns, role: f"{ns}:{role}", NAMESPACES, ROLES) | JSON_VALUES
CHECKED = ["orders", "ORDERS", "team-a", "temporal-system", "elsewhere"]


OPERATIONS: tuple[Operation, ...] = ("encode", "decode")


def grants(permissions: Permissions) -> set[tuple[str, str]]:
    return {(operation, namespace) for operation in OPERATIONS
            for namespace in CHECKED if permissions.allows(operation, namespace)}


@given(JSON_VALUES)
def test_parse_never_raises(claim: Any) -> None:
    """Any JSON value as the claim parses to some Permissions without raising."""
    permissions = parse_permissions(claim)
    assert isinstance(permissions.system, Role)
    grants(permissions)


@given(st.lists(ENTRIES, max_size=8), ENTRIES)
def test_adding_an_entry_never_removes_access(entries: list[Any], extra: Any) -> None:
    """Whatever the claim holds, one more entry grants at least what it granted before."""
    before = grants(parse_permissions(entries))
    after = grants(parse_permissions([*entries, extra]))
    assert before <= after


@given(st.lists(ENTRIES, max_size=8))
def test_order_of_entries_does_not_matter(entries: list[Any]) -> None:
    """Roles are OR-ed, so the claim's order changes nothing."""
    assert grants(parse_permissions(entries)) == grants(parse_permissions(entries[::-1]))


def test_non_list_claims_grant_nothing() -> None:
    """A claim that is a string, object or number is not a permissions list: no access at all."""
    for claim in ("temporal-system:admin", {"temporal-system": "admin"}, 8, None, True):
        assert grants(parse_permissions(claim)) == set()


def test_roles_are_bit_flags_compared_numerically() -> None:
    """worker|read makes 3 (≥ read, < write); system scope counts in every namespace."""
    permissions = parse_permissions(["orders:worker", "orders:read", "temporal-system:read"])
    assert permissions.role_in("orders") == Role.WORKER | Role.READER
    assert permissions.allows("decode", "orders")
    assert not permissions.allows("encode", "orders")
    assert permissions.allows("decode", "anything")
    assert not permissions.allows("encode", "anything")


def test_role_values_are_temporals_bits() -> None:
    """Roles carry Temporal's own bit values (worker 1, read 2, write 4, admin 8), so the
    numeric comparison grants exactly what the server grants."""
    assert [int(role) for role in (Role.UNDEFINED, Role.WORKER, Role.READER, Role.WRITER,
                                   Role.ADMIN)] == [0, 1, 2, 4, 8]


@pytest.mark.parametrize(("role", "decode", "encode"), [
    ("worker", False, False), ("read", True, False), ("write", True, True),
    ("admin", True, True),
])
def test_each_role_grants_what_the_server_grants(role: str, decode: bool, encode: bool) -> None:
    """worker (1) is below read (2): no decoding; read decodes; write (4) and admin (8) also
    encode — the same on a namespace and on ``temporal-system``."""
    for claim in ([f"orders:{role}"], [f"temporal-system:{role}"]):
        permissions = parse_permissions(claim)
        assert permissions.allows("decode", "orders") is decode
        assert permissions.allows("encode", "orders") is encode


def test_namespace_is_matched_lowercased() -> None:
    """A request for ``Orders`` is checked against the claim's ``orders`` (the server looks
    namespaces up lowercased); a claim naming ``ORDERS`` matches no namespace at all."""
    lower = parse_permissions(["orders:read"])
    assert lower.allows("decode", "Orders")
    assert lower.allows("decode", "ORDERS")
    upper = parse_permissions(["ORDERS:admin"])
    assert not upper.allows("decode", "orders")
    assert not upper.allows("decode", "ORDERS")


def test_role_names_are_case_insensitive() -> None:
    """``orders:READ`` and ``orders:Write`` name the read and write roles."""
    assert parse_permissions(["orders:READ"]).role_in("orders") == Role.READER
    assert parse_permissions(["orders:Write"]).role_in("orders") == Role.WRITER


def test_entries_after_an_ignored_one_still_count() -> None:
    """An entry without a colon, or one that is not a string, is skipped, and the entries
    after it are still read."""
    permissions = parse_permissions(["no-colon", 7, "orders:read", "temporal-system:write"])
    assert permissions.role_in("orders") == Role.READER
    assert permissions.system == Role.WRITER


def test_roles_of_one_namespace_are_or_ed() -> None:
    """Two entries for one namespace combine (read|write = 6); another namespace is apart."""
    permissions = parse_permissions(["orders:read", "orders:write", "team-a:worker"])
    assert permissions.namespaces == {"orders": Role.READER | Role.WRITER,
                                      "team-a": Role.WORKER}
    assert permissions.system == Role.UNDEFINED


def test_only_the_exact_system_scope_applies_everywhere() -> None:
    """``temporal-system`` grants in every namespace; a namespace merely starting with it, or
    an unknown role name, grants nothing."""
    assert parse_permissions(["temporal-system:read"]).allows("decode", "elsewhere")
    assert not parse_permissions(["temporal-systemx:read"]).allows("decode", "elsewhere")
    assert parse_permissions(["orders:owner"]).role_in("orders") == Role.UNDEFINED


def test_parsed_permissions_cannot_be_widened() -> None:
    """Permissions parsed from a verified token are frozen: no later code can raise them."""
    permissions = parse_permissions(["orders:read"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        permissions.system = Role.ADMIN  # type: ignore[misc]
