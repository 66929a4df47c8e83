"""Activities that inspect, issue, install and verify certificates.

Issue, validate and install are **one** activity on purpose: the private key must
never travel through Temporal (activity results are stored in history, encrypted
or not). Only the certificate's public summary comes back to the workflow.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

from temporalio import activity
from temporalio.exceptions import ApplicationError

from keyward.config import (
    AzureKeyVaultInstall,
    CertificateSettings,
    FilesInstall,
    KubernetesSecretInstall,
    Settings,
)
from keyward.contracts import failures
from keyward.contracts.certificates import (
    INSPECT_CERTIFICATE,
    ISSUE_AND_INSTALL_CERTIFICATE,
    VERIFY_CERTIFICATE_SERVED,
    CertificateRef,
    InstalledCertificate,
    RenewedCertificate,
    VerifyRequest,
)
from keyward.errors import KeywardError
from keyward.issuers.base import Issuer, IssuerError
from keyward.issuers.factory import kubernetes_api_client
from keyward.metrics import CERTIFICATE_EXPIRY
from keyward.pki.install import install_pair, read_installed
from keyward.pki.types import CertificateSpec, IssuedCertificate
from keyward.pki.validate import CertificateValidationError, summarize, validate_pair
from keyward.temporal.failures import to_application_error

IssuerFactory = Callable[[str, CertificateSettings], Issuer]


def spec_for(name: str, cert: CertificateSettings) -> CertificateSpec:
    return CertificateSpec(name=name, common_name=cert.common_name, dns_names=cert.dns_names,
                           ip_addresses=cert.ip_addresses, usage=cert.usage,
                           lifetime=timedelta(hours=cert.lifetime_hours),
                           key_type=cert.key_type)


class CertificateActivities:
    def __init__(self, settings: Settings, issuers: IssuerFactory,
                 kube_client: Callable[[], Any] | None = None,
                 azure_options: dict[str, Any] | None = None) -> None:
        self._settings = settings
        self._issuers = issuers
        self._kube_client = kube_client
        #: Extra AzureKeyVaultIssuer/import arguments (credential, client_kwargs); tests
        #: point them at the emulator, production uses DefaultAzureCredential.
        self._azure_options = azure_options or {}

    def _kube(self) -> Any:
        """The Kubernetes ApiClient (tests inject one; production loads the pod's config)."""
        if self._kube_client is not None:
            return self._kube_client()
        return kubernetes_api_client()

    def _certificate(self, name: str) -> CertificateSettings:
        cert = self._settings.certificates.get(name)
        if cert is None:
            known = ", ".join(sorted(self._settings.certificates)) or "none"
            raise to_application_error(KeywardError(
                f"no certificate named {name!r} in the settings (configured: {known})",
                failure_type=failures.UNKNOWN_CERTIFICATE))
        return cert

    @activity.defn(name=INSPECT_CERTIFICATE.name)
    def inspect(self, ref: CertificateRef) -> InstalledCertificate:
        cert = self._certificate(ref.name)
        base = InstalledCertificate(
            name=ref.name, present=False, lifetime_seconds=int(cert.lifetime_hours * 3600),
            renew_before_seconds=_seconds(cert.renew_before_hours),
            critical_seconds=_seconds(cert.critical_hours))
        installed = self._read(cert)
        if installed is None:
            return base
        try:
            summary = validate_pair(installed.certificate_pem, installed.private_key_pem,
                                    ca_pem=installed.ca_pem, now=datetime.now(UTC),
                                    spec=spec_for(ref.name, cert),
                                    trust_anchor=_trust_anchor(ref.name, cert))
        except CertificateValidationError as exc:
            problem = "; ".join(exc.problems)
            if exc.summary is None:  # not even readable: renew, with nothing to report
                return dataclasses.replace(base, present=True, problem=problem)
            CERTIFICATE_EXPIRY.labels(certificate=ref.name).set(exc.summary.not_after.timestamp())
            return dataclasses.replace(
                base, present=True, serial=exc.summary.serial, subject=exc.summary.subject,
                not_before=exc.summary.not_before, not_after=exc.summary.not_after,
                problem=problem)
        CERTIFICATE_EXPIRY.labels(certificate=ref.name).set(summary.not_after.timestamp())
        return dataclasses.replace(base, present=True, serial=summary.serial,
                                   subject=summary.subject, not_before=summary.not_before,
                                   not_after=summary.not_after)

    @activity.defn(name=ISSUE_AND_INSTALL_CERTIFICATE.name)
    def issue_and_install(self, ref: CertificateRef) -> RenewedCertificate:
        """Issue → validate → install. A certificate that fails validation is never installed."""
        cert = self._certificate(ref.name)
        spec = spec_for(ref.name, cert)
        issuer = self._issuers(ref.name, cert)
        try:
            issued = issuer.issue(spec)
        except IssuerError as exc:
            raise to_application_error(IssuerError(
                f"{issuer.name} could not issue {ref.name!r}: {exc}",
                retryable=exc.retryable)) from exc
        activity.heartbeat("issued")
        try:
            summary = validate_pair(issued.certificate_pem, issued.private_key_pem,
                                    ca_pem=issued.ca_pem, now=datetime.now(UTC), spec=spec,
                                    trust_anchor=_trust_anchor(ref.name, cert))
        except CertificateValidationError as exc:
            raise to_application_error(KeywardError(
                f"certificate {ref.name!r} issued by {issuer.name} failed validation and was "
                f"NOT installed: {'; '.join(exc.problems)}",
                failure_type=failures.CERTIFICATE_INVALID)) from exc
        installed_to = self._install(ref.name, cert, issued)
        CERTIFICATE_EXPIRY.labels(certificate=ref.name).set(summary.not_after.timestamp())
        activity.logger.info("installed certificate %s serial %s (valid until %s) to %s",
                             ref.name, summary.serial, summary.not_after.isoformat(),
                             installed_to)
        return RenewedCertificate(name=ref.name, serial=summary.serial, subject=summary.subject,
                                  not_before=summary.not_before, not_after=summary.not_after,
                                  issuer=issuer.name, installed_to=installed_to)

    @activity.defn(name=VERIFY_CERTIFICATE_SERVED.name)
    def verify(self, request: VerifyRequest) -> str:
        """TLS handshake with the configured endpoint using what is installed now.

        A server certificate must be the one the endpoint serves; a client certificate
        must be accepted by the endpoint (mutual TLS completes).
        """
        cert = self._certificate(request.name)
        if not cert.verify_endpoint:
            return "no verify_endpoint configured"
        installed = self._read(cert)
        if installed is None:
            raise _verify_failed(f"{request.name}: nothing installed to verify")
        host, _, port = cert.verify_endpoint.rpartition(":")
        context = ssl.create_default_context()
        if installed.ca_pem:
            context.load_verify_locations(cadata=installed.ca_pem.decode())
        if cert.usage in ("client", "both") and isinstance(cert.install, FilesInstall):
            # The installed files themselves: no copy of the key is made anywhere.
            directory = cert.install.directory
            context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        try:
            with socket.create_connection((host, int(port)), timeout=10) as raw, \
                    context.wrap_socket(raw, server_hostname=host) as tls:
                served = tls.getpeercert(binary_form=True)
                _await_verdict(tls)
        except (OSError, ssl.SSLError) as exc:
            raise _verify_failed(f"TLS handshake with {cert.verify_endpoint} failed: "
                                 f"{exc}") from exc
        if cert.usage == "server" and served is not None:
            served_serial = summarize(_der_to_pem(served)).serial
            if served_serial != request.serial:
                raise _verify_failed(f"{cert.verify_endpoint} serves serial {served_serial},"
                                     f" not the installed {request.serial} (not reloaded?)")
        return f"handshake with {cert.verify_endpoint} succeeded"

    def _read(self, cert: CertificateSettings) -> IssuedCertificate | None:
        match cert.install:
            case FilesInstall(directory=directory):
                return read_installed(directory)
            case KubernetesSecretInstall() as secret:
                from kubernetes import client  # noqa: PLC0415

                from keyward.pki.k8s_secret import read_tls_secret  # noqa: PLC0415

                return read_tls_secret(client.CoreV1Api(self._kube()),
                                       secret.kubernetes_namespace, secret.kubernetes_secret)
            case AzureKeyVaultInstall() as vault:
                from keyward.issuers.azure_keyvault import AzureKeyVaultIssuer  # noqa: PLC0415

                reader = AzureKeyVaultIssuer(vault.azure_vault_url, vault.azure_certificate_name,
                                             mode="self", **self._azure_options)
                try:
                    return reader.read_installed()
                except IssuerError as exc:
                    raise to_application_error(IssuerError(
                        f"reading {vault.azure_certificate_name!r} from Key Vault failed: "
                        f"{exc}", retryable=exc.retryable,
                        failure_type=failures.INSPECT_FAILED)) from exc
            case unknown:
                assert_never(unknown)

    def _install(self, name: str, cert: CertificateSettings, issued: IssuedCertificate) -> str:
        match cert.install:
            case FilesInstall(directory=directory):
                install_pair(directory, issued)
                return str(directory)
            case KubernetesSecretInstall(kubernetes_namespace=namespace,
                                         kubernetes_secret=secret):
                from kubernetes import client  # noqa: PLC0415

                from keyward.pki.k8s_secret import (  # noqa: PLC0415
                    TlsSecretError,
                    install_tls_secret,
                )

                try:
                    version = install_tls_secret(
                        client.CoreV1Api(self._kube()), namespace=namespace, name=secret,
                        issued=issued, labels={"app.kubernetes.io/managed-by": "keyward"})
                except TlsSecretError as exc:
                    raise to_application_error(TlsSecretError(
                        f"installing {name!r} into Secret {namespace}/{secret} failed: {exc}",
                        retryable=exc.retryable,
                        failure_type=failures.INSTALL_FAILED)) from exc
                return f"secret {namespace}/{secret}@{version}"
            case AzureKeyVaultInstall() as vault:
                from keyward.issuers.azure_keyvault import import_to_key_vault  # noqa: PLC0415

                try:
                    return import_to_key_vault(vault.azure_vault_url,
                                               vault.azure_certificate_name, issued,
                                               **self._azure_options)
                except IssuerError as exc:
                    raise to_application_error(IssuerError(
                        f"importing {name!r} into Key Vault failed: {exc}",
                        retryable=exc.retryable,
                        failure_type=failures.INSTALL_FAILED)) from exc
            case unknown:
                assert_never(unknown)


def _await_verdict(tls: ssl.SSLSocket) -> None:
    """Wait briefly for the server's judgement of our client certificate.

    In TLS 1.3 the client finishes its handshake before the server has checked the
    client certificate; a refusal arrives as an alert on the first read. Silence (the
    server waits for us to speak, as a gRPC server does) or a clean close means accepted.
    """
    tls.settimeout(2.0)
    try:
        tls.recv(1)
    except (TimeoutError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
        return


def _trust_anchor(name: str, cert: CertificateSettings) -> bytes | None:
    """The operator's pinned anchor, read afresh (it may be rotated on disk), if set."""
    if cert.trust_anchor is None:
        return None
    try:
        return cert.trust_anchor.read_bytes()
    except OSError as exc:
        # Unreadable pin: refuse rather than fall back to trusting the issuer's own CA.
        raise to_application_error(KeywardError(
            f"certificates.{name}.trust_anchor {cert.trust_anchor} cannot be read: "
            f"{exc.strerror}", failure_type=failures.TRUST_ANCHOR_UNREADABLE)) from None


def _verify_failed(message: str) -> ApplicationError:
    """The endpoint may not have reloaded yet: retried, unlike the other refusals."""
    return to_application_error(KeywardError(message, retryable=True,
                                             failure_type=failures.VERIFY_FAILED))


def _seconds(hours: float | None) -> int | None:
    return None if hours is None else int(hours * 3600)


def _der_to_pem(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode()
