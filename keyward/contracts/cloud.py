"""Temporal Cloud namespaces: their accepted client CAs and codec-server endpoint, as the
Cloud namespace activities and ``keyward cloud …`` commands read and change them.

The activities are registered only when the worker's settings have ``cloud.api_key_file``.
Their inputs are untrusted (docs/trust-boundary.md §5): the namespace must be Cloud's
``<name>.<account-id>`` and listed in the worker's ``cloud.namespaces``, a change must have
arrived encrypted (``authenticated``, set by the worker's payload converter), and a codec
endpoint must be listed in ``cloud.codec_endpoints``. Removing a CA retires trust and is no
activity at all: only the operator command ``keyward cloud ca remove`` does it.

Only public material crosses Temporal: certificates, never a key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyward.contracts.contract import ActivityContract


@dataclass(frozen=True)
class AcceptedClientCA:
    """One certificate of a namespace's ``accepted_client_ca`` bundle."""

    #: SHA-256 of the DER encoding, ``AB:CD:…``: how keyward tells two CAs apart.
    fingerprint_sha256: str
    subject: str
    issuer: str
    #: Hexadecimal, as ``openssl x509 -serial`` prints it (lowercase).
    serial: str
    not_before: datetime
    not_after: datetime
    #: basicConstraints CA=true (a leaf someone put in the bundle reads False).
    is_ca: bool
    pem: str


@dataclass(frozen=True)
class CodecServerSetting:
    """A namespace's codec-server setting, as the Web UI uses it."""

    endpoint: str
    #: The Web UI sends the user's access token with each request.
    pass_access_token: bool = False
    #: The browser sends cookies (``credentials: include``) on its cross-origin requests.
    include_cross_origin_credentials: bool = False


@dataclass(frozen=True)
class CloudNamespaceTrust:
    """What a namespace trusts and where its Web UI decodes, as read."""

    namespace: str
    resource_version: str
    #: ``active``, ``updating`` (an operation is running), …
    state: str
    mtls_enabled: bool
    accepted_client_cas: list[AcceptedClientCA] = field(default_factory=list)
    codec_server: CodecServerSetting | None = None


@dataclass(frozen=True)
class CloudNamespaceChange:
    """What a change did: ``changed`` False is a no-op that ``summary`` explains (the CA
    was already there, was not there, the codec setting already had these values)."""

    namespace: str
    changed: bool
    #: One sentence for a person: what changed, or why nothing had to.
    summary: str
    #: The namespace after the change (or as it was, for a no-op).
    after: CloudNamespaceTrust
    #: The async operation that applied the change (None for a no-op).
    operation_id: str | None = None
    #: Reads of the namespace it took (more than one when another writer got in between).
    attempts: int = 1
    #: The fingerprints the change was about (added, removed, already or not present).
    fingerprints: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReadCloudNamespaceInput:
    namespace: str


@dataclass(frozen=True)
class AddClientCAInput:
    namespace: str
    #: PEM: one or more CA certificates, nothing else.
    ca_pem: str
    #: Set by the worker's payload converter: the input arrived encrypted (never from JSON).
    authenticated: bool = False


@dataclass(frozen=True)
class SetCodecServerInput:
    namespace: str
    #: ``https://`` only, and one of the worker's ``cloud.codec_endpoints``.
    endpoint: str
    pass_access_token: bool = False
    include_cross_origin_credentials: bool = False
    #: Set by the worker's payload converter: the input arrived encrypted (never from JSON).
    authenticated: bool = False


READ_CLOUD_NAMESPACE = ActivityContract("ReadCloudNamespace", ReadCloudNamespaceInput,
                                        CloudNamespaceTrust)
#: Adds CA certificates to the namespace's bundle (a no-op for those already there).
ADD_ACCEPTED_CLIENT_CA = ActivityContract("AddAcceptedClientCA", AddClientCAInput,
                                          CloudNamespaceChange)
SET_NAMESPACE_CODEC_SERVER = ActivityContract("SetNamespaceCodecServer", SetCodecServerInput,
                                              CloudNamespaceChange)

#: The activities registered only when the worker's settings have ``cloud.api_key_file``.
CLOUD_ACTIVITIES: tuple[ActivityContract[Any, Any], ...] = (
    READ_CLOUD_NAMESPACE, ADD_ACCEPTED_CLIENT_CA, SET_NAMESPACE_CODEC_SERVER)
