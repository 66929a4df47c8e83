"""Certificates: the ``RenewCertificate`` workflow and its inspect, issue-and-install and
verify activities.

Only public summaries cross Temporal: the private key never leaves the activity that
issues and installs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from keyward.contracts.contract import ActivityContract, WorkflowContract


@dataclass(frozen=True)
class CertificateRef:
    name: str


@dataclass(frozen=True)
class InstalledCertificate:
    """What is installed now, and the renewal settings the workflow decides with."""

    name: str
    present: bool
    lifetime_seconds: int
    renew_before_seconds: int | None
    critical_seconds: int | None
    serial: str | None = None
    subject: str | None = None
    not_before: datetime | None = None
    not_after: datetime | None = None
    #: Why what is installed is unusable (then it is renewed regardless of its dates).
    problem: str | None = None


@dataclass(frozen=True)
class RenewedCertificate:
    name: str
    serial: str
    subject: str
    not_before: datetime
    not_after: datetime
    issuer: str
    installed_to: str


@dataclass(frozen=True)
class VerifyRequest:
    name: str
    serial: str


@dataclass(frozen=True)
class RenewCertificateInput:
    name: str
    #: Renew even outside the renewal window (``starter.py renew-cert``).
    force: bool = False


@dataclass(frozen=True)
class RenewCertificateResult:
    name: str
    renewed: bool
    serial: str | None
    not_after: datetime | None
    reason: str
    critical: bool = False


INSPECT_CERTIFICATE = ActivityContract("InspectCertificate", CertificateRef,
                                       InstalledCertificate)
#: Issue → validate → install, in one activity so the private key never enters Temporal.
ISSUE_AND_INSTALL_CERTIFICATE = ActivityContract("IssueAndInstallCertificate", CertificateRef,
                                                 RenewedCertificate)
#: A TLS handshake with the configured endpoint; the result says what was checked.
VERIFY_CERTIFICATE_SERVED = ActivityContract("VerifyCertificateServed", VerifyRequest, str)

RENEW_CERTIFICATE_WORKFLOW = WorkflowContract("RenewCertificate", RenewCertificateInput,
                                              RenewCertificateResult)
