"""Issue certificates through cert-manager, one ``CertificateRequest`` per issuance.

We use a ``CertificateRequest`` rather than a ``Certificate`` because keyward owns the
renewal schedule, the private key and where the pair goes: a ``Certificate`` would
make cert-manager own all three and write its own Secret. With a CertificateRequest
the private key is generated here and never leaves this process; only the CSR goes
to the cluster, and any issuer cert-manager supports (CA, Vault, Venafi, ACME,
external issuers) signs it.

An issuance is: generate a key, build a CSR, create the request, poll until
cert-manager reports a terminal condition, delete the request. cert-manager's
conditions map onto ``IssuerError.retryable`` like this:

* ``Ready=True``: issued.
* ``Denied=True`` (an approver said no), ``InvalidRequest=True`` (the issuer will not
  sign this request) and ``Ready=False`` with reason ``Failed`` or ``Denied`` are
  permanent for this request: non-retryable, carrying cert-manager's message. The
  next scheduled renewal check tries again; Temporal retrying at once would only
  repeat the refusal.
* no terminal condition within ``timeout`` (no approver running, the Issuer missing
  or not ready, a slow ACME order): retryable, naming the last state seen.
* API server unreachable, 429 or 5xx: retryable. 401/403 (RBAC) and 404 (the CRD is
  not installed, or the namespace does not exist): non-retryable with a hint, because
  retrying cannot fix a cluster's configuration.

The CSR carries only subject and SANs; requested key usages live in ``spec.usages``
alone. cert-manager's webhook rejects a request whose CSR has KeyUsage/ExtKeyUsage
extensions that differ from ``spec.usages``, so one source of truth avoids that.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import time
from datetime import timedelta
from typing import Any, Final

import kubernetes.client
import urllib3.exceptions
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from kubernetes.client.exceptions import ApiException

from keyward.issuers.base import IssuerError
from keyward.log import get_logger
from keyward.pki.k8s_secret import kube_failure
from keyward.pki.keys import (
    PrivateKey,
    PrivateKeyError,
    generate_private_key,
    private_key_pem,
    public_key_der,
)
from keyward.pki.subject import subject_name
from keyward.pki.types import CertificateSpec, IssuedCertificate, Usage

GROUP: Final = "cert-manager.io"
VERSION: Final = "v1"
PLURAL: Final = "certificaterequests"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"

_EKUS: Final[dict[Usage, tuple[str, ...]]] = {
    "client": ("client auth",),
    "server": ("server auth",),
    "both": ("client auth", "server auth"),
}
# Ready=False reasons cert-manager documents as final for a request
# (pkg/apis/certmanager/v1/types_certificaterequest.go).
_TERMINAL_READY_REASONS: Final = frozenset({"Failed", "Denied"})
_NOT_DNS_LABEL: Final = re.compile(r"[^a-z0-9-]+")

_log = get_logger("keyward.issuers.cert_manager")

Json = dict[str, Any]


def go_duration(value: timedelta) -> str:
    """``value`` as Go's ``time.Duration.String()`` writes it (90 days: "2160h0m0s"),
    the form ``spec.duration`` (a ``metav1.Duration``) is parsed from."""
    micros = value // timedelta(microseconds=1)
    if micros < 1_000_000:
        raise ValueError(f"certificate lifetime {value} is shorter than a second")
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    text = str(seconds) + (f".{fraction:06d}".rstrip("0") if fraction else "") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def requested_usages(spec: CertificateSpec) -> list[str]:
    """cert-manager ``KeyUsage`` strings for ``spec``.

    "key encipherment" only for RSA keys: it means RSA key transport, and RFC 5480
    section 3 does not allow it for EC keys (Go's TLS stack sets it for RSA only, too).
    """
    usages = ["digital signature"]
    if spec.key_type.startswith("rsa-"):
        usages.append("key encipherment")
    return usages + list(_EKUS[spec.usage])


def build_csr(spec: CertificateSpec, key: PrivateKey) -> bytes:
    """A PEM CSR with the spec's subject (C, ST, L, O, OU, CN) and DNS/IP SANs (no usage
    extensions). A CertificateRequest has no ``spec.subject`` (a Certificate's
    ``subject.organizations`` and the rest end up in the CSR the same way): the issuer
    decides what of the CSR's subject it signs. The CA issuer copies it; a Vault issuer
    signs through a role whose own fields decide O, OU and the rest; ACME keeps only names.
    What comes back is checked against the spec before it is installed."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject_name(spec))
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in spec.dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ip_addresses]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _condition(status: Json, kind: str) -> Json | None:
    for item in status.get("conditions") or []:
        if isinstance(item, dict) and item.get("type") == kind:
            return item
    return None


def _says(condition: Json | None) -> str:
    if condition is None:
        return ""
    reason, message = condition.get("reason") or "", condition.get("message") or ""
    return f"{reason}: {message}" if reason and message else reason or message


def _decode_pem(value: object) -> bytes | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


class CertManagerIssuer:
    """Issues certificates from a cert-manager Issuer or ClusterIssuer.

    Synchronous, like the ``kubernetes`` client: run :meth:`issue` in a thread-pool
    activity. The service account needs create, get and delete on
    ``certificaterequests.cert-manager.io`` in ``namespace``.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, *, namespace: str,
                 issuer_name: str, issuer_kind: str = "Issuer",
                 issuer_group: str = GROUP, poll_interval: float = 1.0,
                 timeout: float = 120.0, name_prefix: str = "keyward-",
                 request_timeout: float = 30.0) -> None:
        if not namespace or not issuer_name:
            raise ValueError("namespace and issuer_name are required")
        if poll_interval <= 0 or timeout <= 0 or request_timeout <= 0:
            raise ValueError("poll_interval, timeout and request_timeout must be positive")
        self._api = kubernetes.client.CustomObjectsApi(api_client)
        self.namespace = namespace
        self.issuer_ref = {"name": issuer_name, "kind": issuer_kind, "group": issuer_group}
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._name_prefix = name_prefix
        self._request_timeout = request_timeout

    @property
    def name(self) -> str:
        return "cert-manager"

    def issue(self, spec: CertificateSpec) -> IssuedCertificate:
        """Issue a certificate for ``spec`` and return it with its new private key."""
        try:
            key = generate_private_key(spec.key_type)
            body = self.request_body(spec, build_csr(spec, key))
        except (PrivateKeyError, ValueError) as exc:
            # A key type or lifetime no request can fix: the settings must change.
            raise IssuerError(f"cannot request {spec.name!r} from cert-manager: {exc}",
                              retryable=False) from exc
        name = self._create(body)
        try:
            status = self._wait(name)
        except IssuerError as exc:
            # A request that timed out may still be signed later; a retry creates a
            # new one, so drop this one. Refused requests stay for `kubectl describe`.
            if exc.retryable:
                self._delete(name)
            raise
        self._delete(name)
        return self._result(name, status, key)

    def request_body(self, spec: CertificateSpec, csr_pem: bytes) -> Json:
        """The CertificateRequest to create for ``spec`` (cert-manager.io/v1)."""
        slug = _NOT_DNS_LABEL.sub("-", spec.name.lower()).strip("-")[:40].strip("-")
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "CertificateRequest",
            "metadata": {
                # The API server appends a random suffix: no name clashes between
                # replicas or retries, and no client-side randomness to get wrong.
                "generateName": f"{self._name_prefix}{slug or 'cert'}-",
                "namespace": self.namespace,
                "labels": {MANAGED_BY_LABEL: "keyward"},
            },
            "spec": {
                "request": base64.b64encode(csr_pem).decode("ascii"),
                "issuerRef": dict(self.issuer_ref),
                "duration": go_duration(spec.lifetime),
                "usages": requested_usages(spec),
            },
        }

    def _describe_issuer(self) -> str:
        return f"{self.issuer_ref['kind']} {self.issuer_ref['name']}"

    def _create(self, body: Json) -> str:
        try:
            created = self._api.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, body,
                _request_timeout=self._request_timeout)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            failure = kube_failure(exc)
            where = f"creating a CertificateRequest in namespace {self.namespace}"
            if failure.status == 404:
                raise IssuerError(
                    f"{where}: {failure.describe()} (is cert-manager installed, with the "
                    f"{PLURAL}.{GROUP} CRD, and does namespace {self.namespace} exist?)",
                    retryable=False) from exc
            if failure.status == 401:
                raise IssuerError(
                    f"{where}: {failure.describe()} (the API server rejected the credentials: "
                    "check the service account token or kubeconfig)", retryable=False) from exc
            if failure.status == 403:
                raise IssuerError(
                    f"{where}: {failure.describe()} (the service account needs create, get "
                    f"and delete on {PLURAL}.{GROUP} in namespace {self.namespace})",
                    retryable=False) from exc
            if failure.status == 409:  # a generateName collision: try again
                raise IssuerError(f"{where}: {failure.describe()}", retryable=True) from exc
            raise IssuerError(f"{where}: {failure.describe()}",
                              retryable=failure.retryable) from exc
        name = str(created.get("metadata", {}).get("name", "")) \
            if isinstance(created, dict) else ""
        if not name:
            raise IssuerError("the API server created a CertificateRequest but did not "
                              "return its name", retryable=True)
        _log.info("certificate_request_created", object=f"{self.namespace}/{name}",
                  issuer=self._describe_issuer())
        return name

    def _wait(self, name: str) -> Json:
        """Poll until the request is issued (return its status) or refused (raise)."""
        deadline = time.monotonic() + self._timeout
        last = "not read yet"
        while True:
            time.sleep(max(0.0, min(self._poll_interval, deadline - time.monotonic())))
            try:
                found = self._api.get_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name,
                    _request_timeout=self._request_timeout)
            except (ApiException, urllib3.exceptions.HTTPError) as exc:
                failure = kube_failure(exc)
                if failure.status == 404:
                    raise IssuerError(f"CertificateRequest {self.namespace}/{name} disappeared "
                                      f"while waiting for it: {failure.describe()}",
                                      retryable=True) from exc
                if not failure.retryable:
                    raise IssuerError(f"reading CertificateRequest {self.namespace}/{name}: "
                                      f"{failure.describe()}", retryable=False) from exc
                # A blip while cert-manager works: keep waiting until the deadline.
                last = failure.describe()
            else:
                status = found.get("status") if isinstance(found, dict) else None
                outcome = self._check(name, status if isinstance(status, dict) else {})
                if isinstance(outcome, dict):
                    return outcome
                last = outcome
            if time.monotonic() >= deadline:
                raise IssuerError(
                    f"CertificateRequest {self.namespace}/{name} for "
                    f"{self._describe_issuer()} not ready after {self._timeout:g}s; last "
                    f"state: {last}", retryable=True)

    def _check(self, name: str, status: Json) -> Json | str:
        """The status when issued, a description of the wait when pending; raises when
        cert-manager has refused the request for good."""
        where = f"CertificateRequest {self.namespace}/{name} for {self._describe_issuer()}"
        denied = _condition(status, "Denied")
        if denied is not None and denied.get("status") == "True":
            raise IssuerError(f"{where} was denied: {_says(denied)}", retryable=False)
        invalid = _condition(status, "InvalidRequest")
        if invalid is not None and invalid.get("status") == "True":
            raise IssuerError(f"{where} is invalid: {_says(invalid)}", retryable=False)
        ready = _condition(status, "Ready")
        if ready is not None and ready.get("status") == "True":
            return status
        if ready is not None and ready.get("status") == "False" and (
                ready.get("reason") in _TERMINAL_READY_REASONS or status.get("failureTime")):
            raise IssuerError(f"{where} failed: {_says(ready)}", retryable=False)
        if _condition(status, "Approved") is None:
            return ("not approved yet (is cert-manager's approver, or your policy approver, "
                    "running for this issuer?)" + (f"; Ready: {_says(ready)}" if ready else ""))
        return f"approved, Ready: {_says(ready) or 'no condition yet'}"

    def _result(self, name: str, status: Json, key: PrivateKey) -> IssuedCertificate:
        where = f"CertificateRequest {self.namespace}/{name}"
        chain = _decode_pem(status.get("certificate"))
        if chain is None:
            raise IssuerError(f"{where} is Ready but status.certificate is missing or not "
                              "base64", retryable=False)
        try:
            leaf = x509.load_pem_x509_certificates(chain)[0]
        except ValueError as exc:
            raise IssuerError(f"{where} returned an unreadable certificate: {exc}",
                              retryable=False) from exc
        try:
            same_key = public_key_der(leaf.public_key()) == public_key_der(key)
        except PrivateKeyError:  # a key type we never asked for
            same_key = False
        if not same_key:
            raise IssuerError(f"{where} returned a certificate for a different key",
                              retryable=False)
        _log.info("certificate_request_issued", object=f"{self.namespace}/{name}",
                  serial=f"{leaf.serial_number:x}",
                  not_after=leaf.not_valid_after_utc.isoformat())
        return IssuedCertificate(
            certificate_pem=chain, private_key_pem=private_key_pem(key),
            ca_pem=_decode_pem(status.get("ca")))

    def _delete(self, name: str) -> None:
        # Best effort: a leftover request costs nothing but clutter, and failing an
        # issuance that worked because cleanup failed would throw away a good cert.
        try:
            self._api.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name,
                _request_timeout=self._request_timeout)
        except (ApiException, urllib3.exceptions.HTTPError) as exc:
            _log.warning("certificate_request_delete_failed",
                         object=f"{self.namespace}/{name}", error=kube_failure(exc).describe())


__all__ = ["CertManagerIssuer", "build_csr", "go_duration", "requested_usages"]
