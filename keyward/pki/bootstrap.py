"""``starter.py pki bootstrap``: a CA plus a server and a client pair, ready for local mTLS.

The layout is what certstrap-style guides hand to a Temporal dev server and its
workers: ``ca.crt``/``ca.key`` at the top, then ``server/`` and ``client/``
holding ``tls.crt``, ``tls.key`` and ``ca.crt``. The pairs are installed the same
way renewals install them (``..data`` symlink swap), so the files a server is
pointed at today keep working when keyward renews them later.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from keyward.errors import KeywardError
from keyward.pki.ca import CertificateAuthority, utc
from keyward.pki.install import InstalledPair, install_pair
from keyward.pki.types import CertificateSpec
from keyward.pki.validate import CertificateSummary, validate_pair

CA_CERT = "ca.crt"
CA_KEY = "ca.key"


class BootstrapError(KeywardError):
    """Bootstrapping would destroy an existing CA (and everything it issued)."""


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    description: str


@dataclass(frozen=True)
class BootstrapResult:
    """Everything ``bootstrap_local_pki`` wrote, for the command to print."""

    directory: Path
    ca: CertificateAuthority
    server: InstalledPair
    client: InstalledPair
    files: tuple[WrittenFile, ...]


def server_spec(common_name: str = "localhost", *,
                dns_names: Sequence[str] = ("localhost",),
                ip_addresses: Sequence[str] = ("127.0.0.1",),
                lifetime: timedelta = timedelta(days=365)) -> CertificateSpec:
    """The bootstrap's server pair (``<dir>/server``)."""
    return CertificateSpec(name="server", common_name=common_name, dns_names=tuple(dns_names),
                           ip_addresses=tuple(ip_addresses), usage="server", lifetime=lifetime)


def client_spec(common_name: str = "keyward-worker", *,
                lifetime: timedelta = timedelta(days=30)) -> CertificateSpec:
    """The bootstrap's client pair (``<dir>/client``)."""
    return CertificateSpec(name="client", common_name=common_name, usage="client",
                           lifetime=lifetime)


def bootstrap_local_pki(directory: Path, *, ca_common_name: str = "keyward local CA",
                        server_common_name: str = "localhost",
                        server_dns_names: Sequence[str] = ("localhost",),
                        server_ips: Sequence[str] = ("127.0.0.1",),
                        client_common_name: str = "keyward-worker",
                        client_lifetime: timedelta = timedelta(days=30),
                        server_lifetime: timedelta = timedelta(days=365),
                        overwrite: bool = False,
                        now: datetime | None = None) -> BootstrapResult:
    """Create a CA in ``directory`` and issue a server and a client pair from it.

    An existing ``ca.crt`` or ``ca.key`` is only replaced with ``overwrite=True``:
    a new CA silently invalidates every certificate the old one issued, on every
    worker and server that trusts it.
    """
    directory = Path(directory)
    moment = utc(now)
    existing = [directory / name for name in (CA_CERT, CA_KEY) if (directory / name).exists()]
    if existing and not overwrite:
        raise BootstrapError(
            f"{', '.join(map(str, existing))} already exists; replacing the CA invalidates "
            "every certificate it issued. Pass overwrite=True (--overwrite) to do it anyway.")
    ca = CertificateAuthority.bootstrap(ca_common_name, now=moment)
    ca.save(directory / CA_CERT, directory / CA_KEY)
    files = [
        WrittenFile(directory / CA_CERT, f"CA certificate ({ca_common_name}): trust anchor "
                                         "for servers (client CA) and clients (server CA)"),
        WrittenFile(directory / CA_KEY, "CA private key (mode 0600): signs renewals with "
                                        "issuer = \"local-ca\"; keep it off shared disks"),
    ]
    server, server_files = issue_pair(directory, ca, server_spec(
        server_common_name, dns_names=server_dns_names, ip_addresses=server_ips,
        lifetime=server_lifetime), now=moment)
    client, client_files = issue_pair(directory, ca, client_spec(
        client_common_name, lifetime=client_lifetime), now=moment)
    return BootstrapResult(directory, ca, server, client,
                           (*files, *server_files, *client_files))


def issue_pair(directory: Path, ca: CertificateAuthority, spec: CertificateSpec, *,
               now: datetime) -> tuple[InstalledPair, list[WrittenFile]]:
    """Issue ``spec`` from ``ca``, validate it against the CA, install it in
    ``directory/<spec.name>`` (replacing any pair there), and describe the files."""
    issued = ca.issue(spec, now=now)
    summary = validate_pair(issued.certificate_pem, issued.private_key_pem,
                            ca_pem=issued.ca_pem, now=now, spec=spec)
    installed = install_pair(Path(directory) / spec.name, issued)
    return installed, _pair_files(installed.directory, spec, summary)


def issue_local_pair(directory: Path, spec: CertificateSpec, *,
                     now: datetime | None = None) -> list[WrittenFile]:
    """Issue ``spec`` from the CA in ``directory`` into ``directory/<spec.name>``.

    For pairs beyond the bootstrap's server and client (an internode pair with both
    usages, a Web UI or admin client...). The pair is validated against the CA
    before it is installed, the same way renewals are, and replaces any pair there.
    """
    directory = Path(directory)
    try:
        ca = CertificateAuthority.load(directory / CA_CERT, directory / CA_KEY)
    except FileNotFoundError:
        raise BootstrapError(f"no local CA in {directory} ({CA_CERT} and {CA_KEY}); run "
                             "`starter.py pki bootstrap` first") from None
    if spec.name in ("", ".", "..") or "/" in spec.name:
        raise BootstrapError(f"pair name {spec.name!r} must be a plain directory name")
    return issue_pair(directory, ca, spec, now=utc(now))[1]


def describe(result: BootstrapResult) -> list[str]:
    """One line per file written, ``path: description``, for the command's output."""
    return [f"{written.path}: {written.description}" for written in result.files]


def _pair_files(directory: Path, spec: CertificateSpec,
                summary: CertificateSummary) -> list[WrittenFile]:
    names = ", ".join((*summary.dns_names, *summary.ip_addresses)) or "no SANs"
    until = summary.not_after.strftime("%Y-%m-%d %H:%M UTC")
    return [
        WrittenFile(directory / "tls.crt", f"{spec.name} certificate CN={spec.common_name} "
                                           f"({names}; {spec.usage} auth), valid until {until}"),
        WrittenFile(directory / "tls.key", f"{spec.name} private key (mode 0600)"),
        WrittenFile(directory / "ca.crt", f"CA certificate for the {spec.name} to verify "
                                          "its peers"),
    ]
