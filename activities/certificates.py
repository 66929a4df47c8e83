"""Activities that inspect, issue, install and verify certificates, adapting
:class:`keyward.services.certificates.Certificates` to Temporal.

Issue, validate and install are **one** activity on purpose: the private key must
never travel through Temporal (activity results are stored in history, encrypted
or not). Only the certificate's public summary comes back to the workflow.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from temporalio import activity

from keyward.config import Settings
from keyward.contracts.certificates import (
    INSPECT_CERTIFICATE,
    ISSUE_AND_INSTALL_CERTIFICATE,
    VERIFY_CERTIFICATE_SERVED,
    CertificateRef,
    InstalledCertificate,
    RenewedCertificate,
    VerifyRequest,
)
from keyward.services.certificates import Certificates, IssuerFactory
from keyward.stores.factory import store_for
from keyward.temporal.failures import as_temporal_failure


class CertificateActivities:
    """Temporal's view of :class:`~keyward.services.certificates.Certificates`.

    ``kube_client`` makes the Kubernetes ApiClient and ``azure_options`` are the Key Vault
    ``credential``/``client_kwargs`` for the stores (tests point them at the emulators;
    production uses the pod's config and ``DefaultAzureCredential``).
    """

    def __init__(self, settings: Settings, issuers: IssuerFactory,
                 kube_client: Callable[[], Any] | None = None,
                 azure_options: dict[str, Any] | None = None) -> None:
        stores = functools.partial(store_for, kube_client=kube_client,
                                   azure_options=azure_options)
        self._certificates = Certificates(settings, issuers, stores)

    @activity.defn(name=INSPECT_CERTIFICATE.name)
    def inspect(self, ref: CertificateRef) -> InstalledCertificate:
        return as_temporal_failure(lambda: self._certificates.inspect(ref.name))

    @activity.defn(name=ISSUE_AND_INSTALL_CERTIFICATE.name)
    def issue_and_install(self, ref: CertificateRef) -> RenewedCertificate:
        """Issue → validate → install. A certificate that fails validation is never installed."""
        renewed = as_temporal_failure(lambda: self._certificates.issue_and_install(
            ref.name, progress=activity.heartbeat))
        activity.logger.info("installed certificate %s serial %s (valid until %s) to %s",
                             ref.name, renewed.serial, renewed.not_after.isoformat(),
                             renewed.installed_to)
        return renewed

    @activity.defn(name=VERIFY_CERTIFICATE_SERVED.name)
    def verify(self, request: VerifyRequest) -> str:
        """TLS handshake with the configured endpoint using what is installed now."""
        return as_temporal_failure(lambda: self._certificates.verify(request.name, request.serial))
