"""An mTLS front for the Temporal dev server, so the local stack behaves like Temporal Cloud.

``temporal server start-dev`` speaks plain gRPC. Temporal Cloud, and a
production frontend with ``requireClientAuth``, want a client certificate from
a known CA on every connection, and Cloud closes each connection after five
minutes so that clients re-handshake (and so present whatever certificate they
hold *now*). A worker that reloads its certificate is only tested if the local
stack does the same, hence this gateway:

* TLS 1.2+ with ALPN ``h2`` (gRPC clients, including temporalio's Rust core,
  refuse a TLS server that does not agree to HTTP/2 through ALPN);
* ``CERT_REQUIRED`` against ``client_ca``: OpenSSL's chain verification rejects
  a missing certificate, one from another CA and an expired one during the
  handshake, before a single byte reaches Temporal;
* each accepted connection is piped to its own fresh TCP connection to the
  plain frontend. Client to server is a byte pipe; server to client is cut at
  HTTP/2 frame boundaries (9-byte headers; payloads are copied, never parsed)
  so that the gateway can add a frame of its own;
* after ``max_connection_age`` the gateway drains the connection the way a gRPC
  server with ``MaxConnectionAge`` (and Temporal Cloud) does: it sends the client
  an HTTP/2 ``GOAWAY`` (NO_ERROR), so the client opens a new connection — with
  a new handshake, presenting the certificate it holds now — for new calls,
  while calls in flight (a worker's long poll) finish on the old one. The client
  closes the drained connection when its last call ends; the gateway closes it
  after ``max_connection_age_grace`` in any case. A first version closed
  connections outright, and a benchmark caught the cost: now and then a call in
  flight failed instead of being retried;
* the server certificate, key and client CA are reloaded when their *content*
  changes (:class:`keyward.connect.watch.ContentWatcher`), into a fresh
  context first, so a half-written or mismatched pair is refused and the old
  context keeps serving. Established connections keep their handshake.

The handshake is done per connection with ``StreamWriter.start_tls`` instead of
``start_server(ssl=...)``: asyncio swallows failed server-side handshakes
(logged only in debug mode), and a security front whose rejections nobody can
see is hard to trust. Rejections are logged with OpenSSL's reason; the subject
of a *rejected* certificate is not available from Python's ``ssl`` module, so
only accepted connections log subject and serial.

Run standalone::

    python -m keyward_devstack.mtls_gateway --listen-port 7243 \\
        --upstream 127.0.0.1:7233 --cert server/tls.crt --key server/tls.key \\
        --client-ca ca.crt [--max-connection-age 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import ssl
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from structlog.stdlib import BoundLogger

from keyward.config import LoggingSettings
from keyward.connect.watch import ContentWatcher
from keyward.errors import KeywardError
from keyward.log import configure_logging, get_logger

#: A client that opens TCP and never finishes the handshake must not hold a slot forever.
HANDSHAKE_TIMEOUT_SECONDS = 10.0
#: Bytes per read: large enough for gRPC messages in a few reads, small enough to stay fair.
_CHUNK = 64 * 1024

_log = get_logger("keyward_devstack.mtls_gateway")


class GatewayError(KeywardError):
    """The gateway cannot start: its TLS material is unusable or the port is taken."""


@dataclass(frozen=True)
class GatewayConfig:
    """Where to listen, where to forward, and which TLS material to use."""

    listen_host: str
    #: 0 picks a free port; :attr:`MtlsGateway.port` tells which.
    listen_port: int
    #: The plain-gRPC Temporal frontend.
    upstream_host: str
    upstream_port: int
    #: The gateway's own certificate (chain) and key, presented to clients.
    server_cert: Path
    server_key: Path
    #: Client certificates must chain to a certificate in this file.
    client_ca: Path
    #: Temporal Cloud closes connections every 5 minutes; tests use seconds.
    max_connection_age: timedelta = timedelta(minutes=5)
    #: How long calls in flight may finish after the GOAWAY (Temporal's frontend: 70 s,
    #: longer than a worker's long poll).
    max_connection_age_grace: timedelta = timedelta(seconds=70)
    #: Seconds between content polls of the three files; 0 disables reloading.
    reload_interval: float = 1.0


@dataclass
class GatewayStats:
    """Counters of what the gateway did, for tests and for the shutdown log line."""

    accepted: int = 0
    rejected: int = 0
    closed_for_age: int = 0
    reloads: int = 0
    failed_reloads: int = 0
    active: int = 0


def build_server_context(config: GatewayConfig) -> ssl.SSLContext:
    """A server context requiring client certificates from ``config.client_ca``.

    Built from scratch every time (also on reload): a context that failed to
    load a new pair halfway must never be the one that serves.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    # No session resumption: a resumed TLS session skips certificate verification, so a
    # client could keep reconnecting on an expired (or no longer trusted) certificate.
    context.num_tickets = 0
    context.options |= ssl.OP_NO_TICKET
    # gRPC is HTTP/2; clients that negotiate ALPN abort when the server picks nothing.
    context.set_alpn_protocols(["h2"])
    try:
        context.load_cert_chain(config.server_cert, config.server_key)
        context.load_verify_locations(cafile=config.client_ca)
    except (ssl.SSLError, OSError, ValueError) as error:
        raise GatewayError(f"cannot load gateway TLS material ({config.server_cert}, "
                           f"{config.server_key}, {config.client_ca}): {error}") from None
    return context


def _peer_identity(ssl_object: ssl.SSLObject | None) -> dict[str, str]:
    """Subject and serial of the verified client certificate (public data only)."""
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return {}
    certificate = x509.load_der_x509_certificate(der)
    return {"subject": certificate.subject.rfc4514_string(),
            "serial": format(certificate.serial_number, "x"),
            "not_after": certificate.not_valid_after_utc.isoformat()}


def _rejection_reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    if isinstance(error, TimeoutError):
        return "handshake timed out"
    return f"{type(error).__name__}: {error}"


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy bytes until ``reader`` ends; a reset peer ends the pipe like an EOF."""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()


#: HTTP/2 GOAWAY on stream 0: last-stream-id 2^31-1 (every stream the client opened may
#: complete, as gRPC servers announce a graceful drain), error code NO_ERROR.
_GOAWAY = (8).to_bytes(3, "big") + bytes([0x7, 0x0]) + (0).to_bytes(4, "big") \
    + (2**31 - 1).to_bytes(4, "big") + (0).to_bytes(4, "big")
_FRAME_HEADER = 9


class _ServerFrames:
    """Server-to-client copy that knows where HTTP/2 frames begin, to add a GOAWAY.

    The server speaks first with frames (no preface in this direction), so the
    stream is frames from its first byte. A GOAWAY is written only between two
    frames: at once when the copy is waiting for the next header, else right after
    the frame being copied.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._between_frames = True
        self._goaway_wanted = False
        self.goaway_sent = False

    def send_goaway(self) -> None:
        if self._between_frames:
            self._write_goaway()
        else:
            self._goaway_wanted = True

    def _write_goaway(self) -> None:
        if not self.goaway_sent:
            self.goaway_sent = True
            self._writer.write(_GOAWAY)

    async def copy(self) -> None:
        """Copy frames until the server ends; a reset peer ends it like an EOF."""
        with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            while True:
                self._between_frames = True
                if self._goaway_wanted:
                    self._write_goaway()
                    await self._writer.drain()
                header = await self._reader.readexactly(_FRAME_HEADER)
                self._between_frames = False
                self._writer.write(header)
                left = int.from_bytes(header[:3], "big")
                while left:
                    data = await self._reader.read(min(left, _CHUNK))
                    if not data:
                        return
                    self._writer.write(data)
                    left -= len(data)
                await self._writer.drain()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    # A peer that vanished (or a TLS close_notify that cannot be sent) is already closed.
    with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), timeout=1.0)


class MtlsGateway:
    """A TLS-terminating TCP proxy requiring client certificates; see the module docstring."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.stats = GatewayStats()
        self._context = build_server_context(config)
        self._server: asyncio.Server | None = None
        self._watcher: ContentWatcher | None = None
        self._connections: set[asyncio.Task[None]] = set()
        #: Every accepted connection's writer until its handler closes it: a connection
        #: accepted just before stop() gets a handler task that may never run, and whose
        #: own ``finally`` therefore never closes it.
        self._writers: set[asyncio.StreamWriter] = set()
        self._next_id = 0

    @property
    def port(self) -> int:
        """The port actually listened on (useful with ``listen_port=0``)."""
        if self._server is None or not self._server.sockets:
            raise GatewayError("the gateway is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def address(self) -> str:
        """``host:port`` as a Temporal client's target."""
        return f"{self.config.listen_host}:{self.port}"

    async def start(self) -> None:
        """Listen, and watch the TLS files if reloading is enabled."""
        if self._server is not None:
            return
        try:
            self._server = await asyncio.start_server(
                self._accept, self.config.listen_host, self.config.listen_port)
        except OSError as error:
            raise GatewayError(f"cannot listen on {self.config.listen_host}:"
                               f"{self.config.listen_port}: {error}") from None
        if self.config.reload_interval > 0:
            self._watcher = ContentWatcher(
                [self.config.server_cert, self.config.server_key, self.config.client_ca],
                self._reload, interval_seconds=self.config.reload_interval)
            self._watcher.start()
        _log.info("mtls gateway listening", address=self.address,
                  upstream=f"{self.config.upstream_host}:{self.config.upstream_port}",
                  max_connection_age_s=self.config.max_connection_age.total_seconds())

    async def stop(self) -> None:
        """Stop listening, close every connection and stop watching files."""
        if self._watcher is not None:
            await self._watcher.stop()
            self._watcher = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for writer in list(self._writers):
            await _close(writer)
        self._writers.clear()
        _log.info("mtls gateway stopped", accepted=self.stats.accepted,
                  rejected=self.stats.rejected, closed_for_age=self.stats.closed_for_age)

    async def reload_now(self) -> bool:
        """Re-read the TLS files at once (instead of waiting for the next poll)."""
        return await self._reload()

    async def _reload(self) -> bool:
        """Swap in a context built from the files, or keep the old one if they are broken."""
        try:
            context = await asyncio.to_thread(build_server_context, self.config)
        except GatewayError as error:
            self.stats.failed_reloads += 1
            _log.error("gateway TLS reload refused; keeping the previous certificate",
                       error=str(error))
            return False
        self._context = context
        self.stats.reloads += 1
        _log.info("gateway TLS material reloaded", cert=str(self.config.server_cert))
        return True

    def _accept(self, reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter) -> Coroutine[Any, Any, None]:
        """Called synchronously as the connection is made: the writer is known to stop()
        before the handler task exists."""
        self._writers.add(writer)
        return self._handle(reader, writer)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
        self._next_id += 1
        log = _log.bind(connection=self._next_id, peer=str(writer.get_extra_info("peername")))
        try:
            if await self._handshake(writer, log):
                await self._forward(reader, writer, log)
        except asyncio.CancelledError:
            # Only stop() cancels these tasks. Ending normally instead of as cancelled
            # matters on 3.11: asyncio's stream callback calls task.exception(), which
            # raises for a cancelled task and gets logged as an error by the loop.
            log.debug("connection closed by gateway shutdown")
        finally:
            await _close(writer)
            self._writers.discard(writer)
            if task is not None:
                self._connections.discard(task)

    async def _handshake(self, writer: asyncio.StreamWriter, log: BoundLogger) -> bool:
        """TLS on the accepted TCP connection; False (and logged) when the client is refused."""
        try:
            await writer.start_tls(self._context,
                                   ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS)
        except (OSError, TimeoutError) as error:  # ssl.SSLError is an OSError
            self.stats.rejected += 1
            log.warning("client handshake rejected", reason=_rejection_reason(error))
            return False
        ssl_object = writer.get_extra_info("ssl_object")
        self.stats.accepted += 1
        log.info("client handshake accepted",
                 alpn=ssl_object.selected_alpn_protocol() if ssl_object else None,
                 tls_version=ssl_object.version() if ssl_object else None,
                 **_peer_identity(ssl_object))
        return True

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       log: BoundLogger) -> None:
        """Pipe to a fresh upstream connection until either side ends or the age is reached."""
        try:
            up_reader, up_writer = await asyncio.open_connection(
                self.config.upstream_host, self.config.upstream_port)
        except OSError as error:
            log.error("upstream unreachable", error=f"{type(error).__name__}: {error}")
            return
        self.stats.active += 1
        frames = _ServerFrames(up_reader, writer)
        pipes = {asyncio.create_task(_pump(reader, up_writer), name="gateway-client-to-upstream"),
                 asyncio.create_task(frames.copy(), name="gateway-upstream-to-client")}
        try:
            _, pending = await asyncio.wait(
                pipes, timeout=self.config.max_connection_age.total_seconds(),
                return_when=asyncio.FIRST_COMPLETED)
            if len(pending) == len(pipes):
                # Neither side ended: the connection is old enough to go. The GOAWAY makes
                # the client reconnect (presenting its current certificate) for new calls.
                self.stats.closed_for_age += 1
                frames.send_goaway()
                log.info("connection at max age: GOAWAY sent, draining",
                         max_connection_age_s=self.config.max_connection_age.total_seconds())
                _, pending = await asyncio.wait(
                    pipes, timeout=self.config.max_connection_age_grace.total_seconds(),
                    return_when=asyncio.FIRST_COMPLETED)
                if len(pending) == len(pipes):
                    log.info("drained connection closed at the end of its grace period",
                             grace_s=self.config.max_connection_age_grace.total_seconds())
        finally:
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            await _close(up_writer)
            self.stats.active -= 1


def _parse_upstream(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keyward_devstack.mtls_gateway",
        description="mTLS front for a plain-gRPC Temporal dev server.")
    parser.add_argument("--listen-host", default="127.0.0.1")
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--upstream", type=_parse_upstream, required=True,
                        help="HOST:PORT of the plain Temporal frontend")
    parser.add_argument("--cert", type=Path, required=True, help="gateway certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="gateway private key (PEM)")
    parser.add_argument("--client-ca", type=Path, required=True,
                        help="CA that client certificates must chain to (PEM)")
    parser.add_argument("--max-connection-age", type=float, default=300.0,
                        help="seconds before a connection is drained with GOAWAY (default 300)")
    parser.add_argument("--max-connection-age-grace", type=float, default=70.0,
                        help="seconds calls in flight may finish after it (default 70)")
    parser.add_argument("--reload-interval", type=float, default=1.0,
                        help="seconds between checks of the TLS files; 0 disables")
    return parser


async def _run(config: GatewayConfig) -> None:
    gateway = MtlsGateway(config)
    await gateway.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    try:
        await stopping.wait()
    finally:
        await gateway.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway until SIGTERM or SIGINT; exit status 0 on a clean stop."""
    args = _parser().parse_args(argv)
    configure_logging(LoggingSettings())
    upstream_host, upstream_port = args.upstream
    config = GatewayConfig(
        listen_host=args.listen_host, listen_port=args.listen_port,
        upstream_host=upstream_host, upstream_port=upstream_port,
        server_cert=args.cert, server_key=args.key, client_ca=args.client_ca,
        max_connection_age=timedelta(seconds=args.max_connection_age),
        max_connection_age_grace=timedelta(seconds=args.max_connection_age_grace),
        reload_interval=args.reload_interval)
    try:
        asyncio.run(_run(config))
    except GatewayError as error:
        _log.error("mtls gateway failed", error=str(error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
