"""The codec server's TLS, reloaded in place when its files change: the certificate pair and
the client-CA bundle (``tls_client_ca``) it verifies clients against.

The listener keeps the :class:`ssl.SSLContext` it was started with, but each handshake is
moved onto the context in force at that moment: the listening context's SNI callback
(called for every ClientHello, with or without a server name) sets the connection's
context, and with it the certificate it presents and the store the client's certificate
is verified against. A reload builds a complete new context from one snapshot of the
files and makes it the one in force only once it has loaded: a key that does not match
its certificate, or a bundle that is not a bundle of CA certificates (or is still being
written), is refused, logged once, and the old context keeps serving. A fresh context is
the only way to *drop* a CA: ``load_verify_locations`` on a live context can only add.
Established connections keep their handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from keyward.config import CodecServerSettings
from keyward.connect.ca_bundle import CaBundle, CaBundleError, check_ca_bundle
from keyward.connect.watch import ContentWatcher
from keyward.log import get_logger


@dataclass(frozen=True)
class _Material:
    """The bytes of the TLS files, read together."""

    cert: bytes
    key: bytes
    client_ca: bytes | None

    def digests(self) -> tuple[str, str]:
        """(pair, client CA): what changed decides what is checked and logged."""
        pair = hashlib.sha256(len(self.cert).to_bytes(8, "big") + self.cert + self.key)
        ca = hashlib.sha256(self.client_ca) if self.client_ca is not None else None
        return pair.hexdigest(), ca.hexdigest() if ca is not None else "-"


def _read(cert: Path, key: Path, client_ca: Path | None) -> _Material:
    return _Material(cert=cert.read_bytes(), key=key.read_bytes(),
                     client_ca=client_ca.read_bytes() if client_ca is not None else None)


def _server_context(material: _Material) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    with _key_files(material) as (cert, key):
        context.load_cert_chain(cert, key)
    if material.client_ca is not None:
        # A str is read as PEM (bytes would be DER); non-ASCII is refused as ValueError.
        context.load_verify_locations(cadata=material.client_ca.decode("ascii"))
        context.verify_mode = ssl.CERT_REQUIRED
        # A resumed session skips verification: an expired client certificate could keep
        # reconnecting. Client-authenticated servers do full handshakes only.
        context.num_tickets = 0
        context.options |= ssl.OP_NO_TICKET
    return context


@contextlib.contextmanager
def _key_files(material: _Material) -> Iterator[tuple[Path, Path]]:
    """The pair's bytes as readable paths (``load_cert_chain`` wants files), the key in
    memory only (memfd)."""
    descriptors: list[int] = []
    try:
        paths: list[Path] = []
        for name, data in (("cert", material.cert), ("key", material.key)):
            fd = os.memfd_create(f"keyward-tls-{name}", os.MFD_CLOEXEC)
            descriptors.append(fd)
            os.write(fd, data)
            paths.append(Path(f"/proc/self/fd/{fd}"))
        yield paths[0], paths[1]
    finally:
        for fd in descriptors:
            os.close(fd)


def certificate_summary(cert_pem: bytes) -> dict[str, str]:
    loaded = x509.load_pem_x509_certificate(cert_pem)
    return {"serial": format(loaded.serial_number, "x"),
            "not_after": loaded.not_valid_after_utc.isoformat()}


class ReloadingServerTLS:
    """A server SSLContext plus the watcher that refreshes its certificate and client CAs.

    Counters: ``reloads`` (new contexts put in force, for either reason),
    ``client_ca_reloads`` (those with a new client-CA bundle), ``failures`` (content
    refused; each content once).
    """

    def __init__(self, settings: CodecServerSettings) -> None:
        if settings.tls_cert is None or settings.tls_key is None:
            raise ValueError("TLS needs codec_server.tls_cert and tls_key")
        self._cert = settings.tls_cert
        self._key = settings.tls_key
        self._client_ca = settings.tls_client_ca
        material = _read(self._cert, self._key, self._client_ca)
        #: The context the listener holds; every handshake moves to ``_active``.
        self.context = _server_context(material)
        self.context.sni_callback = self._select
        self._active = self.context
        self._in_use = material.digests()
        self._rejected: tuple[str, str] | None = None
        self._log = get_logger("keyward.codecserver.tls")
        self.reloads = 0
        self.client_ca_reloads = 0
        self.failures = 0
        watched = [self._cert, self._key, *([self._client_ca] if self._client_ca else [])]
        self.watcher = ContentWatcher(watched, self.reload,
                                      interval_seconds=settings.tls_reload_seconds)

    def _select(self, connection: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None,
                listening: ssl.SSLContext) -> None:
        active = self._active
        if active is not listening:
            connection.context = active

    async def reload(self) -> bool:
        """Read the files once; put a context built from them in force if anything changed
        and it loads. True if it did."""
        try:
            material = await asyncio.to_thread(_read, self._cert, self._key, self._client_ca)
        except OSError as exc:
            self.failures += 1
            self._log.error("new codec server certificate refused; keeping the old one",
                            error=f"{type(exc).__name__}: {exc}")
            return False
        digests = material.digests()
        if digests in (self._in_use, self._rejected):
            return False
        pair_changed, ca_changed = (new != old for new, old in zip(digests, self._in_use,
                                                                   strict=True))
        bundle: CaBundle | None = None
        try:
            if ca_changed and material.client_ca is not None:
                bundle = check_ca_bundle(material.client_ca, now=datetime.now(UTC))
            context = await asyncio.to_thread(_server_context, material)
        except CaBundleError as exc:
            return self._refused(digests, "codec server client CA bundle refused; keeping "
                                 "the old one", problems=exc.problems, ca=str(self._client_ca))
        except (ssl.SSLError, OSError, ValueError) as exc:
            what = ("new codec server certificate refused; keeping the old one" if pair_changed
                    else "codec server client CA bundle refused; keeping the old one")
            return self._refused(digests, what, error=f"{type(exc).__name__}: {exc}")
        self._active = context
        self._in_use = digests
        self._rejected = None
        self.reloads += 1
        if pair_changed:
            self._log.info("codec server certificate reloaded",
                           **certificate_summary(material.cert))
        if bundle is not None:
            self.client_ca_reloads += 1
            self._log.info("codec server client CA bundle reloaded", ca=str(self._client_ca),
                           subjects=list(bundle.subjects))
        return True

    def _refused(self, digests: tuple[str, str], event: str, **fields: object) -> bool:
        # The same bytes will not get better: refused once, looked at again on change.
        self._rejected = digests
        self.failures += 1
        self._log.error(event, **fields)
        return False
