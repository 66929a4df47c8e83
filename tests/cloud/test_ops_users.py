"""Users through keyward's CloudOps (the SDK's CloudOperationsClient underneath) against the
Cloud Ops API emulator: roles, namespace accesses, filters and paging."""

from __future__ import annotations

import pytest
from temporalio.api.cloud.identity import v1 as identity

from keyward.cloud.errors import CloudOpsInvalidRequest, CloudOpsNotFound
from keyward.cloud.models import AccountRole, NamespacePermission
from keyward.cloud.ops import CloudOps
from tests.emulators.cloud_ops import BILLING, ORDERS, SAMPLE_USERS, CloudOpsEmulator


async def test_a_user_is_found_by_email_with_role_and_namespace_accesses(ops: CloudOps) -> None:
    """get_user_by_email returns the account role and every namespace access, as enums."""
    user = await ops.get_user_by_email("ns-write@example.com")
    assert user is not None
    assert user.email == "ns-write@example.com"
    assert user.account_role is AccountRole.DEVELOPER
    assert dict(user.namespace_accesses) == {ORDERS: NamespacePermission.WRITE,
                                             BILLING: NamespacePermission.READ}
    assert user.permission_in(ORDERS) is NamespacePermission.WRITE
    assert user.permission_in("other.a1b2c") is None
    assert user.state == "active"


@pytest.mark.parametrize(("email", "role"), [
    (email, AccountRole(role)) for email, (role, _) in SAMPLE_USERS.items()])
async def test_every_account_role_reads_as_its_own_member(ops: CloudOps, email: str,
                                                          role: AccountRole) -> None:
    """owner, admin, developer, financeadmin, read and metricsread each come back as such."""
    user = await ops.get_user_by_email(email)
    assert user is not None
    assert user.account_role is role


async def test_email_lookup_ignores_case_and_an_unknown_email_is_none(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """Emails match case-insensitively; an email the account does not know is None, not an
    error, and costs one call."""
    found = await ops.get_user_by_email("  NS-Admin@Example.COM ")
    assert found is not None
    assert found.namespace_accesses == {ORDERS: NamespacePermission.ADMIN}
    emulator.reset_counts()
    assert await ops.get_user_by_email("nobody@example.com") is None
    assert emulator.calls_to("GetUsers") == 1


async def test_every_page_is_followed(ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """list_users follows next_page_token to the end: 25 users in pages of 4 is 7 calls, each
    user once, in Cloud's ascending-id order."""
    for index in range(25):
        emulator.add_user(f"bulk-{index:02}@example.com", namespaces={"bulk.a1b2c": "read"})
    emulator.reset_counts()
    users = await ops.list_users(namespace="bulk.a1b2c", page_size=4)
    assert sorted(user.email for user in users) == [f"bulk-{i:02}@example.com"
                                                    for i in range(25)]
    assert [user.id for user in users] == sorted(user.id for user in users)
    assert emulator.calls_to("GetUsers") == 7


async def test_a_user_on_a_later_page_is_found_by_email(ops: CloudOps,
                                                        emulator: CloudOpsEmulator) -> None:
    """The email lookup follows pages too (a server may page even a filtered answer)."""
    for index in range(5):
        emulator.add_user("same@example.com", user_id=f"user-{index}")
    users = await ops.list_users(email="same@example.com", page_size=2)
    assert [user.id for user in users] == [f"user-{index}" for index in range(5)]


async def test_the_namespace_filter_lists_users_with_an_access_to_it(ops: CloudOps) -> None:
    """namespace= keeps the users whose accesses name that namespace, and only them."""
    orders = {user.email for user in await ops.list_users(namespace=ORDERS)}
    assert orders == {"ns-admin@example.com", "ns-write@example.com", "ns-read@example.com"}
    billing = {user.email for user in await ops.list_users(namespace=BILLING)}
    assert billing == {"ns-write@example.com"}


async def test_the_filters_combine(ops: CloudOps) -> None:
    """email= and namespace= together: the user only if they have an access there."""
    assert [u.email for u in await ops.list_users(email="ns-read@example.com",
                                                  namespace=ORDERS)] == ["ns-read@example.com"]
    assert await ops.list_users(email="ns-read@example.com", namespace=BILLING) == []


async def test_a_user_is_read_by_id_and_an_unknown_id_is_not_found(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """GetUser by id; an unknown id is CloudOpsNotFound, which is not retried."""
    added = emulator.add_user("by-id@example.com", account_role="admin")
    user = await ops.get_user(added.id)
    assert (user.email, user.account_role) == ("by-id@example.com", AccountRole.ADMIN)
    with pytest.raises(CloudOpsNotFound) as caught:
        await ops.get_user("no-such-user")
    assert not caught.value.retryable


async def test_a_role_these_protos_do_not_know_grants_nothing(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """A role or permission value newer than keyward's protos reads as UNSPECIFIED."""
    added = emulator.add_user("future@example.com", namespaces={ORDERS: "read"})
    with emulator.lock:
        access = emulator.users[added.id].spec.access
        access.account_access.role = 42  # type: ignore[assignment]
        access.namespace_accesses[ORDERS].permission = 42  # type: ignore[assignment]
    user = await ops.get_user(added.id)
    assert user.account_role is AccountRole.UNSPECIFIED
    assert user.permission_in(ORDERS) is NamespacePermission.UNSPECIFIED


async def test_the_string_fields_of_old_api_versions_are_read(
        ops: CloudOps, emulator: CloudOpsEmulator) -> None:
    """A version pinned before v0.3.0 fills role_deprecated/permission_deprecated only; they
    are read when the enum is unset."""
    added = emulator.add_user("legacy@example.com")
    with emulator.lock:
        access = emulator.users[added.id].spec.access
        access.account_access.role = identity.AccountAccess.ROLE_UNSPECIFIED
        access.account_access.role_deprecated = "admin"
        access.namespace_accesses[ORDERS].permission_deprecated = "write"
    user = await ops.get_user(added.id)
    assert user.account_role is AccountRole.ADMIN
    assert user.permission_in(ORDERS) is NamespacePermission.WRITE


@pytest.mark.parametrize("page_size", [0, -1, 1001])
async def test_a_page_size_cloud_would_refuse_is_refused_before_calling(
        ops: CloudOps, emulator: CloudOpsEmulator, page_size: int) -> None:
    """GetUsers takes 1..1000 per page; anything else never reaches the API."""
    emulator.reset_counts()
    with pytest.raises(CloudOpsInvalidRequest):
        await ops.list_users(page_size=page_size)
    assert emulator.calls_to("GetUsers") == 0
