"""Reloading the worker's mTLS client certificate, and the CA it trusts the server with,
without restarting the worker.

A worker restart empties the workflow cache and forces every cached workflow to
replay; with certificates that live hours (or minutes) that is not acceptable
once per rotation. Go's SDK re-reads its certificate on every handshake; the
Python SDK cannot, but a running :class:`~temporalio.worker.Worker` accepts a
new client (``worker.client = new_client``) and uses it for its next calls.
:class:`ClientCertificateReloader` builds that new client whenever what the client's
TLS is made of changes: the pair (``tls.crt``/``tls.key``) *or* the server CA bundle
(``temporal.tls_server_ca``, rewritten old → old + new → new during a CA rotation):

* pair and bundle are read as one snapshot (:func:`keyward.pki.install.read_installed`
  resolves ``..data`` once, and reads the bundle from the same generation when it lives
  beside the pair, as a Secret's ``ca.crt`` does), so a Kubernetes-style swap never
  yields a new certificate with the old key, and the client is built from exactly the
  bytes that were checked;
* what changed is validated *before* anything connects with it: a new pair like every
  other certificate in keyward (key match, chain to the CA the server trusts, validity),
  a new bundle by :func:`keyward.connect.ca_bundle.check_ca_bundle` (complete PEM blocks,
  CA certificates, one valid now): a broken renewal or a bundle caught halfway through
  being written must not take the worker off the server;
* a new, non-lazy client is connected with the same connection settings and
  runtime (the worker refuses a lazy client or another runtime) and handed to
  the worker only once it is connected: a bundle that does not verify the server's
  certificate fails here and the worker keeps its client. Calls in flight finish on
  the old client.

Content that is refused is remembered by its digest and reported once; it is looked
at again as soon as any input changes (a new pair refused for not chaining to
``tls_client_ca`` is looked at again when that CA bundle gains the new CA). Content
that validates but cannot be connected with (the server is briefly unreachable, or
does not serve a certificate the bundle trusts yet) is retried at every poll, with
one error line per content.
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

from keyward.connect.ca_bundle import CaBundle, CaBundleError, check_ca_bundle
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


@dataclass(frozen=True)
class ClientTLSMaterial:
    """One snapshot of everything a client's TLS is built from."""

    pair: IssuedCertificate
    #: The server CA bundle's bytes; None when ``ClientTLSFiles.ca`` is None.
    server_ca: bytes | None


def tls_config(files: ClientTLSFiles) -> temporalio.service.TLSConfig:
    """A client TLS config from the files, read once (a TLSConfig holds bytes, not paths)."""
    material = read_client_tls(files)
    if material is None:
        ca = f" / server CA {files.ca}" if files.ca is not None else ""
        raise FileNotFoundError(f"no client certificate pair at {files.cert} / {files.key}"
                                f"{ca}")
    return _tls_from(files, material)


def _tls_from(files: ClientTLSFiles,
              material: ClientTLSMaterial) -> temporalio.service.TLSConfig:
    return temporalio.service.TLSConfig(
        server_root_ca_cert=material.server_ca,
        domain=files.server_name,
        client_cert=material.pair.certificate_pem,
        client_private_key=material.pair.private_key_pem)


def read_client_tls(files: ClientTLSFiles) -> ClientTLSMaterial | None:
    """Pair and server CA bundle as one snapshot; None while any of them is missing.

    A bundle in the pair's directory (a Secret's or an install's ``ca.crt``) is read
    from the same ``..data`` generation as the pair; one elsewhere is read after it.
    """
    ca = files.ca
    if ca is not None and _beside_pair(files, ca):
        installed = read_installed(files.cert.parent, cert_name=files.cert.name,
                                   key_name=files.key.name, ca_name=ca.name)
        if installed is None or installed.ca_pem is None:
            return None
        return ClientTLSMaterial(pair=installed, server_ca=installed.ca_pem)
    pair = _read_pair(files)
    if pair is None:
        return None
    if ca is None:
        return ClientTLSMaterial(pair=pair, server_ca=None)
    try:
        return ClientTLSMaterial(pair=pair, server_ca=ca.read_bytes())
    except FileNotFoundError:
        return None


def _beside_pair(files: ClientTLSFiles, ca: Path) -> bool:
    return (files.cert.parent == files.key.parent == ca.parent
            and len({files.cert.name, files.key.name, ca.name}) == 3)


def _read_pair(files: ClientTLSFiles) -> IssuedCertificate | None:
    """Certificate and key as one snapshot; None while either is missing.

    When both live in one directory it may be an installed (``..data``) one, and
    :func:`read_installed` reads both from a single generation. Otherwise the two
    files are read one after the other, and a torn read simply fails validation.
    """
    if files.cert.parent == files.key.parent:
        # ca_name is irrelevant here (the server CA is read on its own); it only has
        # to differ from the other two names.
        ca_name = next(name for name in ("ca.crt", "..unused-ca", "..unused-ca2")
                       if name not in (files.cert.name, files.key.name))
        return read_installed(files.cert.parent, cert_name=files.cert.name,
                              key_name=files.key.name, ca_name=ca_name)
    try:
        return IssuedCertificate(certificate_pem=files.cert.read_bytes(),
                                 private_key_pem=files.key.read_bytes())
    except FileNotFoundError:
        return None


def _digest(*parts: bytes | None) -> str:
    digest = hashlib.sha256()
    for part in parts:
        if part is None:
            digest.update(b"\xff" * 8)  # absent: unlike any length prefix
            continue
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


@dataclass(frozen=True)
class _Snapshot:
    material: ClientTLSMaterial
    #: The CA new pairs are checked against, as read with the rest (None: not set).
    validation_ca: bytes | None
    #: Why the validation CA could not be read, if it is set and could not.
    validation_ca_problem: str | None
    #: When the poll that found this content ran (monotonic), for the swap latency.
    detected_at: float

    @property
    def pair_digest(self) -> str:
        pair = self.material.pair
        return _digest(pair.certificate_pem, pair.private_key_pem)

    @property
    def server_ca_digest(self) -> str:
        return _digest(self.material.server_ca)

    @property
    def inputs_digest(self) -> str:
        """Everything a decision depends on: a change to any part is looked at."""
        return _digest(self.pair_digest.encode(), self.server_ca_digest.encode(),
                       self.validation_ca, (self.validation_ca_problem or "").encode())


class ClientCertificateReloader:
    """Watches the client pair and the server CA bundle by content and hands the worker a
    new client when either changes.

    Counters for metrics and tests: ``swaps`` (new clients set, for either reason),
    ``server_ca_swaps`` (those that moved to a new server CA bundle), ``failures``
    (content refused or connections that failed), ``last_swap_latency`` (seconds from
    the poll that saw the new content to the new client being set),
    ``current_not_after`` (expiry of the certificate in use: the gauge to alert on) and
    ``server_ca_subjects`` (the CAs the client in use trusts the server with).
    """

    def __init__(self, worker: Worker, client: Client, files: ClientTLSFiles, *,
                 interval: float = 1.0, target: str | None = None,
                 namespace: str | None = None,
                 client_ca_for_validation: Path | None = None) -> None:
        """``client`` is the one the worker runs on now; ``target`` and ``namespace``
        default to its own. ``client_ca_for_validation`` is the CA the *server*
        trusts for client certificates; without it the chain is not checked, so
        production should always pass it. It is watched too: it decides whether a
        pair may be used, but the client is not built from it."""
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.worker = worker
        self.client = client
        self.files = files
        self.swaps = 0
        self.server_ca_swaps = 0
        self.failures = 0
        self.last_swap_latency: float | None = None
        self.current_not_after: datetime | None = None
        self.server_ca_subjects: tuple[str, ...] | None = None
        self._interval = interval
        self._target = target or client.service_client.config.target_host
        self._namespace = namespace or client.namespace
        self._validation_ca = client_ca_for_validation
        self._periodic = PeriodicTask("client-cert-reloader", self._poll,
                                      interval_seconds=interval)
        self._lock = asyncio.Lock()
        # The files at start are what `client` was built from: not a change.
        initial = self._snapshot()
        self._pair_in_use: str | None = initial.pair_digest if initial else None
        self._server_ca_in_use: str | None = initial.server_ca_digest if initial else None
        self._seen: str | None = initial.inputs_digest if initial else None
        self._rejected: str | None = None
        #: Content whose connection failed: retried every poll, its error logged once.
        self._connect_failed: str | None = None
        if initial is not None:
            with contextlib.suppress(CertificateValidationError):
                self.current_not_after = summarize(
                    initial.material.pair.certificate_pem).not_after
                CLIENT_CERTIFICATE_EXPIRY.set(self.current_not_after.timestamp())
            if initial.material.server_ca is not None:
                with contextlib.suppress(CaBundleError):
                    self.server_ca_subjects = check_ca_bundle(
                        initial.material.server_ca, now=datetime.now(UTC)).subjects

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
            if snapshot is None or snapshot.inputs_digest in (self._seen, self._rejected):
                return False
            if (snapshot.pair_digest, snapshot.server_ca_digest) == (
                    self._pair_in_use, self._server_ca_in_use):
                # Only the validation CA moved: it judges new pairs, the client in use
                # is not built from it. Nothing to connect.
                self._seen = snapshot.inputs_digest
                self._rejected = None
                return False
            return await self._reload(snapshot)

    def _snapshot(self) -> _Snapshot | None:
        detected_at = time.monotonic()
        material = read_client_tls(self.files)
        if material is None:
            return None
        validation_ca: bytes | None = None
        problem: str | None = None
        if self._validation_ca is not None:
            try:
                validation_ca = self._validation_ca.read_bytes()
            except OSError as error:
                problem = (f"cannot read the CA new pairs are checked against "
                           f"({self._validation_ca}): {error.strerror or error}")
        return _Snapshot(material, validation_ca, problem, detected_at)

    async def _reload(self, snapshot: _Snapshot) -> bool:
        pair_changed = snapshot.pair_digest != self._pair_in_use
        ca_changed = snapshot.server_ca_digest != self._server_ca_in_use
        summary: CertificateSummary | None = None
        bundle: CaBundle | None = None
        try:
            if pair_changed:
                summary = await asyncio.to_thread(self._validate, snapshot)
            if ca_changed and snapshot.material.server_ca is not None:
                bundle = check_ca_bundle(snapshot.material.server_ca, now=datetime.now(UTC))
        except CertificateValidationError as error:
            # The same bytes will not get better: report them once, look again on change.
            self._refused(snapshot)
            rejected = error.summary
            _log.error("client certificate refused; keeping the current client",
                       problems=error.problems, cert=str(self.files.cert),
                       serial=rejected.serial if rejected else None,
                       not_after=rejected.not_after.isoformat() if rejected else None)
            return False
        except CaBundleError as error:
            self._refused(snapshot)
            _log.error("server CA bundle refused; keeping the current client",
                       problems=error.problems, ca=str(self.files.ca))
            return False
        try:
            new_client = await self._connect(snapshot.material)
            self.worker.client = new_client
        except (RuntimeError, ValueError, OSError) as error:
            # Not remembered as refused: what validated but could not connect now is
            # retried next poll (the server may be moving to the CA the bundle names).
            self.failures += 1
            CLIENT_CERTIFICATE_RELOADS.labels(result="refused").inc()
            first = self._connect_failed != snapshot.inputs_digest
            self._connect_failed = snapshot.inputs_digest
            log = _log.error if first else _log.debug
            what = ("the new client certificate" if not ca_changed else
                    "the new server CA bundle" if not pair_changed else
                    "the new client certificate and server CA bundle")
            log(f"cannot connect with {what}; keeping the current client and retrying",
                serial=summary.serial if summary else None,
                ca=str(self.files.ca) if ca_changed else None,
                error=f"{type(error).__name__}: {error}")
            return False
        self._swapped(snapshot, new_client, summary, bundle)
        return True

    def _refused(self, snapshot: _Snapshot) -> None:
        self._rejected = snapshot.inputs_digest
        self.failures += 1
        CLIENT_CERTIFICATE_RELOADS.labels(result="refused").inc()

    def _swapped(self, snapshot: _Snapshot, new_client: Client,
                 summary: CertificateSummary | None, bundle: CaBundle | None) -> None:
        ca_changed = snapshot.server_ca_digest != self._server_ca_in_use
        self.client = new_client
        self._pair_in_use = snapshot.pair_digest
        self._server_ca_in_use = snapshot.server_ca_digest
        self._seen = snapshot.inputs_digest
        self._rejected = self._connect_failed = None
        self.swaps += 1
        self.last_swap_latency = time.monotonic() - snapshot.detected_at
        latency_ms = round(self.last_swap_latency * 1000, 1)
        CLIENT_CERTIFICATE_RELOADS.labels(result="swapped").inc()
        if ca_changed:
            self.server_ca_swaps += 1
            self.server_ca_subjects = bundle.subjects if bundle else None
        if summary is not None:
            self.current_not_after = summary.not_after
            CLIENT_CERTIFICATE_EXPIRY.set(summary.not_after.timestamp())
            _log.info("client certificate reloaded", serial=summary.serial,
                      subject=summary.subject, not_after=summary.not_after.isoformat(),
                      server_ca_changed=ca_changed, latency_ms=latency_ms, swaps=self.swaps)
        else:
            _log.info("server CA bundle reloaded", ca=str(self.files.ca),
                      subjects=list(bundle.subjects) if bundle else None,
                      latency_ms=latency_ms, swaps=self.swaps)

    def _validate(self, snapshot: _Snapshot) -> CertificateSummary:
        if snapshot.validation_ca_problem is not None:
            raise CertificateValidationError([snapshot.validation_ca_problem])
        pair = snapshot.material.pair
        return validate_pair(pair.certificate_pem, pair.private_key_pem,
                             ca_pem=snapshot.validation_ca, now=datetime.now(UTC))

    async def _connect(self, material: ClientTLSMaterial) -> Client:
        """A client like the current one in every respect but the TLS material.

        The old service client's connect config carries retry, keep-alive, metadata,
        identity and the runtime; the client config carries namespace, data
        converter and interceptors. ``lazy=False``: the worker refuses a lazy client,
        and connecting now proves the server accepts the new certificate (and that
        the new bundle verifies the server's) before it is used.
        """
        connect = dataclasses.replace(self.client.service_client.config,
                                      target_host=self._target,
                                      tls=_tls_from(self.files, material), lazy=False)
        service_client = await temporalio.service.ServiceClient.connect(connect)
        config = self.client.config()
        config["service_client"] = service_client
        config["namespace"] = self._namespace
        return Client(**config)
