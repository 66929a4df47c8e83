"""The codec server over https: certificates reload in place, bad pairs are refused, mTLS holds."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from keyward.codec.transit_codec import VaultTransitCodec
from keyward.codecserver.runner import RunningCodecServer, start_codec_server
from keyward_devstack.processes import free_port
from tests.codecserver.conftest import open_settings
from tests.support import assert_eventually
from tests.tls_material import (
    CertificateAuthority,
    IssuedCertificate,
    write_atomically,
    write_pair,
)

StartServer = Callable[..., Awaitable[RunningCodecServer]]


@pytest.fixture
def ca() -> CertificateAuthority:
    return CertificateAuthority.create()


@pytest.fixture
async def https_server(server_codec: VaultTransitCodec) -> AsyncIterator[StartServer]:
    """Start real codec servers (``start_codec_server``) on free ports; stop them afterwards."""
    running: list[RunningCodecServer] = []

    async def start(cert: Path, key: Path, **overrides: Any) -> RunningCodecServer:
        # A long poll interval: tests call ``watcher.check_now()`` unless they set their own.
        values: dict[str, Any] = {"tls_reload_seconds": 3600.0, **overrides}
        settings = open_settings(port=free_port(), tls_cert=cert, tls_key=key, **values)
        server = await start_codec_server(settings, server_codec)
        running.append(server)
        return server

    yield start
    for server in running:
        await server.stop()


def client_context(ca: CertificateAuthority, client: IssuedCertificate | None = None,
                   directory: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=ca.cert_pem().decode())
    if client is not None and directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        write_pair(client, client, directory / "client.pem", directory / "client.key")
        context.load_cert_chain(directory / "client.pem", directory / "client.key")
    return context


async def served_serial(url: str, context: ssl.SSLContext) -> int:
    """The serial number of the certificate a brand-new TLS connection is given."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    _, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        peer = writer.get_extra_info("peercert")
        return int(peer["serialNumber"], 16)
    finally:
        writer.close()
        await writer.wait_closed()


async def health(url: str, context: ssl.SSLContext) -> int:
    """GET /health on a fresh connection (a fresh connector: no reused TLS session)."""
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session, \
            session.get(f"{url}/health") as response:
        return response.status


def pair_files(directory: Path, cert: IssuedCertificate) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = directory / "tls.crt", directory / "tls.key"
    write_pair(cert, cert, *paths)
    return paths


async def test_serves_https_with_the_configured_certificate(https_server: StartServer,
                                                            ca: CertificateAuthority,
                                                            tmp_path: Path) -> None:
    """With tls_cert/tls_key the server speaks https with that certificate."""
    first = ca.issue_server()
    server = await https_server(*pair_files(tmp_path, first))
    assert server.url.startswith("https://127.0.0.1:")
    assert await served_serial(server.url, client_context(ca)) == first.serial
    assert await health(server.url, client_context(ca)) == 200


async def test_renewed_certificate_is_served_to_new_connections(https_server: StartServer,
                                                                ca: CertificateAuthority,
                                                                tmp_path: Path) -> None:
    """After the files are replaced and the watcher looks, new connections get the new serial."""
    first, second = ca.issue_server(), ca.issue_server()
    cert, key = pair_files(tmp_path, first)
    server = await https_server(cert, key)
    assert server.tls is not None
    context = client_context(ca)
    assert await served_serial(server.url, context) == first.serial

    write_pair(second, second, cert, key)  # each file replaced by an atomic rename
    assert await server.tls.watcher.check_now()
    assert await served_serial(server.url, context) == second.serial
    assert await health(server.url, context) == 200
    assert (server.tls.reloads, server.tls.failures) == (1, 0)


async def test_kubernetes_style_symlink_swap_is_picked_up_by_polling(https_server: StartServer,
                                                                     ca: CertificateAuthority,
                                                                     tmp_path: Path) -> None:
    """A Secret-volume update (``..data`` symlink renamed over) is found by the poll on its own."""
    first, second = ca.issue_server(), ca.issue_server()
    volume = tmp_path / "volume"
    pair_files(volume / "..2024_01", first)
    (volume / "..data").symlink_to("..2024_01")
    for name in ("tls.crt", "tls.key"):
        (volume / name).symlink_to(f"..data/{name}")
    server = await https_server(volume / "tls.crt", volume / "tls.key", tls_reload_seconds=0.1)
    context = client_context(ca)
    assert await served_serial(server.url, context) == first.serial

    pair_files(volume / "..2024_02", second)
    (volume / "..data_tmp").symlink_to("..2024_02")
    (volume / "..data_tmp").replace(volume / "..data")

    async def serves_second() -> None:
        assert await served_serial(server.url, context) == second.serial

    await assert_eventually(serves_second, within=5)


async def test_mismatched_pair_is_refused_and_old_certificate_kept(https_server: StartServer,
                                                                  ca: CertificateAuthority,
                                                                  tmp_path: Path) -> None:
    """A new certificate with someone else's key is refused: the old one keeps serving."""
    first, second, stranger = ca.issue_server(), ca.issue_server(), ca.issue_server()
    cert, key = pair_files(tmp_path, first)
    server = await https_server(cert, key)
    assert server.tls is not None
    context = client_context(ca)

    write_pair(second, stranger, cert, key)  # certificate B with key C
    assert not await server.tls.watcher.check_now()
    assert (server.tls.reloads, server.tls.failures) == (0, 1)
    assert await served_serial(server.url, context) == first.serial
    assert await health(server.url, context) == 200

    write_pair(second, second, cert, key)  # the writer finishes: now the pair matches
    assert await server.tls.watcher.check_now()
    assert await served_serial(server.url, context) == second.serial


async def test_client_ca_requires_a_client_certificate(https_server: StartServer,
                                                      ca: CertificateAuthority,
                                                      tmp_path: Path) -> None:
    """With tls_client_ca, a client without a certificate from that CA gets no answer."""
    (tmp_path / "client-ca.pem").write_bytes(ca.cert_pem())
    server = await https_server(*pair_files(tmp_path / "server", ca.issue_server()),
                                tls_client_ca=tmp_path / "client-ca.pem")

    with pytest.raises(aiohttp.ClientError):
        await health(server.url, client_context(ca))
    outsider = CertificateAuthority.create("another CA").issue_client()
    with pytest.raises(aiohttp.ClientError):
        await health(server.url, client_context(ca, outsider, tmp_path / "outsider"))

    member = ca.issue_client()
    assert await health(server.url, client_context(ca, member, tmp_path / "member")) == 200


async def test_reload_keeps_requiring_client_certificates(https_server: StartServer,
                                                         ca: CertificateAuthority,
                                                         tmp_path: Path) -> None:
    """A renewed server certificate does not relax mutual TLS."""
    (tmp_path / "client-ca.pem").write_bytes(ca.cert_pem())
    cert, key = pair_files(tmp_path / "server", ca.issue_server())
    server = await https_server(cert, key, tls_client_ca=tmp_path / "client-ca.pem")
    assert server.tls is not None
    renewed = ca.issue_server()
    write_pair(renewed, renewed, cert, key)
    assert await server.tls.watcher.check_now()

    member = client_context(ca, ca.issue_client(), tmp_path / "member")
    assert await served_serial(server.url, member) == renewed.serial
    with pytest.raises(aiohttp.ClientError):
        await health(server.url, client_context(ca))


# ---- the client-CA bundle reloads too ------------------------------------------------------


async def keep_alive_health(url: str, context: ssl.SSLContext) -> AsyncIterator[int]:
    """GET /health again and again on *one* TLS connection (HTTP/1.1 keep-alive): each
    ``__anext__`` sends a request and yields its status."""
    host, port = url.removeprefix("https://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port), ssl=context)
    try:
        while True:
            writer.write(f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            yield int(status_line.split()[1])
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


async def test_client_ca_bundle_rotation_applies_to_new_connections(
        https_server: StartServer, ca: CertificateAuthority, tmp_path: Path) -> None:
    """A client certificate from a new CA is refused until the bundle holds that CA, then
    accepted; once the old CA leaves the bundle, old-CA clients are refused on new
    connections, while a connection opened before keeps being served."""
    old_ca, new_ca = ca, CertificateAuthority.create("successor CA")
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(old_ca.cert_pem())
    server = await https_server(*pair_files(tmp_path / "server", ca.issue_server()),
                                tls_client_ca=bundle)
    assert server.tls is not None
    old_client = client_context(ca, old_ca.issue_client("old"), tmp_path / "old")
    new_client = client_context(ca, new_ca.issue_client("new"), tmp_path / "new")
    with pytest.raises(aiohttp.ClientError):
        await health(server.url, new_client)
    assert await health(server.url, old_client) == 200

    write_atomically(bundle, old_ca.cert_pem() + new_ca.cert_pem())  # old + new
    assert await server.tls.watcher.check_now()
    assert await health(server.url, new_client) == 200
    assert await health(server.url, old_client) == 200
    established = keep_alive_health(server.url, old_client)
    assert await anext(established) == 200

    write_atomically(bundle, new_ca.cert_pem())  # the old CA retired
    assert await server.tls.watcher.check_now()
    with pytest.raises(aiohttp.ClientError):
        await health(server.url, old_client)
    assert await health(server.url, new_client) == 200
    assert await anext(established) == 200, "an established connection was cut"
    await established.aclose()
    assert (server.tls.reloads, server.tls.client_ca_reloads, server.tls.failures) == (2, 2, 0)


async def test_client_ca_bundle_change_is_found_by_polling(
        https_server: StartServer, ca: CertificateAuthority, tmp_path: Path) -> None:
    """The watcher polls the bundle on its own: no call needed to pick up a new CA."""
    new_ca = CertificateAuthority.create("successor CA")
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(ca.cert_pem())
    server = await https_server(*pair_files(tmp_path / "server", ca.issue_server()),
                                tls_client_ca=bundle, tls_reload_seconds=0.1)
    new_client = client_context(ca, new_ca.issue_client("new"), tmp_path / "new")
    write_atomically(bundle, ca.cert_pem() + new_ca.cert_pem())

    async def accepted() -> None:
        try:
            status = await health(server.url, new_client)
        except aiohttp.ClientError as error:
            raise AssertionError(f"still refused: {error}") from None
        assert status == 200

    await assert_eventually(accepted, within=5, interval=0.1)


@pytest.mark.parametrize("broken", ["cut short", "a leaf certificate", "not PEM", "empty"])
async def test_broken_client_ca_bundle_is_refused_once_and_the_old_kept(
        https_server: StartServer, ca: CertificateAuthority, tmp_path: Path,
        broken: str) -> None:
    """A bundle caught halfway through being written, one holding a leaf, garbage or an
    empty file is refused with one error line; the old bundle keeps deciding, and the
    finished bundle is taken when it arrives."""
    new_ca = CertificateAuthority.create("successor CA")
    bundle = tmp_path / "client-ca.pem"
    bundle.write_bytes(ca.cert_pem())
    server = await https_server(*pair_files(tmp_path / "server", ca.issue_server()),
                                tls_client_ca=bundle)
    assert server.tls is not None
    old_client = client_context(ca, ca.issue_client("old"), tmp_path / "old")
    new_client = client_context(ca, new_ca.issue_client("new"), tmp_path / "new")
    full = ca.cert_pem() + new_ca.cert_pem()
    content = {"cut short": full[:len(ca.cert_pem()) + 300],
               "a leaf certificate": ca.cert_pem() + new_ca.issue_client("leaf").cert_pem(),
               "not PEM": b"this is not a certificate\n", "empty": b""}[broken]

    bundle.write_bytes(content)  # in place, not atomically: what a careless writer does
    with capture_logs() as logs:
        assert not await server.tls.watcher.check_now()
        assert not await server.tls.reload()  # the same bytes again: not reported again
    [entry] = [e for e in logs if e["log_level"] == "error"]
    assert entry["event"] == "codec server client CA bundle refused; keeping the old one"
    assert (server.tls.reloads, server.tls.failures) == (0, 1)
    assert await health(server.url, old_client) == 200
    with pytest.raises(aiohttp.ClientError):
        await health(server.url, new_client)

    bundle.write_bytes(full)  # the writer finishes
    assert await server.tls.watcher.check_now()
    assert await health(server.url, new_client) == 200
