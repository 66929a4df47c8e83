"""mTLS in the embedded local stack: a local CA, a gateway, and a short-lived worker certificate.

``python worker.py --dev`` puts the worker behind the same kind of front a
production cluster (or Temporal Cloud) has: an mTLS gateway that requires a
client certificate from the local CA and closes every connection after a maximum
age. The worker's client certificate lives a few minutes; the ``RenewCertificate``
schedule renews it through the local CA, and the reload hook hands the running
worker a client built from the new pair. Nothing here is dev-only code in the
worker: it is the same settings (``temporal.tls_*``, ``[certificates.<name>]``)
an operator would write, filled in for the stack.

The CLI, ``starter.py`` and the Web UI keep using the dev server's plain port on
loopback: the gateway exists to exercise the worker's certificate life cycle.

The local CA is rotatable like an operator's (``starter.py rotate-ca local``): every
process trusts ``pki/ca-bundle.pem`` (the gateway's client CA, the worker's server CA),
not ``ca.crt``, which is only what the CA signs with and changes at the switch; the
gateway's server certificate is a ``[certificates.keyward-gateway]`` entry signed by the
same CA, so the rotation renews it with the worker's, and ``[certificate_authorities.local]``
names the CA, the bundle and the stack's short soak and grace.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from keyward.config import (
    CertificateSettings,
    FilesInstall,
    LocalCaIssuerSettings,
    Settings,
    TemporalSettings,
)
from keyward.config.authorities import CertificateAuthoritySettings
from keyward.errors import StartupError
from keyward.log import get_logger
from keyward.pki.bootstrap import (
    CA_CERT,
    CA_KEY,
    bootstrap_local_pki,
    client_spec,
    issue_pair,
    server_spec,
)
from keyward.pki.ca import CertificateAuthority, utc
from keyward.pki.install import atomic_write, read_installed
from keyward.pki.validate import CertificateValidationError, validate_pair
from keyward.trust.files import FileTrustPoint
from keyward_devstack.mtls_gateway import GatewayConfig, GatewayError, MtlsGateway

#: The ``[certificates.<name>]`` entry the stack adds for the worker's own client certificate.
DEV_CLIENT_CERTIFICATE = "keyward-worker"
#: The ``[certificates.<name>]`` entry for the gateway's server certificate.
DEV_GATEWAY_CERTIFICATE = "keyward-gateway"
#: The ``[certificate_authorities.<name>]`` entry for the stack's CA.
DEV_CERTIFICATE_AUTHORITY = "local"
#: Every certificate the stack adds (and renews by a schedule of its own).
DEV_CERTIFICATES = (DEV_CLIENT_CERTIFICATE, DEV_GATEWAY_CERTIFICATE)
#: Memo marker on schedules the stack manages, so ``schedules apply`` leaves them alone.
MANAGED_BY = "worker --dev"
SERVER_NAME = "localhost"
#: The gateway's server certificate is replaced at start when it has less than this (or a
#: third of its lifetime, when that is shorter: the schedule renews it then) left.
SERVER_MIN_REMAINING = timedelta(days=30)
#: The gateway's server certificate lifetime when none is given (devstack's default).
DEFAULT_SERVER_LIFETIME = timedelta(minutes=60)

_log = get_logger("keyward_devstack.mtls")


@dataclass(frozen=True)
class DevPki:
    """Where the stack's certificates live (``<state_dir>/pki``)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / CA_CERT

    @property
    def ca_key(self) -> Path:
        return self.directory / CA_KEY

    @property
    def bundle(self) -> Path:
        """The CA bundle every process of the stack trusts (old + new during a rotation)."""
        return self.directory / "ca-bundle.pem"

    @property
    def server(self) -> Path:
        return self.directory / "server"

    @property
    def client(self) -> Path:
        return self.directory / "client"


def client_certificate_settings(pki: DevPki, lifetime: timedelta,
                                verify_endpoint: str) -> CertificateSettings:
    """The worker certificate as an operator would configure it for the local CA."""
    return CertificateSettings(
        common_name=DEV_CLIENT_CERTIFICATE, usage="client",
        issuer=LocalCaIssuerSettings(ca_cert=pki.ca_cert, ca_key=pki.ca_key),
        install=FilesInstall(directory=pki.client),
        lifetime_hours=lifetime.total_seconds() / 3600, verify_endpoint=verify_endpoint)


def gateway_certificate_settings(pki: DevPki, lifetime: timedelta,
                                 host: str) -> CertificateSettings:
    """The gateway's server certificate, renewed through the local CA like the worker's."""
    return CertificateSettings(
        common_name=SERVER_NAME, dns_names=(SERVER_NAME,), ip_addresses=(host,),
        usage="server", issuer=LocalCaIssuerSettings(ca_cert=pki.ca_cert, ca_key=pki.ca_key),
        install=FilesInstall(directory=pki.server),
        lifetime_hours=lifetime.total_seconds() / 3600)


def certificate_authority_settings(pki: DevPki, *, soak: timedelta,
                                   grace: timedelta) -> CertificateAuthoritySettings:
    """The stack's CA as ``RotateCertificateAuthority`` sees it: files, bundle, timings."""
    return CertificateAuthoritySettings(
        ca_cert=pki.ca_cert, ca_key=pki.ca_key, trust_bundles=(pki.bundle,),
        soak_seconds=soak.total_seconds(), grace_hours=grace.total_seconds() / 3600)


def ensure_dev_pki(pki: DevPki, *, host: str, client_lifetime: timedelta,
                   server_lifetime: timedelta = DEFAULT_SERVER_LIFETIME,
                   now: datetime | None = None) -> list[str]:
    """Create the CA and pairs on first use; re-issue pairs that cannot serve this start.

    The worker cannot run the renewal workflow with a certificate the gateway
    refuses, so a client pair that expired while the stack was down (or is already
    inside its renewal window) is re-issued here, directly from the local CA; so is a
    gateway pair with less than a third of its life (or 30 days) left. The trust bundle
    is made from ``ca.crt`` when missing, and the active CA added to it when absent (a
    rotation leaves it there; only a CA replaced by hand is not). Returns what was done,
    one line each, for the stack's description.
    """
    moment = utc(now)
    if not pki.ca_cert.exists() and not pki.ca_key.exists():
        result = bootstrap_local_pki(pki.directory, server_common_name=SERVER_NAME,
                                     server_dns_names=(SERVER_NAME,), server_ips=(host,),
                                     client_common_name=DEV_CLIENT_CERTIFICATE,
                                     client_lifetime=client_lifetime,
                                     server_lifetime=server_lifetime, now=moment)
        # A new CA: whatever an earlier CA left in the bundle is trusted no more.
        atomic_write(pki.bundle, result.ca.ca_pem, mode=0o644)
        return [f"created a local CA in {pki.directory}"]
    ca = CertificateAuthority.load(pki.ca_cert, pki.ca_key)
    done: list[str] = []
    if FileTrustPoint(pki.bundle).edit(add=[ca.certificate], remove=[]):
        done.append(f"added the local CA to the trust bundle {pki.bundle}")
    # The same specs bootstrap issued, so a repaired pair is the pair a first start makes.
    server = server_spec(SERVER_NAME, dns_names=(SERVER_NAME,), ip_addresses=(host,),
                         lifetime=server_lifetime)
    if _needs_new_pair(pki.server, ca, moment, min(SERVER_MIN_REMAINING, server_lifetime / 3)):
        issue_pair(pki.directory, ca, server, now=moment)
        done.append("re-issued the gateway's server certificate")
    client = client_spec(DEV_CLIENT_CERTIFICATE, lifetime=client_lifetime)
    if _needs_new_pair(pki.client, ca, moment, client_lifetime / 3):
        issue_pair(pki.directory, ca, client, now=moment)
        done.append("issued a fresh worker client certificate (the previous one had "
                    "expired or was due for renewal)")
    return done


def _needs_new_pair(directory: Path, ca: CertificateAuthority, now: datetime,
                    min_remaining: timedelta) -> bool:
    installed = read_installed(directory)
    if installed is None:
        return True
    try:
        summary = validate_pair(installed.certificate_pem, installed.private_key_pem,
                                ca_pem=ca.ca_pem, now=now)
    except CertificateValidationError as error:
        _log.warning("dev certificate unusable; issuing a new one", directory=str(directory),
                     problems=error.problems)
        return True
    return summary.not_after - now < min_remaining


async def start_gateway(pki: DevPki, *, host: str, port: int, upstream_host: str,
                        upstream_port: int, max_connection_age: timedelta) -> MtlsGateway:
    """The mTLS front of the dev Temporal server, reloading its own pair on change."""
    gateway = MtlsGateway(GatewayConfig(
        listen_host=host, listen_port=port, upstream_host=upstream_host,
        upstream_port=upstream_port, server_cert=pki.server / "tls.crt",
        server_key=pki.server / "tls.key", client_ca=pki.bundle,
        max_connection_age=max_connection_age))
    try:
        await gateway.start()
    except GatewayError as error:
        raise StartupError(f"{error}; set devstack.gateway_port to a free port, or "
                           "devstack.mtls = false") from None
    return gateway


def settings_behind_gateway(settings: Settings, pki: DevPki, gateway_address: str,
                            client_lifetime: timedelta) -> Settings:
    """``settings`` with the worker's TLS files, the stack's certificate entries (worker
    and gateway) and its CA entry filled in; entries the user's settings define win."""
    dev = settings.devstack
    temporal: TemporalSettings = dataclasses.replace(
        settings.temporal, tls_cert=pki.client / "tls.crt", tls_key=pki.client / "tls.key",
        tls_server_ca=pki.bundle, tls_server_name=SERVER_NAME, tls_client_ca=pki.bundle)
    certificates = dict(settings.certificates)
    # The gateway's first: a CA rotation renews its leaves in this order, and the worker's
    # renewal checks its new pair in a handshake with the gateway, trusting the new CA only.
    certificates.setdefault(DEV_GATEWAY_CERTIFICATE, gateway_certificate_settings(
        pki, timedelta(minutes=dev.gateway_certificate_minutes), dev.host))
    certificates.setdefault(DEV_CLIENT_CERTIFICATE, client_certificate_settings(
        pki, client_lifetime, gateway_address))
    authorities = dict(settings.certificate_authorities)
    authorities.setdefault(DEV_CERTIFICATE_AUTHORITY, certificate_authority_settings(
        pki, soak=timedelta(seconds=dev.ca_rotation_soak_seconds),
        grace=timedelta(seconds=dev.ca_rotation_grace_seconds)))
    return dataclasses.replace(settings, temporal=temporal, certificates=certificates,
                               certificate_authorities=authorities)
