"""``parse_permissions``: total over any claim value, and monotonic in what it grants."""

from __future__ import annotations

from typing import Any

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
