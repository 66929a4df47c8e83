"""A Cloud namespace's accepted client CAs through keyward's CloudNamespaces service, against
the emulator through the real CloudOperationsClient: read → edit → write back with the
resource_version, re-applied on a conflict, the operation waited for; adds and removals
that change nothing send nothing; the last CA is never removed; only CA certificates go in."""

from __future__ import annotations

import base64

import grpc
import pytest
from structlog.testing import capture_logs
from temporalio.api.cloud.operation import v1 as operation_pb

from keyward.cloud.client_cas import InvalidClientCA
from keyward.cloud.errors import CloudOpsConflict, CloudOpsOperationFailed
from keyward.cloud.names import InvalidCloudNamespace
from keyward.cloud.ops import CloudOps
from keyward.contracts import failures
from keyward.services.cloud_namespaces import MAX_ATTEMPTS, CloudNamespaces, LastClientCA
from tests.cloud.certs import expired_ca_pem, new_ca, pem, reformatted, sha256
from tests.emulators.cloud_ops import DEFAULT_API_KEY, ORDERS, CloudOpsEmulator
from tests.support import json_logs
from tests.tls_material import CertificateAuthority


def bundle_of(emulator: CloudOpsEmulator, namespace: str = ORDERS) -> bytes:
    return emulator.namespace(namespace).spec.mtls_auth.accepted_client_ca


def rpc_calls(emulator: CloudOpsEmulator) -> int:
    return sum(emulator.calls.values())


@pytest.fixture
def namespaces(ops: CloudOps) -> CloudNamespaces:
    return CloudNamespaces(ops)


async def test_the_accepted_cas_are_listed_with_their_der_fingerprints(
        namespaces: CloudNamespaces, client_ca: CertificateAuthority) -> None:
    """read: each CA with the SHA-256 of its DER (as openssl prints it), subject, CA flag."""
    trust = await namespaces.read(ORDERS)
    assert [ca.fingerprint_sha256 for ca in trust.accepted_client_cas] == [sha256(client_ca)]
    only = trust.accepted_client_cas[0]
    assert (only.subject, only.is_ca) == ("CN=keyward cloud test client CA", True)
    assert trust.mtls_enabled
    assert trust.codec_server is not None
    assert trust.codec_server.endpoint == "https://codec.example.com"


async def test_adding_a_new_ca_writes_the_bundle_back_and_waits_for_the_operation(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """The new CA is appended after the old one (the old one stays: add before remove),
    every other part of the spec goes back as read, and the result comes once Cloud says
    the operation is fulfilled."""
    before = emulator.namespace(ORDERS)
    successor = new_ca()
    change = await namespaces.add_client_ca(ORDERS, pem(successor))
    assert change.changed
    assert change.summary.startswith("added CN=")
    assert "now accepts 2 client CAs" in change.summary
    assert change.operation_id is not None
    assert emulator.calls_to("GetAsyncOperation") >= 1  # waited for, not fire-and-forget
    assert emulator.operations[change.operation_id].proto.state == \
        operation_pb.AsyncOperation.STATE_FULFILLED
    assert [ca.fingerprint_sha256 for ca in change.after.accepted_client_cas] == [
        sha256(client_ca), sha256(successor)]
    after = emulator.namespace(ORDERS)
    assert after.spec.retention_days == before.spec.retention_days
    assert after.spec.search_attributes == before.spec.search_attributes
    assert after.spec.codec_server == before.spec.codec_server
    assert after.spec.mtls_auth.enabled


async def test_adding_a_ca_already_there_is_a_no_op_whatever_its_text(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """The same certificate as other text (CRLF, comments) is the same CA: nothing is sent,
    and the result says so."""
    emulator.reset_counts()
    change = await namespaces.add_client_ca(ORDERS, reformatted(pem(client_ca)))
    assert not change.changed
    assert "already accepted by orders.a1b2c: nothing to change" in change.summary
    assert change.fingerprints == [sha256(client_ca)]
    assert emulator.calls_to("UpdateNamespace") == 0
    assert change.operation_id is None


async def test_a_base64_bundle_is_compared_by_certificate_too(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """A bundle an older tool stored as base64 of PEM still holds the CA: a no-op."""
    emulator.add_namespace("legacy.a1b2c",
                           accepted_client_ca=base64.b64encode(client_ca.cert_pem()))
    emulator.reset_counts()
    change = await namespaces.add_client_ca("legacy.a1b2c", pem(client_ca))
    assert not change.changed
    assert emulator.calls_to("UpdateNamespace") == 0


async def test_a_file_of_several_cas_adds_only_those_missing(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Old CA + new CA in one file: one write, the new one added once, the old one named as
    already there."""
    successor = new_ca()
    change = await namespaces.add_client_ca(ORDERS, pem(client_ca) + pem(successor) +
                                            pem(successor))
    assert change.changed
    assert "already there" in change.summary
    assert [ca.fingerprint_sha256 for ca in change.after.accepted_client_cas] == [
        sha256(client_ca), sha256(successor)]
    assert emulator.calls_to("UpdateNamespace") == 1


async def test_removing_by_fingerprint_takes_out_that_ca_only(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """A fingerprint typed without colons, in lowercase, names the same CA."""
    successor = new_ca()
    await namespaces.add_client_ca(ORDERS, pem(successor))
    typed = sha256(client_ca).replace(":", "").lower()
    change = await namespaces.remove_client_cas(ORDERS, [typed])
    assert change.changed
    assert change.summary.startswith("removed CN=keyward cloud test client CA")
    assert "now accepts 1 client CA" in change.summary
    assert [ca.fingerprint_sha256 for ca in change.after.accepted_client_cas] == [
        sha256(successor)]
    assert bundle_of(emulator).decode() == pem(successor)


async def test_removing_by_pem_file_takes_out_its_certificates(
        namespaces: CloudNamespaces, client_ca: CertificateAuthority) -> None:
    """The file's certificates are matched by DER, whatever the file's formatting."""
    successor = new_ca()
    await namespaces.add_client_ca(ORDERS, pem(successor))
    change = await namespaces.remove_client_ca_pem(ORDERS, reformatted(pem(client_ca)))
    assert change.changed
    assert [ca.fingerprint_sha256 for ca in change.after.accepted_client_cas] == [
        sha256(successor)]


async def test_a_stray_leaf_in_the_bundle_can_be_removed_by_its_pem(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Removal needs only certificates, not CAs: a leaf pasted into the bundle by mistake is
    listed as not a CA and can be taken out."""
    leaf = client_ca.issue_client("pasted by mistake").cert_pem().decode()
    emulator.add_namespace("stray.a1b2c", accepted_client_ca=(pem(client_ca) + leaf).encode())
    listed = await namespaces.read("stray.a1b2c")
    assert [ca.is_ca for ca in listed.accepted_client_cas] == [True, False]
    change = await namespaces.remove_client_ca_pem("stray.a1b2c", leaf)
    assert change.changed
    assert bundle_of(emulator, "stray.a1b2c").decode() == pem(client_ca)


async def test_removing_a_ca_that_is_not_there_is_a_no_op(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Nothing is sent, the result names the fingerprint not found, the bundle is as it was."""
    stranger = new_ca()
    emulator.reset_counts()
    change = await namespaces.remove_client_cas(ORDERS, [sha256(stranger)])
    assert not change.changed
    assert change.summary == (f"no CA with SHA-256 fingerprint {sha256(stranger)} is accepted "
                              "by orders.a1b2c: nothing to change")
    assert emulator.calls_to("UpdateNamespace") == 0
    assert bundle_of(emulator).decode() == pem(client_ca)


@pytest.mark.parametrize("how", ["fingerprint", "pem", "all-at-once"])
async def test_removing_the_last_ca_is_refused(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority, how: str) -> None:
    """With mTLS on, a namespace accepting no CA locks every worker out: refused (however
    the CA is named, and when every CA is removed at once), nothing sent, permanent."""
    if how == "all-at-once":
        successor = new_ca()
        await namespaces.add_client_ca(ORDERS, pem(successor))
        removal = namespaces.remove_client_ca_pem(ORDERS, pem(client_ca) + pem(successor))
    elif how == "pem":
        removal = namespaces.remove_client_ca_pem(ORDERS, pem(client_ca))
    else:
        removal = namespaces.remove_client_cas(ORDERS, [sha256(client_ca)])
    emulator.reset_counts()
    with pytest.raises(LastClientCA) as caught:
        await removal
    assert "last accepted client CA" in str(caught.value)
    assert "locked out" in str(caught.value)
    assert caught.value.failure_type == failures.LAST_CLIENT_CA
    assert not caught.value.retryable
    assert emulator.calls_to("UpdateNamespace") == 0
    assert client_ca.cert_pem() in bundle_of(emulator)


def leaf_pem(ca: CertificateAuthority) -> str:
    return ca.issue_client("worker").cert_pem().decode()


def key_and_cert_pem(ca: CertificateAuthority) -> str:
    issued = ca.issue_client("worker")
    return (issued.key_pem() + ca.cert_pem()).decode()


@pytest.mark.parametrize(("make", "problem"), [
    (leaf_pem, "is not a CA certificate"),
    (key_and_cert_pem, "holds a private key"),
    (lambda _ca: expired_ca_pem(), "expired on"),
    (lambda _ca: "hello", "holds no PEM certificate"),
    (lambda _ca: "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n",
     "CERTIFICATE REQUEST blocks"),
    (lambda _ca: "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
     "not readable PEM certificates"),
], ids=["leaf", "private-key", "expired", "junk", "csr", "garbled"])
async def test_only_ca_certificates_are_added_and_refused_input_sends_nothing(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority, make: object, problem: str) -> None:
    """A leaf, a private key (with or without a certificate), an expired CA, or anything
    but PEM certificates is InvalidClientCA, permanent, before any call; a key's text never
    appears in the message."""
    text = make(client_ca)  # type: ignore[operator]
    emulator.reset_counts()
    with pytest.raises(InvalidClientCA, match=problem) as caught:
        await namespaces.add_client_ca(ORDERS, text, source="the CA file ca.pem")
    assert str(caught.value).startswith("the CA file ca.pem")
    assert (caught.value.failure_type, caught.value.retryable) == (failures.INVALID_CLIENT_CA,
                                                                   False)
    assert "MIG" not in str(caught.value)
    assert rpc_calls(emulator) == 0


async def test_a_private_key_in_a_file_to_remove_by_is_refused(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Removal files are certificates only too: a key is refused before any call."""
    emulator.reset_counts()
    with pytest.raises(InvalidClientCA, match="private key"):
        await namespaces.remove_client_ca_pem(ORDERS, key_and_cert_pem(client_ca))
    assert rpc_calls(emulator) == 0


@pytest.mark.parametrize("text", ["", "AB:CD", "zz" * 32, "a" * 63])
async def test_a_malformed_fingerprint_is_refused_before_any_call(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator, text: str) -> None:
    emulator.reset_counts()
    with pytest.raises(InvalidClientCA):
        await namespaces.remove_client_cas(ORDERS, [text])
    assert rpc_calls(emulator) == 0


@pytest.mark.parametrize("name", ["orders", "Orders.a1b2c", "orders.a1b2c/../x", "",
                                  "orders.a1b2c\n", "-orders.a1b2c", "orders-.a1b2c",
                                  "orders.a1b2c,billing.a1b2c", "orders.a1b2c.extra"])
async def test_a_name_that_is_not_a_cloud_namespace_is_refused_before_any_call(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority, name: str) -> None:
    """Every operation checks <name>.<account-id> before its first RPC."""
    emulator.reset_counts()
    for operation in (namespaces.read(name),
                      namespaces.add_client_ca(name, pem(client_ca)),
                      namespaces.remove_client_cas(name, [sha256(client_ca)]),
                      namespaces.set_codec_server(name, "https://codec.example.com")):
        with pytest.raises(InvalidCloudNamespace) as caught:
            await operation
        assert caught.value.failure_type == failures.INVALID_CLOUD_NAMESPACE
    assert rpc_calls(emulator) == 0


async def test_a_conflict_is_resolved_by_reading_again_and_reapplying(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Another writer moves the namespace on between keyward's read and its write, twice:
    keyward reads again each time and re-applies its edit to what is there, so the third
    write goes through and the other writer's change survives."""
    versions = emulator.interleave_writes(
        ORDERS, lambda spec: setattr(spec, "retention_days", spec.retention_days + 1), times=2)
    successor = new_ca()
    emulator.reset_counts()
    change = await namespaces.add_client_ca(ORDERS, pem(successor))
    assert change.changed
    assert change.attempts == 3
    assert len(versions) == 2
    assert emulator.calls_to("UpdateNamespace") == 3
    after = emulator.namespace(ORDERS)
    assert after.spec.retention_days == 32  # both of the other writer's edits kept
    assert after.spec.mtls_auth.accepted_client_ca.decode() == pem(client_ca) + pem(successor)


@pytest.mark.parametrize("code", [grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION])
async def test_a_ca_another_writer_added_meanwhile_makes_the_retry_a_no_op(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority, code: grpc.StatusCode) -> None:
    """The retry re-decides from the fresh read: the CA is there now, so nothing more is
    sent (a blind re-send of the first write would have been refused or doubled it)."""
    emulator.conflict_code = code
    successor = new_ca()

    def someone_adds_it(spec: object) -> None:
        spec.mtls_auth.accepted_client_ca += successor.cert_pem()  # type: ignore[attr-defined]

    emulator.interleave_writes(ORDERS, someone_adds_it, times=1)
    emulator.reset_counts()
    change = await namespaces.add_client_ca(ORDERS, pem(successor))
    assert not change.changed
    assert change.attempts == 2
    assert "nothing to change" in change.summary
    assert emulator.calls_to("UpdateNamespace") == 1
    assert bundle_of(emulator).count(b"BEGIN CERTIFICATE") == 2


async def test_a_namespace_that_keeps_changing_is_given_up_after_bounded_attempts(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Every write conflicting: MAX_ATTEMPTS reads and writes, then CloudOpsConflict
    (retryable: keyward wrote nothing), and the bundle is untouched."""
    emulator.interleave_writes(ORDERS, lambda spec: setattr(spec, "retention_days", 9))
    emulator.reset_counts()
    with pytest.raises(CloudOpsConflict, match=f"each of {MAX_ATTEMPTS} attempts") as caught:
        await namespaces.add_client_ca(ORDERS, pem(new_ca()))
    assert caught.value.retryable
    assert emulator.calls_to("UpdateNamespace") == MAX_ATTEMPTS == 5
    assert emulator.calls_to("GetNamespace") == MAX_ATTEMPTS
    assert bundle_of(emulator).decode() == pem(client_ca)


async def test_a_failed_operation_is_reported_with_clouds_reason(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Cloud accepts the write but its operation fails: CloudOpsOperationFailed naming
    Cloud's failure_reason, permanent; the namespace keeps its CAs."""
    emulator.operation_failure = "certificate chain could not be validated"
    with pytest.raises(CloudOpsOperationFailed,
                       match="failed: certificate chain could not be validated") as caught:
        await namespaces.add_client_ca(ORDERS, pem(new_ca()))
    assert not caught.value.retryable
    assert bundle_of(emulator).decode() == pem(client_ca)


async def test_no_log_line_carries_the_api_key(
        namespaces: CloudNamespaces, emulator: CloudOpsEmulator,
        client_ca: CertificateAuthority) -> None:
    """Conflicts, a change, a no-op and a failure, all logged as production logs them:
    the API key is in none of it."""
    with json_logs() as stream, capture_logs() as logs:
        emulator.interleave_writes(ORDERS, lambda spec: setattr(spec, "retention_days", 3),
                                   times=1)
        await namespaces.add_client_ca(ORDERS, pem(new_ca()))
        await namespaces.add_client_ca(ORDERS, pem(client_ca))
        emulator.operation_failure = "refused"
        with pytest.raises(CloudOpsOperationFailed) as caught:
            await namespaces.add_client_ca(ORDERS, pem(new_ca()))
    events = [entry["event"] for entry in logs]
    assert "cloud namespace changed since it was read; reading it again" in events
    assert "cloud namespace updated" in events
    assert "cloud namespace already as asked; nothing sent" in events
    assert DEFAULT_API_KEY not in stream.getvalue() + repr(logs) + str(caught.value)
