"""A Temporal Cloud namespace's accepted client CAs and codec-server endpoint: the operations
behind ``keyward cloud …`` and the Cloud namespace activities.

Every change is read → edit → write back: ``GetNamespace`` gives the whole spec and its
``resource_version``, the edit changes one part of a copy, ``UpdateNamespace`` writes the
whole spec back only if the namespace is still at that version. When another writer got in
between (:class:`~keyward.cloud.errors.CloudOpsConflict`), the namespace is read again and
the *edit* applied again to what is there now: never the old spec re-sent, so the other
writer's change survives, and a CA they added meanwhile makes this add a no-op. Up to
:data:`MAX_ATTEMPTS` reads; then the conflict is raised (retryable: nothing was written).
The write's async operation is waited for; one that Cloud fails raises
:class:`~keyward.cloud.errors.CloudOpsOperationFailed` with Cloud's ``failure_reason``.

A change that would change nothing sends no ``UpdateNamespace`` and says why in its result
(``changed=False``): a CA already in the bundle, one to remove that is not there, a codec
setting that already has these values. CAs are compared as certificates (SHA-256 of the
DER), never as text. Removing what would leave no CA at all is refused
(:data:`~keyward.contracts.failures.LAST_CLIENT_CA`): with mTLS on, a namespace accepting no
CA locks every worker and client out.

No Temporal in here: every failure is a :class:`~keyward.errors.KeywardError`, and the
names are checked (:func:`~keyward.cloud.names.check_namespace_name`) before any call.
Which namespaces an *activity* may touch is the activities' decision
(``activities/cloud_namespaces.py``), not this service's: the operator's commands reach
every namespace the API key can.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography import x509

from keyward.cloud.client_cas import (
    InvalidClientCA,
    bundle_pem,
    describe,
    fingerprint,
    load_cas_to_add,
    load_certificates,
    normalize_fingerprint,
    parse_bundle,
)
from keyward.cloud.errors import CloudOpsConflict
from keyward.cloud.models import CloudNamespace, CodecServer
from keyward.cloud.names import check_codec_endpoint, check_namespace_name
from keyward.cloud.ops import CloudOps
from keyward.contracts import failures
from keyward.contracts.cloud import (
    CloudNamespaceChange,
    CloudNamespaceTrust,
)
from keyward.errors import KeywardError
from keyward.log import get_logger

_log = get_logger("keyward.services.cloud_namespaces")

#: Reads (and writes) one change may take while other writers keep moving the namespace on.
MAX_ATTEMPTS: Final = 5


class LastClientCA(KeywardError):
    """The removal asked for would leave the namespace accepting no client CA."""

    failure_type = failures.LAST_CLIENT_CA


@dataclass(frozen=True)
class _Edit:
    """What one attempt decided: the namespace to write (None: nothing to change), and the
    sentence that says what it is."""

    write: CloudNamespace | None
    summary: str
    fingerprints: tuple[str, ...] = ()


class CloudNamespaces:
    """The Cloud namespaces one Ops API client reaches."""

    def __init__(self, ops: CloudOps, *, max_attempts: int = MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._ops = ops
        self._max_attempts = max_attempts

    async def read(self, namespace: str) -> CloudNamespaceTrust:
        """The namespace's accepted client CAs, mTLS switch and codec-server setting."""
        check_namespace_name(namespace)
        return trust_of(await self._ops.get_namespace(namespace))

    async def add_client_ca(self, namespace: str, ca_pem: str, *,
                            source: str = "the CA") -> CloudNamespaceChange:
        """Add the CA certificates in ``ca_pem`` (CA certificates only: no leaf, no private
        key, none expired) to the bundle; those already there are left as they are, and
        when all are, nothing is written. ``source`` names the input in messages."""
        check_namespace_name(namespace)
        adding = load_cas_to_add(ca_pem, what=source)

        def edit(current: CloudNamespace) -> _Edit:
            bundle = parse_bundle(current.accepted_client_ca_pem)
            present = {fingerprint(cert) for cert in bundle}
            new = [cert for cert in adding if fingerprint(cert) not in present]
            prints = tuple(fingerprint(cert) for cert in adding)
            if not new:
                return _Edit(None, f"{_names(adding)} already accepted by {namespace}: "
                                   "nothing to change", prints)
            already = [cert for cert in adding if fingerprint(cert) in present]
            kept = f"; {_names(already)} already there" if already else ""
            return _Edit(current.with_accepted_client_ca(bundle_pem([*bundle, *new])),
                         f"added {_names(new)} to {namespace}{kept}: it now accepts "
                         f"{_count(len(bundle) + len(new))}", prints)

        return await self._change(namespace, edit)

    async def remove_client_cas(self, namespace: str,
                                fingerprints: Sequence[str]) -> CloudNamespaceChange:
        """Remove the CAs with these SHA-256 fingerprints from the bundle; a fingerprint not
        there is reported, and when none is, nothing is written. Refused
        (:class:`LastClientCA`) when no CA would be left."""
        check_namespace_name(namespace)
        if not fingerprints:
            raise InvalidClientCA("name at least one CA to remove")
        wanted = tuple(dict.fromkeys(normalize_fingerprint(text) for text in fingerprints))

        def edit(current: CloudNamespace) -> _Edit:
            bundle = parse_bundle(current.accepted_client_ca_pem)
            going = [cert for cert in bundle if fingerprint(cert) in wanted]
            found = {fingerprint(cert) for cert in going}
            missing = [print_ for print_ in wanted if print_ not in found]
            absent = f"no CA with SHA-256 fingerprint {', '.join(missing)}"
            if not going:
                return _Edit(None, f"{absent} is accepted by {namespace}: nothing to change",
                             wanted)
            left = [cert for cert in bundle if fingerprint(cert) not in found]
            if not left:
                raise LastClientCA(
                    f"refusing to remove {_names(going)} from {namespace}: it is the last "
                    "accepted client CA, and a namespace accepting no CA admits no client "
                    "certificate (every mTLS worker and client would be locked out); add its "
                    "successor first ('keyward cloud ca add'), then remove it")
            also = f"; {absent} was there" if missing else ""
            return _Edit(current.with_accepted_client_ca(bundle_pem(left)),
                         f"removed {_names(going)} from {namespace}{also}: it now accepts "
                         f"{_count(len(left))}", wanted)

        return await self._change(namespace, edit)

    async def remove_client_ca_pem(self, namespace: str, pem: str, *,
                                   source: str = "the PEM file") -> CloudNamespaceChange:
        """As :meth:`remove_client_cas`, for the certificates in ``pem`` (any certificates,
        so that a stray leaf can be taken out too; never a private key)."""
        check_namespace_name(namespace)
        certs = load_certificates(pem, what=source)
        return await self.remove_client_cas(namespace, [fingerprint(cert) for cert in certs])

    async def set_codec_server(self, namespace: str, endpoint: str, *,
                               pass_access_token: bool = False,
                               include_cross_origin_credentials: bool = False,
                               ) -> CloudNamespaceChange:
        """Point the namespace's Web UI at ``endpoint`` (``https://`` only) with these two
        switches; nothing is written when the setting already has exactly these values."""
        check_namespace_name(namespace)
        check_codec_endpoint(endpoint)
        wanted = CodecServer(endpoint, pass_access_token=pass_access_token,
                             include_cross_origin_credentials=include_cross_origin_credentials)
        described = (f"{endpoint} (pass access token: {_yes(pass_access_token)}, include "
                     f"cross-origin credentials: {_yes(include_cross_origin_credentials)})")

        def edit(current: CloudNamespace) -> _Edit:
            if current.codec_server == wanted:
                return _Edit(None, f"the codec server of {namespace} is already {described}: "
                                   "nothing to change")
            was = current.codec_server.endpoint if current.codec_server else "not set"
            return _Edit(current.with_codec_server(wanted),
                         f"codec server of {namespace} set to {described} (was {was})")

        return await self._change(namespace, edit)

    async def _change(self, namespace: str,
                      edit: Callable[[CloudNamespace], _Edit]) -> CloudNamespaceChange:
        """Read, edit, write if the edit changes something, wait; again on a conflict."""
        for attempt in range(1, self._max_attempts + 1):
            current = await self._ops.get_namespace(namespace)
            decided = edit(current)
            if decided.write is None:
                _log.info("cloud namespace already as asked; nothing sent", namespace=namespace,
                          summary=decided.summary)
                return CloudNamespaceChange(
                    namespace=namespace, changed=False, summary=decided.summary,
                    after=trust_of(current), attempts=attempt,
                    fingerprints=list(decided.fingerprints))
            try:
                started = await self._ops.update_namespace(decided.write)
            except CloudOpsConflict as conflict:
                _log.info("cloud namespace changed since it was read; reading it again",
                          namespace=namespace, attempt=attempt, error=str(conflict))
                continue
            done = await self._ops.wait_operation(started.id)
            _log.info("cloud namespace updated", namespace=namespace, operation_id=done.id,
                      attempts=attempt, summary=decided.summary)
            return CloudNamespaceChange(
                namespace=namespace, changed=True, summary=decided.summary,
                after=trust_of(await self._ops.get_namespace(namespace)),
                operation_id=done.id, attempts=attempt, fingerprints=list(decided.fingerprints))
        raise CloudOpsConflict(
            f"update namespace {namespace}",
            f"another writer changed the namespace between keyward's read and its write on "
            f"each of {self._max_attempts} attempts; keyward wrote nothing, try again")


def trust_of(namespace: CloudNamespace) -> CloudNamespaceTrust:
    """The contract's view of a namespace as read."""
    return CloudNamespaceTrust(
        namespace=namespace.name, resource_version=namespace.resource_version,
        state=namespace.state, mtls_enabled=namespace.mtls_enabled,
        accepted_client_cas=[describe(cert)
                             for cert in parse_bundle(namespace.accepted_client_ca_pem)],
        codec_server=namespace.codec_server)


def _names(certs: Sequence[x509.Certificate]) -> str:
    return ", ".join(f"{cert.subject.rfc4514_string() or '(empty subject)'} "
                     f"(SHA-256 {fingerprint(cert)})" for cert in certs)


def _count(n: int) -> str:
    return f"{n} client CA" + ("" if n == 1 else "s")


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
