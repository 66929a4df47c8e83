"""Starting and stopping a dev server, in-process or from the command line.

``start`` binds the listener and returns once it accepts connections, so a
caller can use :attr:`RunningDevVault.url` straight away. ``main`` is the
command line behind ``python -m keyward_devstack.transit_server``: it prints
one line with the address and root token (only named, when it came from
``--root-token-file`` or ``$KEYWARD_DEV_VAULT_ROOT_TOKEN``: a token on the command
line is readable by every local user in ``/proc/<pid>/cmdline``), stops cleanly on SIGTERM or SIGINT
(exit 0), and exits 1 with a one-line message when it cannot listen or read
its data directory.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from keyward_devstack.vaultdev.app import build_app
from keyward_devstack.vaultdev.config import ROOT_TOKEN_ENV, DevVaultConfig
from keyward_devstack.vaultdev.listverb import listen
from keyward_devstack.vaultdev.state import StateError, load_or_create_root_token

__all__ = ["DevVaultConfig", "RunningDevVault", "main", "start"]

#: Access log lines: client, request line, status, size, time. Never headers or bodies.
ACCESS_LOG_FORMAT = '%a "%r" %s %b %Tf'

_PROG = "keyward dev vault"


class RunningDevVault:
    """A listening dev server; ``url`` is where clients reach it."""

    def __init__(
        self, url: str, port: int, runner: web.AppRunner, listener: asyncio.Server
    ) -> None:
        self.url = url
        self.port = port
        self._runner = runner
        self._listener = listener

    async def stop(self) -> None:
        """Stop accepting, close open connections and release the port."""
        self._listener.close()
        await self._runner.cleanup()
        await self._listener.wait_closed()


async def start(config: DevVaultConfig, *, access_log: bool = False) -> RunningDevVault:
    """Serve ``config`` and return once the listener accepts connections.

    Raises OSError when the address cannot be bound (for example, the port is
    taken) and StateError when the data directory cannot be used.
    """
    ssl_context = _tls_context(config)
    app = build_app(config)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=logging.getLogger("keyward_devstack.vaultdev.access") if access_log else None,
        access_log_format=ACCESS_LOG_FORMAT,
    )
    await runner.setup()
    try:
        listener = await listen(runner, config.host, config.port, ssl_context)
    except BaseException:
        await runner.cleanup()
        raise
    port = int(listener.sockets[0].getsockname()[1])
    host = f"[{config.host}]" if ":" in config.host else config.host
    return RunningDevVault(f"{config.scheme}://{host}:{port}", port, runner, listener)


def _tls_context(config: DevVaultConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile=config.tls_cert, keyfile=config.tls_key)
    return context


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m keyward_devstack.transit_server",
        description="Run the keyward development Vault (transit, token, AppRole, Kubernetes).",
    )
    parser.add_argument("--data-dir", type=Path, required=True, help="where state is kept")
    parser.add_argument("--port", type=int, default=8200, help="TCP port (0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--root-token",
        default="",
        help="root token (visible to every local user in /proc/<pid>/cmdline: prefer "
        f"--root-token-file or ${ROOT_TOKEN_ENV}); by default one is generated and kept in "
        "the data directory",
    )
    parser.add_argument(
        "--root-token-file",
        type=Path,
        help="file holding the root token; must not be readable by group or others",
    )
    parser.add_argument("--tls-cert", type=Path, help="PEM certificate chain to serve https")
    parser.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    parser.add_argument(
        "--access-log", action="store_true", help="log one line per request to stderr"
    )
    arguments = parser.parse_args(argv)
    if (arguments.tls_cert is None) != (arguments.tls_key is None):
        parser.error("--tls-cert and --tls-key must be given together")
    return arguments


def main(argv: list[str] | None = None) -> int:
    """Run a dev server until SIGTERM or SIGINT; returns the process exit code."""
    arguments = _arguments(argv)
    if arguments.access_log:
        logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        root_token, announced = _root_token(arguments)
    except RootTokenError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1
    try:
        if not root_token:
            root_token = announced = load_or_create_root_token(arguments.data_dir)
        config = DevVaultConfig(
            data_dir=arguments.data_dir,
            root_token=root_token,
            host=arguments.host,
            port=arguments.port,
            tls_cert=arguments.tls_cert,
            tls_key=arguments.tls_key,
        )
    except (OSError, StateError, ValueError) as exc:
        print(f"{_PROG}: cannot use data directory {arguments.data_dir}: {exc}", file=sys.stderr)
        return 1
    return asyncio.run(_serve(config, access_log=arguments.access_log, announced=announced))


class RootTokenError(Exception):
    """The root token file cannot be used (missing, empty, or readable by others)."""


def _root_token(arguments: argparse.Namespace) -> tuple[str, str]:
    """(token, how the banner shows it); ("", "") when none is given and one is generated.

    A token given in a file or the environment is never printed: the banner goes to a
    log file, and the point of those two ways is that the token stays out of sight.
    """
    if arguments.root_token:
        return arguments.root_token, arguments.root_token
    path: Path | None = arguments.root_token_file
    if path is not None:
        try:
            mode = path.stat().st_mode
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise RootTokenError(f"cannot read root token file {path}: {exc.strerror}") from None
        if mode & 0o077:
            raise RootTokenError(f"root token file {path} is readable by others (mode "
                                 f"{mode & 0o777:o}); chmod 600 it")
        if not token:
            raise RootTokenError(f"root token file {path} is empty")
        return token, f"(from {path})"
    token = os.environ.get(ROOT_TOKEN_ENV, "").strip()
    if token:
        return token, f"(from ${ROOT_TOKEN_ENV})"
    return "", ""


async def _serve(config: DevVaultConfig, *, access_log: bool, announced: str) -> int:
    try:
        running = await start(config, access_log=access_log)
    except StateError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1
    except ssl.SSLError as exc:
        print(f"{_PROG}: cannot load TLS certificate or key: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{_PROG}: {_listen_failure(config, exc)}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # A generated or --root-token dev root token is printed on purpose, as `vault server
    # -dev` does; one from a file or the environment is only named.
    print(f"{_PROG} listening on {running.url} root token: {announced}", flush=True)
    try:
        await stop.wait()
    finally:
        await running.stop()
    return 0


def _listen_failure(config: DevVaultConfig, exc: OSError) -> str:
    where = f"{config.host}:{config.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: port {config.port} is already in use"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied for port {config.port}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {where}: address {config.host} is not available"
    if exc.filename is not None:
        return f"cannot read {exc.filename}: {exc.strerror}"
    return f"cannot listen on {where}: {exc.strerror or exc}"
