"""What the CA-rotation tests of every backend share: the worker that runs a rotation, and
issuing and reading the leaves a CA signs (each backend's test file builds the activities)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from cryptography import x509
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.authorities import CaRotationActivities
from activities.certificates import CertificateActivities
from keyward.config import Settings
from keyward.contracts.certificates import CertificateRef
from keyward.pki.install import read_installed
from workflows.renew_certificate import RenewCertificate
from workflows.rotate_ca import RotateCertificateAuthority


@asynccontextmanager
async def rotation_worker(client: Client, settings: Settings,
                          certificates: CertificateActivities,
                          authorities: CaRotationActivities) -> AsyncIterator[None]:
    """A worker with the rotation workflow, its child renewals and their activities."""
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        async with Worker(client, task_queue=settings.temporal.task_queue,
                          workflows=[RotateCertificateAuthority, RenewCertificate],
                          activities=[certificates.inspect, certificates.issue_and_install,
                                      certificates.verify, authorities.plan,
                                      authorities.stage, authorities.publish,
                                      authorities.activate, authorities.verify_leaves],
                          activity_executor=pool, max_concurrent_activities=4):
            yield


def issue_leaves(activities: CertificateActivities, leaves: Iterable[str]) -> None:
    """Issue and install each leaf now, as its renewal's activity does."""
    for name in leaves:
        ActivityEnvironment().run(activities.issue_and_install, CertificateRef(name))


def leaf_issuers(settings: Settings, leaves: Iterable[str]) -> set[str]:
    """The issuer names of the leaves installed in their files directories."""
    issuers = set()
    for name in leaves:
        pair = read_installed(settings.certificates[name].install.directory)  # type: ignore[union-attr]
        assert pair is not None
        issuers.add(x509.load_pem_x509_certificates(pair.certificate_pem)[0]
                    .issuer.rfc4514_string())
    return issuers
