"""The failure type names keyward puts on Temporal ``ApplicationError``s.

Activities raise a :class:`keyward.errors.KeywardError` whose ``failure_type`` is one of
these and convert it once (``keyward.temporal.failures.to_application_error``); workflows
raise their own refusals with these names. Operators' alerts, tests and recorded histories
match on the strings: add names, never rename one. Each one is documented in
``docs/failures.md`` (``tests/unit/test_failures.py`` holds the two to each other).

"Retried" means Temporal's retry policy tries the activity again; "not retried" means the
error is ``non_retryable`` and the activity (or the workflow) fails at once.
"""

from __future__ import annotations

from typing import Final

# --- Vault (activities talking to Vault; the class names of keyward.vault.errors) -------

VAULT_UNAVAILABLE: Final = "VaultUnavailable"
"""Vault did not answer: connection refused, timeout, TLS failure, sealed, 501/503. Retried."""

VAULT_RATE_LIMITED: Final = "VaultRateLimited"
"""Vault answered 429 Too Many Requests. Retried."""

VAULT_SERVER_ERROR: Final = "VaultServerError"
"""Vault answered 412 or another 5xx (500, 502...). Retried."""

VAULT_INVALID_REQUEST: Final = "VaultInvalidRequest"
"""Vault answered 400 or 405 (or hvac refused the parameters): the request is wrong. Not retried."""

VAULT_FORBIDDEN: Final = "VaultForbidden"
"""Vault answered 401 or 403: bad or expired token, or a policy that lacks the path. Not retried."""

VAULT_NOT_FOUND: Final = "VaultNotFound"
"""Vault answered 404: no such key or mount. Not retried."""

VAULT_ERROR: Final = "VaultError"
"""A Vault call failed in a way no subclass names. Not retried."""

VAULT_TRANSIENT_ERROR: Final = "VaultTransientError"
"""A Vault failure worth trying again that no more precise class names. Retried."""

VAULT_PERMANENT_ERROR: Final = "VaultPermanentError"
"""A Vault refusal that no more precise class names. Not retried."""

# --- Temporal Cloud Operations API (the class names of keyward.cloud.errors) ------------

CLOUD_OPS_UNAVAILABLE: Final = "CloudOpsUnavailable"
"""The Cloud Ops API did not answer: connection refused or reset, TLS failure, UNAVAILABLE,
DEADLINE_EXCEEDED or keyward's own call deadline. Retried."""

CLOUD_OPS_RATE_LIMITED: Final = "CloudOpsRateLimited"
"""The Cloud Ops API answered RESOURCE_EXHAUSTED (rate limited). Retried."""

CLOUD_OPS_SERVER_ERROR: Final = "CloudOpsServerError"
"""The Cloud Ops API answered INTERNAL, UNKNOWN or DATA_LOSS. Retried."""

CLOUD_OPS_CONFLICT: Final = "CloudOpsConflict"
"""A namespace update carried a stale ``resource_version`` (ABORTED, or FAILED_PRECONDITION
on a write): someone changed the namespace since it was read. Retried: each attempt reads
the namespace again and re-applies its change; the same request sent again never succeeds."""

CLOUD_OPS_UNAUTHENTICATED: Final = "CloudOpsUnauthenticated"
"""The Cloud Ops API refused the API key (UNAUTHENTICATED): wrong, expired or revoked.
Not retried."""

CLOUD_OPS_PERMISSION_DENIED: Final = "CloudOpsPermissionDenied"
"""The API key's identity may not do this (PERMISSION_DENIED): its account role or
namespace access is too low. Not retried."""

CLOUD_OPS_NOT_FOUND: Final = "CloudOpsNotFound"
"""No such namespace, user or async operation (NOT_FOUND). Not retried."""

CLOUD_OPS_INVALID_REQUEST: Final = "CloudOpsInvalidRequest"
"""The Cloud Ops API refused the request as malformed (INVALID_ARGUMENT, an unsupported API
version, OUT_OF_RANGE, UNIMPLEMENTED, ALREADY_EXISTS, FAILED_PRECONDITION on a read), or
keyward refused to send it (a CA bundle that is not certificates). Not retried."""

CLOUD_OPS_NOTHING_TO_CHANGE: Final = "CloudOpsNothingToChange"
"""A namespace update asked for the spec the namespace already has (INVALID_ARGUMENT
"nothing to change"). Not retried."""

CLOUD_OPS_OPERATION_FAILED: Final = "CloudOpsOperationFailed"
"""An async operation (a namespace update) ended failed, cancelled or rejected; its
``failure_reason`` is in the message. Not retried."""

CLOUD_OPS_OPERATION_TIMEOUT: Final = "CloudOpsOperationTimeout"
"""An async operation was still pending or in progress when keyward stopped waiting
(``cloud.operation_timeout_seconds``). Retried: waiting again may see it end."""

CLOUD_OPS_ERROR: Final = "CloudOpsError"
"""A Cloud Ops API failure no finer type names (a response keyward cannot read). Not
retried."""

# --- Cloud namespaces: accepted client CAs, codec endpoint (services/cloud_namespaces.py) ---

INVALID_CLOUD_NAMESPACE: Final = "InvalidCloudNamespace"
"""A namespace name is not Temporal Cloud's ``<name>.<account-id>`` (lowercase letters, digits
and hyphens); refused before any Ops API call. Not retried."""

CLOUD_NAMESPACE_NOT_ALLOWED: Final = "CloudNamespaceNotAllowed"
"""A Cloud namespace activity named a namespace the worker's ``cloud.namespaces`` does not
list, or asked for a codec endpoint ``cloud.codec_endpoints`` does not list; refused before
any Ops API call. Not retried."""

INVALID_CLIENT_CA: Final = "InvalidClientCA"
"""A CA given to add (or a PEM file given to remove) is not what it must be: PEM
certificates only, no private key, and to add, CA certificates (basicConstraints CA=true)
that have not expired. Not retried."""

LAST_CLIENT_CA: Final = "LastClientCA"
"""Removing the CA(s) asked for would leave the namespace accepting no client CA at all,
which locks every mTLS worker and client out; add the successor first. Not retried."""

INVALID_CODEC_ENDPOINT: Final = "InvalidCodecEndpoint"
"""A codec-server endpoint is not an ``https://`` URL with a host (and no user name or
password in it). Not retried."""

# --- Transit key activities -------------------------------------------------------------

INVALID_FLOOR: Final = "InvalidFloor"
"""SetDecryptionFloor was asked for a floor above the key's latest version. Not retried."""

INVALID_VAULT_NAME: Final = "InvalidVaultName"
"""A key or mount name in an activity input breaks Vault's naming rule. Not retried."""

# --- History activities -----------------------------------------------------------------

INVALID_REQUEST: Final = "InvalidRequest"
"""DescribeHistoryWindow was called without namespaces or without a key. Not retried."""

# --- Certificate activities -------------------------------------------------------------

UNKNOWN_CERTIFICATE: Final = "UnknownCertificate"
"""The input names a certificate the worker's settings do not configure. Not retried."""

UNKNOWN_CERTIFICATE_AUTHORITY: Final = "UnknownCertificateAuthority"
"""The input names a CA the worker's settings do not list under certificate_authorities. Not
retried."""

CA_ROTATION_REFUSED: Final = "CaRotationRefused"
"""A CA rotation step cannot be done now: the successor is not in every bundle yet, the old
CA may not retire yet (its time has not come, or a leaf still chains to it), or the CA
files are unreadable. Retried where waiting can help; trust is never withdrawn early."""

CA_ROTATION_IN_PROGRESS: Final = "CaRotationInProgress"
"""Another workflow run is rotating this CA (the message names it). Not retried."""

ISSUER_ERROR: Final = "IssuerError"
"""The issuer (local CA, Vault PKI, cert-manager, Key Vault) could not issue. Retried when the
issuer says trying again may help (unreachable, 429/5xx, still pending), else not."""

CERTIFICATE_INVALID: Final = "CertificateInvalid"
"""A freshly issued certificate failed validation and was not installed. Not retried."""

TRUST_ANCHOR_UNREADABLE: Final = "TrustAnchorUnreadable"
"""A certificate's pinned ``trust_anchor`` file cannot be read. Not retried."""

INSPECT_FAILED: Final = "InspectFailed"
"""Reading the installed certificate from Azure Key Vault failed. Retried when Key Vault was
unreachable or busy, not when it refused."""

INSTALL_FAILED: Final = "InstallFailed"
"""Installing into a Kubernetes Secret or Azure Key Vault failed. Retried when the target was
unreachable, busy or conflicting, not when it refused (RBAC, wrong Secret type)."""

VERIFY_FAILED: Final = "VerifyFailed"
"""The TLS handshake with ``verify_endpoint`` failed, nothing is installed, or the endpoint
serves another serial (not reloaded yet). Retried."""

TLS_SECRET_ERROR: Final = "TlsSecretError"  # noqa: S105 -- a type name, not a password
"""Reading or writing a Kubernetes TLS Secret failed (outside an install, which says
``InstallFailed``). Retried when the API server was unreachable or busy, else not."""

# --- Worker interceptor -----------------------------------------------------------------

FOREIGN_CALLER: Final = "ForeignCaller"
"""An activity was started by something other than one of keyward's workflows (a standalone
activity, another workflow on the task queue). Not retried."""

# --- Workflows' own refusals ------------------------------------------------------------

ROTATION_NOT_VERIFIED: Final = "RotationNotVerified"
"""RotateTransitKey rotated but the key's latest version did not move. Not retried."""

INVALID_FLOOR_INPUT: Final = "InvalidFloorInput"
"""RotateTransitKey cannot decide the decryption floor from its input. Not retried."""

UNAUTHENTICATED_INPUT: Final = "UnauthenticatedInput"
"""A workflow input (or signal), or the input of a Cloud namespace activity that changes
something, did not come through the payload codec's authenticated encryption. Not retried."""

INVALID_KEY_NAME: Final = "InvalidKeyName"
"""RotateTransitKey's key or mount breaks Vault's naming rule. Not retried."""

# --- Errors that do not normally reach Temporal -----------------------------------------

KEYWARD_ERROR: Final = "KeywardError"
"""A keyward error no subclass names; the class default. Not retried unless it says so."""

CONFIG_ERROR: Final = "ConfigError"
"""A setting is missing, malformed or out of range. Not retried."""

PAYLOAD_ENCRYPTION_ERROR: Final = "PayloadEncryptionError"
"""The payload codec could not encrypt; nothing was sent. Not retried by keyward (Temporal
fails the workflow task, which the server retries)."""

PAYLOAD_DECRYPTION_ERROR: Final = "PayloadDecryptionError"
"""The payload codec could not decrypt or verify a payload. Retried only when Vault was
unreachable (same note on workflow tasks)."""


def all_failure_types() -> dict[str, str]:
    """Every failure type here: constant name to type name."""
    return {name: value for name, value in globals().items()
            if name.isupper() and isinstance(value, str)}
