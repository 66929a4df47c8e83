"""Install an issued certificate into a ``kubernetes.io/tls`` Secret, and read it back.

Pods mount the Secret as a volume, so installing is one API write: the kubelet then
swaps the new ``tls.crt``/``tls.key``/``ca.crt`` into the pod atomically (its
``..data`` symlink), and no reader ever sees a new certificate with an old key.

Concurrent writers are expected (another keyward replica, a human with ``kubectl
edit``, a reflector copying the Secret), so an update is a read, then a replace that
carries the resourceVersion that was read. If someone wrote in between, the API server
answers 409 Conflict and we read again and re-apply our change on top of theirs,
instead of overwriting what we never saw. Only our three data keys and the labels we
were given change; every other key, label and annotation is kept.

The previous pair is **not** kept in the Secret (no ``tls.crt.previous``). Every data
key becomes a file in every pod that mounts the Secret, so an old private key would
stay readable long after rotation retired it, which is the exposure rotation exists to
end; Secrets are capped at 1 MiB; and cert-manager, whose layout consumers expect,
keeps only the current pair. Rolling back means issuing again, and the old
certificate stays recoverable from the issuer or the API server's audit trail.

Errors are :class:`TlsSecretError` with ``retryable`` decided once, from the HTTP
status, by :func:`kube_failure` (also used by the cert-manager issuer).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Final

import kubernetes.client
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from keyward.contracts import failures
from keyward.errors import KeywardError
from keyward.log import get_logger
from keyward.pki.types import IssuedCertificate

TLS_SECRET_TYPE: Final = "kubernetes.io/tls"  # noqa: S105 - a Secret type, not a password
CERT_KEY: Final = "tls.crt"
PRIVATE_KEY_KEY: Final = "tls.key"
CA_KEY: Final = "ca.crt"

#: Statuses worth retrying: the API server or something in front of it is overloaded
#: or restarting. Everything else in 4xx is our request or our permissions.
_RETRYABLE_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})

_log = get_logger("keyward.pki.k8s_secret")


@dataclass(frozen=True)
class KubeFailure:
    """What went wrong talking to the API server, decided once for every caller."""

    #: HTTP status, or None when no response came back (connection refused, timeout).
    status: int | None
    #: The API server's Status ``reason`` (``Conflict``, ``NotFound``...), if any.
    reason: str
    #: The API server's Status ``message``, or the transport error.
    message: str
    retryable: bool

    def describe(self) -> str:
        if self.status is None:
            return f"Kubernetes API unreachable: {self.message}"
        return f"Kubernetes API answered {self.status} {self.reason}: {self.message}"


def kube_failure(exc: ApiException | urllib3.exceptions.HTTPError) -> KubeFailure:
    """Classify an exception from the ``kubernetes`` client.

    The client raises ``ApiException`` (status 0 for TLS failures) for HTTP answers and
    lets urllib3's errors (``MaxRetryError`` wrapping a refused connection, timeouts)
    through untouched; both kinds are handled here so callers catch one pair.
    """
    if isinstance(exc, urllib3.exceptions.HTTPError):
        return KubeFailure(None, "", str(exc.__cause__ or exc), True)
    status = int(exc.status or 0)
    reason, message = str(exc.reason or ""), ""
    try:
        body = json.loads(exc.body) if exc.body else None
    except (ValueError, TypeError):
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status":
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or "")
    elif exc.body:
        message = str(exc.body)[:300]
    if status == 0:
        return KubeFailure(None, reason, message or reason, True)
    return KubeFailure(status, reason, message or reason, status in _RETRYABLE_STATUSES)


class TlsSecretError(KeywardError):
    """Installing or reading the TLS Secret failed; ``retryable`` tells the activity
    whether Temporal should try again (always said by the raiser)."""

    failure_type = failures.TLS_SECRET_ERROR

    def __init__(self, message: str, *, retryable: bool,
                 failure_type: str | None = None) -> None:
        super().__init__(message, retryable=retryable, failure_type=failure_type)


def _failed(action: str, namespace: str, name: str,
            exc: ApiException | urllib3.exceptions.HTTPError) -> TlsSecretError:
    failure = kube_failure(exc)
    hint = ""
    if failure.status == 401:
        hint = " (the API server rejected the credentials: check the token or kubeconfig)"
    elif failure.status == 403:
        hint = (" (the service account needs get, create and update on secrets in "
                f"namespace {namespace})")
    return TlsSecretError(f"{action} Secret {namespace}/{name}: {failure.describe()}{hint}",
                          retryable=failure.retryable)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _tls_data(issued: IssuedCertificate) -> dict[str, bytes | str]:
    # Secret data travels base64-encoded in JSON; the client passes strings through.
    data: dict[str, bytes | str] = {CERT_KEY: _b64(issued.certificate_pem),
                                    PRIVATE_KEY_KEY: _b64(issued.private_key_pem)}
    if issued.ca_pem:
        data[CA_KEY] = _b64(issued.ca_pem)
    return data


def _read(core_v1: kubernetes.client.CoreV1Api, namespace: str, name: str,
          timeout: float) -> kubernetes.client.V1Secret | None:
    try:
        return core_v1.read_namespaced_secret(name, namespace, _request_timeout=timeout)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise _failed("reading", namespace, name, exc) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise _failed("reading", namespace, name, exc) from exc


def _resource_version(secret: kubernetes.client.V1Secret) -> str:
    return (secret.metadata.resource_version if secret.metadata else None) or ""


def install_tls_secret(core_v1: kubernetes.client.CoreV1Api, *, namespace: str, name: str,
                       issued: IssuedCertificate, labels: dict[str, str] | None = None,
                       max_conflict_retries: int = 5, request_timeout: float = 30.0) -> str:
    """Create or update Secret ``namespace/name`` to hold ``issued``; return its new
    resourceVersion.

    Each attempt reads the Secret and writes with the resourceVersion it read; a 409
    (someone wrote in between, or created it first) starts a new attempt, at most
    ``max_conflict_retries`` times. ``ca.crt`` is removed when ``issued`` has no CA, so
    a Secret never pairs a new certificate with a previous issuer's CA.
    """
    if max_conflict_retries < 0:
        raise ValueError("max_conflict_retries must be >= 0")
    ours = _tls_data(issued)
    for attempt in range(max_conflict_retries + 1):
        current = _read(core_v1, namespace, name, request_timeout)
        try:
            if current is None:
                body = kubernetes.client.V1Secret(
                    api_version="v1", kind="Secret", type=TLS_SECRET_TYPE, data=ours,
                    metadata=kubernetes.client.V1ObjectMeta(
                        name=name, namespace=namespace, labels=dict(labels or {}) or None))
                written = core_v1.create_namespaced_secret(namespace, body,
                                                           _request_timeout=request_timeout)
                action = "created"
            else:
                written = core_v1.replace_namespaced_secret(
                    name, namespace, _updated(current, ours, labels, namespace, name),
                    _request_timeout=request_timeout)
                action = "updated"
        except ApiException as exc:
            if exc.status == 409:
                # Conflict on replace, AlreadyExists on create: both mean "read again".
                _log.info("tls_secret_conflict", object=f"{namespace}/{name}",
                          attempt=attempt + 1, reason=kube_failure(exc).reason)
                continue
            raise _failed("writing", namespace, name, exc) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise _failed("writing", namespace, name, exc) from exc
        version = _resource_version(written)
        # Not "secret=": the log pipeline redacts any field named like a secret.
        _log.info("tls_secret_installed", object=f"{namespace}/{name}", action=action,
                  resource_version=version, attempts=attempt + 1)
        return version
    raise TlsSecretError(
        f"Secret {namespace}/{name} changed under us {max_conflict_retries + 1} times in a "
        "row (409 Conflict each time); giving up for now", retryable=True)


def _updated(current: kubernetes.client.V1Secret, ours: dict[str, bytes | str],
             labels: dict[str, str] | None, namespace: str, name: str,
             ) -> kubernetes.client.V1Secret:
    """``current`` with our keys and labels applied; its resourceVersion is kept, which
    is what makes the replace conditional."""
    if current.type != TLS_SECRET_TYPE:
        # A Secret's type is immutable: replacing would fail anyway, and silently
        # turning someone's Opaque Secret into ours is not ours to decide.
        raise TlsSecretError(
            f"Secret {namespace}/{name} exists with type {current.type!r}, not "
            f"{TLS_SECRET_TYPE!r}; delete it or configure another name", retryable=False)
    data: dict[str, bytes | str] = dict(current.data or {})
    data.pop(CA_KEY, None)
    data.update(ours)
    metadata = current.metadata or kubernetes.client.V1ObjectMeta(name=name)
    if labels:
        metadata.labels = {**(metadata.labels or {}), **labels}
    current.metadata = metadata
    current.data = data
    return current


def _decode(value: bytes | str | None) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def read_tls_secret(core_v1: kubernetes.client.CoreV1Api, namespace: str, name: str, *,
                    request_timeout: float = 30.0) -> IssuedCertificate | None:
    """The pair installed in Secret ``namespace/name``, or None when the Secret does not
    exist or holds no complete pair (so the caller issues one)."""
    secret = _read(core_v1, namespace, name, request_timeout)
    if secret is None:
        return None
    data = secret.data or {}
    cert, key = _decode(data.get(CERT_KEY)), _decode(data.get(PRIVATE_KEY_KEY))
    if cert is None or key is None:
        return None
    return IssuedCertificate(certificate_pem=cert, private_key_pem=key,
                             ca_pem=_decode(data.get(CA_KEY)))


__all__ = [
    "CA_KEY",
    "CERT_KEY",
    "PRIVATE_KEY_KEY",
    "TLS_SECRET_TYPE",
    "KubeFailure",
    "TlsSecretError",
    "install_tls_secret",
    "kube_failure",
    "read_tls_secret",
]
