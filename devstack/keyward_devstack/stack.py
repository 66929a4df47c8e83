"""The embedded local stack behind ``python worker.py --dev``.

Starts what is not already running — the Temporal dev server and a dev Vault
with Transit keys — and tells the worker where they are. With
``TEMPORAL_ADDRESS`` or ``VAULT_ADDR`` set it starts nothing for that service
and uses the one named. State lives in ``devstack.state_dir`` so a second start
finds its workflows and keys again.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TextIO

from temporalio.client import Client

from keyward.config import CodecServerSettings, Settings
from keyward.contracts.ids import renewal_schedule_id
from keyward.log import get_logger
from keyward.policy.cadence import format_interval
from keyward.rotation.schedules import apply_certificate_schedule, remove_managed_schedule
from keyward.secrets import Secret
from keyward.vault.client import build_hvac_client
from keyward_devstack.mtls import (
    DEV_CERTIFICATE_AUTHORITY,
    DEV_CERTIFICATES,
    DEV_CLIENT_CERTIFICATE,
    DEV_GATEWAY_CERTIFICATE,
    MANAGED_BY,
    DevPki,
    ensure_dev_pki,
    settings_behind_gateway,
    start_gateway,
)
from keyward_devstack.mtls_gateway import MtlsGateway
from keyward_devstack.processes import ManagedProcess
from keyward_devstack.temporal_dev import TemporalDevServer
from keyward_devstack.vault_dev import DevVault, ensure_transit


@dataclass
class LocalStack:
    """What the stack runs, and the settings/environment that point at it."""

    settings: Settings
    env: dict[str, str]
    temporal_address: str | None = None
    ui_url: str | None = None
    #: Where the dev codec server should listen; the Web UI is pointed at it.
    codec_server: CodecServerSettings | None = None
    processes: list[ManagedProcess] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The mTLS front of the dev Temporal server the worker connects through (in-process).
    gateway: MtlsGateway | None = None
    #: The certificate entry the stack added for the worker (its schedule is the stack's).
    worker_certificate: str | None = None
    #: The certificate entry the stack added for the gateway's server pair (likewise).
    gateway_certificate: str | None = None

    async def sync_schedules(self, client: Client) -> None:
        """Keep the schedules of the stack's own certificates, or remove stale ones.

        With mTLS the stack's certificates (the worker's client pair and the gateway's
        server pair) are renewed by schedules the stack owns (their memo says so, and
        ``schedules apply`` leaves them alone). On the stack's own dev server without
        mTLS, schedules an earlier mTLS run left behind would fail on certificates this
        run does not know: they go.
        """
        log = get_logger("keyward_devstack")
        mine = [(name, what) for name, what in ((self.worker_certificate, "worker"),
                                                 (self.gateway_certificate, "gateway"))
                if name is not None]
        for name, what in mine:
            change = await apply_certificate_schedule(client, self.settings, name,
                                                      managed_by=MANAGED_BY)
            log.info(f"{what} certificate schedule", schedule=change.schedule_id,
                     change=change.change, detail=change.detail)
        if not mine and self.ui_url is not None:
            for name in DEV_CERTIFICATES:
                schedule_id = renewal_schedule_id(name)
                if await remove_managed_schedule(client, schedule_id, managed_by=MANAGED_BY):
                    what = "worker" if name == DEV_CLIENT_CERTIFICATE else "gateway"
                    log.info(f"removed the {what} certificate schedule (devstack.mtls is off)",
                             schedule=schedule_id)

    async def aclose(self) -> None:
        """Stop the gateway, then what this stack started, newest first."""
        if self.gateway is not None:
            await self.gateway.stop()
            self.gateway = None
        self.stop()

    def stop(self) -> None:
        """Stop the processes this stack started, newest first; reused ones are left alone."""
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def describe(self, out: TextIO) -> None:
        out.write("\nkeyward local stack\n")
        for line in self.notes:
            out.write(f"  {line}\n")
        out.write("\n")
        out.flush()


async def start_local_stack(settings: Settings, env: Mapping[str, str]) -> LocalStack:
    """Bring up Temporal and Vault as needed; returns settings and env pointing at them."""
    dev = settings.devstack
    stack = LocalStack(settings=settings, env=dict(env))
    state = dev.state_dir.resolve()
    try:
        if env.get("TEMPORAL_ADDRESS"):
            stack.temporal_address = env["TEMPORAL_ADDRESS"]
            stack.notes.append(f"Temporal  {stack.temporal_address} (from TEMPORAL_ADDRESS)")
        else:
            codec_url = f"http://{dev.host}:{dev.codec_server_port}"
            server = TemporalDevServer(host=dev.host, port=dev.temporal_port,
                                       ui_port=dev.ui_port, state_dir=state,
                                       ui_codec_endpoint=codec_url)
            stack.codec_server = dataclasses.replace(
                settings.codec_server, host=dev.host, port=dev.codec_server_port,
                # Local development only: the dev UI sends no token to an http endpoint.
                auth="none",
                allowed_origins=(server.ui_url, f"http://localhost:{dev.ui_port}"),
                tls_cert=None, tls_key=None, tls_client_ca=None)
            process = await server.ensure_running()
            verb = "started" if process else "already running, reused"
            if process:
                stack.processes.append(process)
            stack.temporal_address = server.address
            stack.ui_url = server.ui_url
            stack.env["TEMPORAL_ADDRESS"] = server.address
            stack.notes += [
                f"Temporal  {server.address} ({verb}; state {state / 'temporal.db'})",
                f"Web UI    {server.ui_url}",
                f"Codec     {codec_url} (decrypts for the Web UI; dev only, no auth)",
            ]

        if env.get("VAULT_ADDR"):
            stack.notes.append(f"Vault     {settings.vault.address} (from VAULT_ADDR)")
        else:
            vault = DevVault(host=dev.host, port=dev.vault_port, state_dir=state)
            vault_process, token = await vault.ensure_running()
            verb = "started" if vault_process else "already running, reused"
            if vault_process:
                stack.processes.append(vault_process)
            vault_settings = dataclasses.replace(settings.vault, address=vault.address,
                                                 auth_method="token", token=token, ca_cert=None)
            stack.settings = dataclasses.replace(stack.settings, vault=vault_settings)
            stack.notes += [
                f"Vault     {vault.address} ({verb}; dev server)",
                f"          export VAULT_ADDR={vault.address} "
                f"VAULT_TOKEN=$(cat {vault.token_path})",
            ]
            _create_keys(stack.settings, dev.transit_keys)
        if stack.ui_url is not None and dev.mtls:
            await _put_worker_behind_gateway(stack, state)
        if stack.temporal_address:
            stack.notes.append(f"Try       temporal workflow list --address "
                               f"{stack.temporal_address}")
    except BaseException:
        await stack.aclose()
        raise
    return stack


async def _put_worker_behind_gateway(stack: LocalStack, state: Path) -> None:
    """Local CA, gateway, and the worker's settings pointing at both (see devstack.mtls)."""
    dev = stack.settings.devstack
    pki = DevPki(state / "pki")
    lifetime = timedelta(minutes=dev.client_certificate_minutes)
    server_lifetime = timedelta(minutes=dev.gateway_certificate_minutes)
    done = await asyncio.to_thread(ensure_dev_pki, pki, host=dev.host, client_lifetime=lifetime,
                                   server_lifetime=server_lifetime)
    stack.gateway = await start_gateway(
        pki, host=dev.host, port=dev.gateway_port, upstream_host=dev.host,
        upstream_port=dev.temporal_port,
        max_connection_age=timedelta(seconds=dev.gateway_max_connection_age_seconds))
    address = stack.gateway.address
    stack.settings = settings_behind_gateway(stack.settings, pki, address, lifetime)
    stack.worker_certificate = DEV_CLIENT_CERTIFICATE
    stack.gateway_certificate = DEV_GATEWAY_CERTIFICATE
    stack.env["TEMPORAL_ADDRESS"] = address
    window = format_interval(lifetime / 3)
    stack.notes += [
        f"mTLS      worker -> gateway {address} -> Temporal; client certificate "
        f"{pki.client / 'tls.crt'}",
        f"          lives {format_interval(lifetime)}, renewed with {window} left by schedule "
        f"{renewal_schedule_id(DEV_CLIENT_CERTIFICATE)}, reloaded without restart",
        f"          gateway certificate {pki.server / 'tls.crt'} lives "
        f"{format_interval(server_lifetime)}, renewed by schedule "
        f"{renewal_schedule_id(DEV_GATEWAY_CERTIFICATE)}; both trust {pki.bundle}",
        f"          rotate the CA: python starter.py rotate-ca {DEV_CERTIFICATE_AUTHORITY} --wait "
        "([certificate_authorities.local], see README)",
        *(f"          ({line})" for line in done),
    ]


def _create_keys(settings: Settings, keys: tuple[str, ...]) -> None:
    client = build_hvac_client(settings.vault)
    token = settings.vault.token
    client.token = token.reveal() if isinstance(token, Secret) else None
    try:
        ensure_transit(client, settings.vault.transit_mount, keys)
    finally:
        client.adapter.close()
