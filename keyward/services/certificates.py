"""Inspecting, renewing and verifying certificates: the operations behind the certificate
activities and ``starter.py status``.

Issue, validate and install are **one** operation on purpose: the private key must never
travel through Temporal (activity results are stored in history, encrypted or not). Only
the certificate's public summary comes back.

Synchronous, as the issuers' and stores' SDKs are. Every failure is a
:class:`~keyward.errors.KeywardError` with a failure type from
:mod:`keyward.contracts.failures`; activities turn it into a Temporal failure.
"""

from __future__ import annotations

import dataclasses
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from keyward.config import CertificateSettings, Settings
from keyward.contracts import failures
from keyward.contracts.certificates import InstalledCertificate, RenewedCertificate
from keyward.errors import KeywardError
from keyward.issuers.base import Issuer, IssuerError
from keyward.metrics import CERTIFICATE_EXPIRY
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import CertificateValidationError, summarize, validate_pair
from keyward.stores.base import CertificateStore

IssuerFactory = Callable[[str, CertificateSettings], Issuer]
StoreFactory = Callable[[str, CertificateSettings], CertificateStore]


def spec_for(name: str, cert: CertificateSettings) -> CertificateSpec:
    """What to ask an issuer for, from a certificate's settings."""
    return CertificateSpec(name=name, common_name=cert.common_name, dns_names=cert.dns_names,
                           ip_addresses=cert.ip_addresses, usage=cert.usage,
                           lifetime=timedelta(hours=cert.lifetime_hours),
                           key_type=cert.key_type, organization=cert.organization,
                           organizational_unit=cert.organizational_unit, country=cert.country,
                           state=cert.state, locality=cert.locality)


class Certificates:
    """The certificates of one settings file, each with the issuer and store it names."""

    def __init__(self, settings: Settings, issuers: IssuerFactory,
                 stores: StoreFactory) -> None:
        self._settings = settings
        self._issuers = issuers
        self._stores = stores

    def names(self) -> list[str]:
        return sorted(self._settings.certificates)

    def settings_of(self, name: str) -> CertificateSettings:
        cert = self._settings.certificates.get(name)
        if cert is None:
            known = ", ".join(self.names()) or "none"
            raise KeywardError(f"no certificate named {name!r} in the settings "
                               f"(configured: {known})",
                               failure_type=failures.UNKNOWN_CERTIFICATE)
        return cert

    def inspect(self, name: str) -> InstalledCertificate:
        """What is installed now and whether it is still right for its settings.

        A pair that fails validation is reported with its problem (so the workflow renews
        it), not raised; only a store that cannot be read raises.
        """
        cert = self.settings_of(name)
        base = InstalledCertificate(
            name=name, present=False, lifetime_seconds=int(cert.lifetime_hours * 3600),
            renew_before_seconds=_seconds(cert.renew_before_hours),
            critical_seconds=_seconds(cert.critical_hours))
        installed = self._stores(name, cert).read()
        if installed is None:
            return base
        try:
            summary = validate_pair(installed.certificate_pem, installed.private_key_pem,
                                    ca_pem=installed.ca_pem, now=datetime.now(UTC),
                                    spec=spec_for(name, cert),
                                    trust_anchor=_trust_anchor(name, cert))
        except CertificateValidationError as exc:
            problem = "; ".join(exc.problems)
            if exc.summary is None:  # not even readable: renew, with nothing to report
                return dataclasses.replace(base, present=True, problem=problem)
            CERTIFICATE_EXPIRY.labels(certificate=name).set(exc.summary.not_after.timestamp())
            return dataclasses.replace(
                base, present=True, serial=exc.summary.serial, subject=exc.summary.subject,
                not_before=exc.summary.not_before, not_after=exc.summary.not_after,
                problem=problem)
        CERTIFICATE_EXPIRY.labels(certificate=name).set(summary.not_after.timestamp())
        return dataclasses.replace(base, present=True, serial=summary.serial,
                                   subject=summary.subject, not_before=summary.not_before,
                                   not_after=summary.not_after)

    def issue_and_install(self, name: str, *,
                          progress: Callable[[str], None] = lambda _step: None,
                          ) -> RenewedCertificate:
        """Issue → validate → install. A certificate that fails validation is never installed.

        ``progress`` hears each finished step (the activity heartbeats with it).
        """
        cert = self.settings_of(name)
        spec = spec_for(name, cert)
        issuer = self._issuers(name, cert)
        try:
            issued = issuer.issue(spec)
        except IssuerError as exc:
            raise IssuerError(f"{issuer.name} could not issue {name!r}: {exc}",
                              retryable=exc.retryable) from exc
        progress("issued")
        try:
            summary = validate_pair(issued.certificate_pem, issued.private_key_pem,
                                    ca_pem=issued.ca_pem, now=datetime.now(UTC), spec=spec,
                                    trust_anchor=_trust_anchor(name, cert))
        except CertificateValidationError as exc:
            raise KeywardError(
                f"certificate {name!r} issued by {issuer.name} failed validation and was "
                f"NOT installed: {'; '.join(exc.problems)}",
                failure_type=failures.CERTIFICATE_INVALID) from exc
        installed_to = self._stores(name, cert).install(issued)
        CERTIFICATE_EXPIRY.labels(certificate=name).set(summary.not_after.timestamp())
        return RenewedCertificate(name=name, serial=summary.serial, subject=summary.subject,
                                  not_before=summary.not_before, not_after=summary.not_after,
                                  issuer=issuer.name, installed_to=installed_to)

    def verify(self, name: str, serial: str) -> str:
        """TLS handshake with the configured endpoint using what is installed now.

        A server certificate must be the one the endpoint serves (``serial``); a client
        certificate must be accepted by the endpoint (mutual TLS completes). A failure is
        retryable: the endpoint may not have reloaded yet.
        """
        cert = self.settings_of(name)
        if not cert.verify_endpoint:
            return "no verify_endpoint configured"
        store = self._stores(name, cert)
        installed = store.read()
        if installed is None:
            raise _verify_failed(f"{name}: nothing installed to verify")
        host, _, port = cert.verify_endpoint.rpartition(":")
        context = ssl.create_default_context()
        if installed.ca_pem:
            context.load_verify_locations(cadata=installed.ca_pem.decode())
        key_files = store.key_files()
        if cert.usage in ("client", "both") and key_files is not None:
            # The installed files themselves: no copy of the key is made anywhere.
            context.load_cert_chain(*key_files)
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
            if served_serial != serial:
                raise _verify_failed(f"{cert.verify_endpoint} serves serial {served_serial},"
                                     f" not the installed {serial} (not reloaded?)")
        return f"handshake with {cert.verify_endpoint} succeeded"


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
        raise KeywardError(
            f"certificates.{name}.trust_anchor {cert.trust_anchor} cannot be read: "
            f"{exc.strerror}", failure_type=failures.TRUST_ANCHOR_UNREADABLE) from None


def _verify_failed(message: str) -> KeywardError:
    return KeywardError(message, retryable=True, failure_type=failures.VERIFY_FAILED)


def _seconds(hours: float | None) -> int | None:
    return None if hours is None else int(hours * 3600)


def _der_to_pem(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode()
