"""The codec server's TLS context, reloaded in place when its files change.

``SSLContext.load_cert_chain`` on a live context replaces the certificate for
*new* handshakes while established connections keep theirs — so a renewed
certificate takes effect without a restart. A new pair is first loaded into a
scratch context: a key that does not match its certificate is refused there,
logged, and the old pair keeps serving.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509

from keyward.config import CodecServerSettings
from keyward.connect.watch import ContentWatcher
from keyward.log import get_logger


def _server_context(cert: Path, key: Path, client_ca: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=str(client_ca))
        context.verify_mode = ssl.CERT_REQUIRED
        # A resumed session skips verification: an expired client certificate could keep
        # reconnecting. Client-authenticated servers do full handshakes only.
        context.num_tickets = 0
        context.options |= ssl.OP_NO_TICKET
    return context


@contextlib.contextmanager
def _snapshot(cert: Path, key: Path) -> Iterator[tuple[Path, Path]]:
    """The pair's current bytes as readable paths, the key in memory only (memfd)."""
    cert_bytes, key_bytes = cert.read_bytes(), key.read_bytes()
    descriptors: list[int] = []
    try:
        paths: list[Path] = []
        for name, data in (("cert", cert_bytes), ("key", key_bytes)):
            fd = os.memfd_create(f"keyward-tls-{name}", os.MFD_CLOEXEC)
            descriptors.append(fd)
            os.write(fd, data)
            paths.append(Path(f"/proc/self/fd/{fd}"))
        yield paths[0], paths[1]
    finally:
        for fd in descriptors:
            os.close(fd)


def certificate_summary(cert: Path) -> dict[str, str]:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    return {"serial": format(loaded.serial_number, "x"),
            "not_after": loaded.not_valid_after_utc.isoformat()}


class ReloadingServerTLS:
    """A server SSLContext plus the watcher that refreshes its certificate."""

    def __init__(self, settings: CodecServerSettings) -> None:
        if settings.tls_cert is None or settings.tls_key is None:
            raise ValueError("TLS needs codec_server.tls_cert and tls_key")
        self._cert = settings.tls_cert
        self._key = settings.tls_key
        self.context = _server_context(self._cert, self._key, settings.tls_client_ca)
        self._log = get_logger("keyward.codecserver.tls")
        self.reloads = 0
        self.failures = 0
        self.watcher = ContentWatcher([self._cert, self._key], self.reload,
                                      interval_seconds=settings.tls_reload_seconds)

    async def reload(self) -> bool:
        try:
            with _snapshot(self._cert, self._key) as (cert, key):
                # The scratch and the live context load the very same bytes: the files may
                # change again between two reads, and a failed load leaves a live context
                # with a certificate but no key.
                _server_context(cert, key, None)
                self.context.load_cert_chain(cert, key)
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.failures += 1
            self._log.error("new codec server certificate refused; keeping the old one",
                            error=f"{type(exc).__name__}: {exc}")
            return False
        self.reloads += 1
        self._log.info("codec server certificate reloaded", **certificate_summary(self._cert))
        return True
