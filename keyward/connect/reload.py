"""Reloading the worker's mTLS client certificate without restarting the worker.

A worker restart empties the workflow cache and forces every cached workflow to
replay; with certificates that live hours (or minutes) that is not acceptable
once per rotation. Go's SDK re-reads its certificate on every handshake; the
Python SDK cannot, but a running :class:`~temporalio.worker.Worker` accepts a
new client (``worker.client = new_client``) and uses it for its next calls.
:class:`ClientCertificateReloader` builds that new client whenever the files
change:

* the pair is read as one snapshot (:func:`keyward.pki.install.read_installed`
  resolves ``..data`` once), so a Kubernetes-style swap never yields a new
  certificate with the old key;
* it is validated like every other certificate in keyward (key match, chain to
  the CA the server trusts, validity) *before* anything connects with it: a
  broken renewal must not take the worker off the server;
* a new, non-lazy client is connected with the same connection settings and
  runtime (the worker refuses a lazy client or another runtime) and handed to
  the worker. Calls in flight finish on the old client.

A pair that is refused is remembered by its digest and reported once; it is
looked at again as soon as the files change. A pair that validates but cannot
be connected with (the server is briefly unreachable) is *not* remembered, so
it is retried at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import temporalio.service
from temporalio.client import Client
from temporalio.worker import Worker

from keyward.log import get_logger
from keyward.metrics import CLIENT_CERTIFICATE_EXPIRY, CLIENT_CERTIFICATE_RELOADS
from keyward.periodic import PeriodicTask
from keyward.pki.install import read_installed
from keyward.pki.types import IssuedCertificate
from keyward.pki.validate import (
    CertificateSummary,
    CertificateValidationError,
    summarize,
    validate_pair,
)

_log = get_logger("keyward.connect.reload")


@dataclass(frozen=True)
class ClientTLSFiles:
    """Where the client's TLS material lives."""

    cert: Path
    key: Path
    #: The *server's* CA (``server_root_ca_cert``); None trusts the system roots.
    ca: Path | None
    #: The name to check the server certificate against, when it differs from the host.
    server_name: str | None = None


def tls_config(files: ClientTLSFiles) -> temporalio.service.TLSConfig:
    """A client TLS config from the files, read once (a TLSConfig holds bytes, not paths)."""
    pair = _read_pair(files)
    if pair is None:
        raise FileNotFoundError(f"no client certificate pair at {files.cert} / {files.key}")
    return _tls_from(files, pair)


def _tls_from(files: ClientTLSFiles, pair: IssuedCertificate) -> temporalio.service.TLSConfig:
    return temporalio.service.TLSConfig(
        server_root_ca_cert=files.ca.read_bytes() if files.ca is not None else None,
        domain=files.server_name,
        client_cert=pair.certificate_pem,
        client_private_key=pair.private_key_pem)


def _read_pair(files: ClientTLSFiles) -> IssuedCertificate | None:
    """Certificate and key as one snapshot; None while either is missing.

    When both live in one directory it may be an installed (``..data``) one, and
    :func:`read_installed` reads both from a single generation. Otherwise the two
    files are read one after the other, and a torn read simply fails validation.
    """
    if files.cert.parent == files.key.parent:
        # ca_name is irrelevant here (the server CA comes from files.ca); it only
        # has to differ from the other two names.
        ca_name = next(name for name in ("ca.crt", "..unused-ca", "..unused-ca2")
                       if name not in (files.cert.name, files.key.name))
        return read_installed(files.cert.parent, cert_name=files.cert.name,
                              key_name=files.key.name, ca_name=ca_name)
    try:
        return IssuedCertificate(certificate_pem=files.cert.read_bytes(),
                                 private_key_pem=files.key.read_bytes())
    except FileNotFoundError:
        return None


def _digest(pair: IssuedCertificate) -> str:
    digest = hashlib.sha256()
    for part in (pair.certificate_pem, pair.private_key_pem):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Snapshot:
    pair: IssuedCertificate
    digest: str
    #: When the poll that found this content ran (monotonic), for the swap latency.
    detected_at: float


class ClientCertificateReloader:
    """Watches the client certificate and key by content and hands the worker a new client.

    Counters for metrics and tests: ``swaps`` (new clients set), ``failures``
    (pairs refused or connections that failed), ``last_swap_latency`` (seconds
    from the poll that saw the new content to the new client being set) and
    ``current_not_after`` (expiry of the certificate in use: the gauge to alert on).
    """

    def __init__(self, worker: Worker, client: Client, files: ClientTLSFiles, *,
                 interval: float = 1.0, target: str | None = None,
                 namespace: str | None = None,
                 client_ca_for_validation: Path | None = None) -> None:
        """``client`` is the one the worker runs on now; ``target`` and ``namespace``
        default to its own. ``client_ca_for_validation`` is the CA the *server*
        trusts for client certificates; without it the chain is not checked, so
        production should always pass it."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.worker = worker
        self.client = client
        self.files = files
        self.swaps = 0
        self.failures = 0
        self.last_swap_latency: float | None = None
        self.current_not_after: datetime | None = None
        self._interval = interval
        self._target = target or client.service_client.config.target_host
        self._namespace = namespace or client.namespace
        self._validation_ca = client_ca_for_validation
        self._periodic = PeriodicTask("client-cert-reloader", self._poll,
                                      interval_seconds=interval)
        self._lock = asyncio.Lock()
        # The files at start are what `client` was built from: not a change.
        initial = _read_pair(files)
        self._seen: str | None = _digest(initial) if initial is not None else None
        self._rejected: str | None = None
        if initial is not None:
            with contextlib.suppress(CertificateValidationError):
                self.current_not_after = summarize(initial.certificate_pem).not_after
                CLIENT_CERTIFICATE_EXPIRY.set(self.current_not_after.timestamp())

    def start(self) -> None:
        """Poll in the background until :meth:`stop`."""
        self._periodic.start()

    async def stop(self) -> None:
        await self._periodic.stop()

    async def _poll(self) -> None:
        try:
            await self.check_now()
        except Exception:
            self.failures += 1  # counted for the metric; PeriodicTask logs it and goes on
            raise

    async def check_now(self) -> bool:
        """Poll once; True if a new client was connected and set on the worker."""
        async with self._lock:
            snapshot = await asyncio.to_thread(self._snapshot)
            if snapshot is None or snapshot.digest in (self._seen, self._rejected):
                return False
            return await self._reload(snapshot)

    def _snapshot(self) -> _Snapshot | None:
        detected_at = time.monotonic()
        pair = _read_pair(self.files)
        if pair is None:
            return None
        return _Snapshot(pair, _digest(pair), detected_at)

    async def _reload(self, snapshot: _Snapshot) -> bool:
        try:
            summary = await asyncio.to_thread(self._validate, snapshot.pair)
        except CertificateValidationError as error:
            # The same bytes will not get better: report them once, look again on change.
            self._rejected = snapshot.digest
            self.failures += 1
            CLIENT_CERTIFICATE_RELOADS.labels(result="refused").inc()
            rejected = error.summary
            _log.error("client certificate refused; keeping the current client",
                       problems=error.problems, cert=str(self.files.cert),
                       serial=rejected.serial if rejected else None,
                       not_after=rejected.not_after.isoformat() if rejected else None)
            return False
        try:
            new_client = await self._connect(snapshot.pair)
            self.worker.client = new_client
        except (RuntimeError, ValueError, OSError) as error:
            # Not remembered: a valid pair that could not connect now is retried next poll.
            self.failures += 1
            CLIENT_CERTIFICATE_RELOADS.labels(result="refused").inc()
            _log.error("cannot connect with the new client certificate; keeping the "
                       "current client and retrying", serial=summary.serial,
                       error=f"{type(error).__name__}: {error}")
            return False
        self.client = new_client
        self._seen = snapshot.digest
        self._rejected = None
        self.swaps += 1
        self.last_swap_latency = time.monotonic() - snapshot.detected_at
        self.current_not_after = summary.not_after
        CLIENT_CERTIFICATE_EXPIRY.set(summary.not_after.timestamp())
        CLIENT_CERTIFICATE_RELOADS.labels(result="swapped").inc()
        _log.info("client certificate reloaded", serial=summary.serial,
                  subject=summary.subject, not_after=summary.not_after.isoformat(),
                  latency_ms=round(self.last_swap_latency * 1000, 1), swaps=self.swaps)
        return True

    def _validate(self, pair: IssuedCertificate) -> CertificateSummary:
        ca_pem = self._validation_ca.read_bytes() if self._validation_ca is not None else None
        return validate_pair(pair.certificate_pem, pair.private_key_pem, ca_pem=ca_pem,
                             now=datetime.now(UTC))

    async def _connect(self, pair: IssuedCertificate) -> Client:
        """A client like the current one in every respect but the TLS material.

        The old service client's connect config carries retry, keep-alive, metadata,
        identity and the runtime; the client config carries namespace, data
        converter and interceptors. ``lazy=False``: the worker refuses a lazy client,
        and connecting now proves the new certificate is accepted before it is used.
        """
        tls = await asyncio.to_thread(_tls_from, self.files, pair)
        connect = dataclasses.replace(self.client.service_client.config,
                                      target_host=self._target, tls=tls, lazy=False)
        service_client = await temporalio.service.ServiceClient.connect(connect)
        config = self.client.config()
        config["service_client"] = service_client
        config["namespace"] = self._namespace
        return Client(**config)

