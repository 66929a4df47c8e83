"""keyward's operator CLI: runs keyward workflows and manages their Schedules through Temporal.

    python starter.py schedules apply [--prune]   # one rotation Schedule per configured key,
                                                  # and Vault's backstop auto_rotate_period
    python starter.py schedules list
    python starter.py rotate-key KEY              # rotate now (same workflow as the schedule)
    python starter.py status                      # versions, next rotation, budget used
    python starter.py inspect-key KEY             # a Transit key's versions via the worker
    python starter.py renew-cert NAME             # renew a configured certificate now
    python starter.py pki bootstrap [--dir DIR]   # a local CA, server and client pair
    python starter.py cloud namespace show NS     # a Temporal Cloud namespace's CAs and codec
    python starter.py cloud ca list NS            # its accepted client CAs
    python starter.py cloud ca add NS CA.pem      # accept client certificates of another CA
    python starter.py cloud ca remove NS (--fingerprint SHA256 | CA.pem)
    python starter.py cloud codec-server set NS URL [--pass-access-token] [--include-credentials]

Every command takes ``--json``: one JSON document on stdout instead of the table (the
workflow commands print JSON either way). Installed, the same CLI is ``keyward``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from keyward.cli import exit_now, run_entry_point
from keyward.cloud.ops import CloudOps
from keyward.codec.converter import encrypting_converter
from keyward.config import Settings, load_settings
from keyward.connect.temporal import connect_temporal
from keyward.contracts.authorities import CaRotationInput
from keyward.contracts.certificates import (
    RenewCertificateInput,
    RenewCertificateResult,
)
from keyward.contracts.cloud import CloudNamespaceChange, CloudNamespaceTrust
from keyward.contracts.ids import (
    ca_rotation_workflow_id,
    ledger_workflow_id,
    manual_renewal_workflow_id,
    manual_rotation_workflow_id,
    rotation_schedule_id,
)
from keyward.contracts.ledger import LedgerState
from keyward.contracts.rotation import RotateKeyResult
from keyward.contracts.transit import ReadKeyInput, TransitKeyInfo
from keyward.errors import ConfigError, KeywardError, UsageError
from keyward.issuers.factory import build_issuer
from keyward.log import configure_logging
from keyward.pki.bootstrap import bootstrap_local_pki, describe, issue_local_pair
from keyward.pki.types import CertificateSpec
from keyward.policy.cadence import format_interval
from keyward.rotation.backstops import BackstopChange, reconcile_backstops
from keyward.rotation.inputs import rotate_input
from keyward.rotation.schedules import apply_schedules, list_rotation_schedules
from keyward.services.certificates import Certificates
from keyward.services.cloud_namespaces import CloudNamespaces
from keyward.services.transit_keys import TransitKeys
from keyward.stores.factory import store_for
from keyward.vault.client import VaultSession, connect_vault
from workflows.inspect_key import InspectTransitKey
from workflows.key_ledger import TransitKeyLedger
from workflows.renew_certificate import RenewCertificate
from workflows.rotate_ca import RotateCertificateAuthority
from workflows.rotate_key import RotateTransitKey


@asynccontextmanager
async def connected(settings: Settings) -> AsyncIterator[tuple[Client, VaultSession]]:
    """A Temporal client that encrypts like the worker does, and the Vault session behind it."""
    with connect_vault(settings.vault, renew=False) as vault:
        codec = encrypting_converter(settings, vault)
        try:
            yield await connect_temporal(settings.temporal, data_converter=codec.converter), vault
        finally:
            await codec.close()


async def inspect_key(settings: Settings, key: str) -> TransitKeyInfo:
    async with connected(settings) as (client, _):
        return await client.execute_workflow(
            InspectTransitKey.run, ReadKeyInput(key=key, mount=settings.vault.transit_mount),
            id=f"keyward/inspect/{key}/{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal.task_queue)


async def rotate_key(settings: Settings, key: str) -> RotateKeyResult:
    async with connected(settings) as (client, _):
        mount = settings.vault.transit_mount
        return await client.execute_workflow(
            RotateTransitKey.run, rotate_input(settings, key, reason="manual"),
            id=manual_rotation_workflow_id(mount, key, uuid.uuid4().hex[:8]),
            task_queue=settings.temporal.task_queue,
            static_summary=f"manual rotation of {mount}/{key}")


async def renew_cert(settings: Settings, name: str) -> RenewCertificateResult:
    if name not in settings.certificates:
        known = ", ".join(sorted(settings.certificates)) or "none"
        raise ConfigError(f"certificates.{name}", f"not configured (configured: {known})")
    async with connected(settings) as (client, _):
        return await client.execute_workflow(
            RenewCertificate.run, RenewCertificateInput(name, force=True),
            id=manual_renewal_workflow_id(name, uuid.uuid4().hex[:8]),
            task_queue=settings.temporal.task_queue,
            static_summary=f"manual renewal of certificate {name}")


#: The CA ``worker.py --dev`` adds to its own settings ([certificate_authorities.local]).
DEV_STACK_CA = "local"


def _dev_stack_ca(settings: Settings, name: str) -> bool:
    """``name`` is the CA of a local stack (``worker.py --dev``) with these settings: the
    stack's worker has that entry although the starter's settings do not."""
    dev = settings.devstack
    return name == DEV_STACK_CA and dev.mtls and (dev.state_dir / "pki" / "ca.crt").is_file()


async def rotate_ca(settings: Settings, name: str, *, wait: bool) -> dict[str, Any]:
    """Start (or, with ``wait``, run to the end) the rotation of a configured CA."""
    if name not in settings.certificate_authorities and not _dev_stack_ca(settings, name):
        known = ", ".join(sorted(settings.certificate_authorities)) or "none"
        raise ConfigError(f"certificate_authorities.{name}",
                          f"not configured (configured: {known})")
    workflow_id = ca_rotation_workflow_id(name)
    async with connected(settings) as (client, _):
        try:
            handle = await client.start_workflow(
                RotateCertificateAuthority.run, CaRotationInput(name), id=workflow_id,
                task_queue=settings.temporal.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=f"rotation of certificate authority {name}")
        except WorkflowAlreadyStartedError:
            raise KeywardError(f"rotate-ca failed: certificate authority {name!r} is already "
                               f"being rotated by workflow {workflow_id}") from None
        if not wait:
            return {"certificate_authority": name, "workflow_id": handle.id,
                    "run_id": handle.result_run_id, "state": "started"}
        return asdict(await handle.result())


def print_json(document: Any) -> None:
    """``document`` (dataclasses, paths and datetimes included) as indented JSON."""
    print(json.dumps(document, indent=2, default=str))


def pki_bootstrap(directory: Path, *, overwrite: bool, as_json: bool = False) -> int:
    result = bootstrap_local_pki(directory, overwrite=overwrite)
    if as_json:
        print_json({"directory": result.directory,
                    "files": [asdict(written) for written in result.files]})
        return 0
    print(f"wrote a local PKI under {result.directory}:")
    for line in describe(result):
        print(f"  {line}")
    return 0


def pki_issue(directory: Path, spec: CertificateSpec, *, as_json: bool = False) -> int:
    written_files = issue_local_pair(directory, spec)
    if as_json:
        print_json({"files": [asdict(written) for written in written_files]})
        return 0
    for written in written_files:
        print(f"{written.path}: {written.description}")
    return 0


CERTIFICATE_COLUMNS = ("certificate", "serial", "not after", "left", "state")


def certificate_rows(settings: Settings) -> list[tuple[str, ...]]:
    """Installed certificates with their expiry, read where they are installed."""
    certificates = Certificates(settings, build_issuer, store_for)
    rows: list[tuple[str, ...]] = []
    now = datetime.now(UTC)
    for name in certificates.names():
        try:
            info = certificates.inspect(name)
        except KeywardError as exc:  # the line the other commands print for a failed step
            raise KeywardError(f"status failed: {exc}") from exc
        if not info.present or info.not_after is None:
            rows.append((name, "-", "-", "-", info.problem or "not installed"))
            continue
        left = _age((info.not_after - now).total_seconds()) if info.not_after > now \
            else "EXPIRED"
        rows.append((name, info.serial or "?", info.not_after.isoformat(timespec="minutes"),
                     left, info.problem or "ok"))
    return rows


async def schedules_apply(settings: Settings, *, prune: bool, as_json: bool = False) -> int:
    """Apply the schedules, then reconcile each key's Vault backstop; exit 1 when a
    backstop could not be read or set (everything else has still been applied)."""
    if not settings.rotation.keys:
        print("no keys under [rotation] keys: nothing to schedule", file=sys.stderr)
    async with connected(settings) as (client, vault):
        changes = await apply_schedules(client, settings, prune=prune)
        backstops = await asyncio.to_thread(reconcile_backstops, TransitKeys(vault.client),
                                            settings)
    failed = [b for b in backstops if b.change == "failed"]
    if as_json:
        print_json({"schedules": [asdict(change) for change in changes],
                    "backstops": [asdict(backstop) for backstop in backstops]})
    else:
        for change in changes:
            print(f"{change.change:<10} {change.schedule_id}  {change.detail}")
        for backstop in backstops:
            print_backstop(backstop)
    if failed:
        print(f"keyward: schedules apply: the Vault backstop of "
              f"{', '.join(f'{b.mount}/{b.key}' for b in failed)} failed", file=sys.stderr)
        return 1
    return 0


def print_backstop(backstop: BackstopChange) -> None:
    name = f"{backstop.mount}/{backstop.key}"
    print(f"{'backstop':<10} {name}  {backstop.change}: {backstop.detail}")
    for warning in backstop.warnings:
        print(f"{'warning':<10} {name}  {warning}")


async def schedules_list(settings: Settings, *, as_json: bool = False) -> int:
    async with connected(settings) as (client, _):
        found = await list_rotation_schedules(client)
    if as_json:
        print_json([{**asdict(info), "interval_seconds": info.interval.total_seconds()
                     if info.interval else None} for info in found])
        return 0
    if not found:
        print("no keyward rotation schedules")
    for info in found:
        every = format_interval(info.interval) if info.interval else "?"
        nxt = info.next_run.isoformat(timespec="seconds") if info.next_run else "-"
        paused = " (paused)" if info.paused else ""
        print(f"{info.schedule_id}  every {every}  next {nxt}{paused}\n    {info.note}")
    return 0


@dataclass(frozen=True)
class KeyStatus:
    key: str
    latest_version: int
    latest_age: str
    decryption_floor: int
    next_rotation: str
    budget_used: str


def _age(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86_400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"


async def key_status(client: Client, vault: VaultSession, settings: Settings,
                     key: str) -> KeyStatus:
    mount = settings.vault.transit_mount
    try:
        info = await asyncio.to_thread(TransitKeys(vault.client).read, key, mount)
    except KeywardError as exc:  # the line the other commands print for a failed step
        raise KeywardError(f"status failed: {exc}") from exc
    created = info.version_created.get(info.latest_version, 0)
    next_rotation = "no schedule"
    try:
        described = await client.get_schedule_handle(rotation_schedule_id(mount, key)).describe()
        if described.info.next_action_times:
            next_rotation = described.info.next_action_times[0].isoformat(timespec="minutes")
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    budget_used = "no reports yet"
    try:
        ledger: LedgerState = await client.get_workflow_handle(
            ledger_workflow_id(mount, key)).query(TransitKeyLedger.usage)
        used = ledger.counts.get(info.latest_version, 0)
        budget_used = f"{used:,} of {ledger.budget:,} ({used / ledger.budget:.4%})"
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    return KeyStatus(key=key, latest_version=info.latest_version,
                     latest_age=_age(time.time() - created),
                     decryption_floor=info.min_decryption_version,
                     next_rotation=next_rotation, budget_used=budget_used)


async def status(settings: Settings, keys: Sequence[str], *, as_json: bool = False) -> int:
    keys = list(keys) or sorted(settings.rotation.keys) or ["default"]
    async with connected(settings) as (client, vault):
        rows = [await key_status(client, vault, settings, key) for key in keys]
    if as_json:
        print_json({"keys": [asdict(row) for row in rows],
                    "certificates": [dict(zip(CERTIFICATE_COLUMNS, row, strict=True))
                                     for row in certificate_rows(settings)],
                    "as_of": datetime.now(UTC).isoformat(timespec="seconds")})
        return 0
    _print_table(("key", "version", "age", "floor", "next rotation",
                  "budget used (latest, 2^32 x safety)"),
                 [(r.key, f"v{r.latest_version}", r.latest_age, f"v{r.decryption_floor}",
                   r.next_rotation, r.budget_used) for r in rows])
    if settings.certificates:
        print()
        _print_table(CERTIFICATE_COLUMNS, certificate_rows(settings))
    print(f"\nas of {datetime.now(UTC).isoformat(timespec='seconds')}")
    return 0


def _print_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    table = [headers, *rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


# -- Temporal Cloud namespaces (the Cloud Ops API, with cloud.api_key_file) -------------------


def _read_pem(path: Path) -> str:
    try:
        return path.read_bytes().decode("ascii", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


async def cloud_run(namespaces: CloudNamespaces, args: argparse.Namespace
                    ) -> CloudNamespaceTrust | CloudNamespaceChange:
    """The service call the ``cloud`` command in ``args`` names."""
    namespace = args.namespace
    match args.cloud_area, args.cloud_action:
        case ("namespace", "show") | ("ca", "list"):
            return await namespaces.read(namespace)
        case "ca", "add":
            return await namespaces.add_client_ca(namespace, _read_pem(args.pem_file),
                                                  source=f"the CA file {args.pem_file}")
        case "ca", "remove" if args.fingerprint is not None:
            return await namespaces.remove_client_cas(namespace, [args.fingerprint])
        case "ca", "remove":
            return await namespaces.remove_client_ca_pem(namespace, _read_pem(args.pem_file),
                                                         source=f"the PEM file {args.pem_file}")
        case "codec-server", "set":
            return await namespaces.set_codec_server(
                namespace, args.url, pass_access_token=args.pass_access_token,
                include_cross_origin_credentials=args.include_credentials)
        case area, action:  # pragma: no cover - argparse allows only the above
            raise AssertionError(f"unhandled command cloud {area} {action}")


async def cloud(settings: Settings, args: argparse.Namespace) -> int:
    """``cloud …``: through the Cloud Ops API with the settings' API key; no Vault, no
    Temporal. Not limited to ``cloud.namespaces`` (that list binds the activities)."""
    command = f"cloud {args.cloud_area} {args.cloud_action} {args.namespace}"
    ops = await CloudOps.connect(settings.cloud)  # a missing key file is exit 2, as a setting
    try:
        result = await cloud_run(CloudNamespaces(ops), args)
    except (ConfigError, UsageError):
        raise
    except KeywardError as exc:
        raise KeywardError(f"{command} failed: {exc}") from exc
    if args.as_json:
        print_json(asdict(result))
    elif isinstance(result, CloudNamespaceChange):
        print(result.summary if result.operation_id is None
              else f"{result.summary} (operation {result.operation_id})")
    elif args.cloud_area == "ca":
        _print_cas(result)
    else:
        _print_namespace(result)
    return 0


def _print_cas(trust: CloudNamespaceTrust) -> None:
    mtls = "on" if trust.mtls_enabled else "off"
    print(f"{trust.namespace}: {len(trust.accepted_client_cas)} accepted client CA(s), "
          f"mTLS {mtls}")
    if trust.accepted_client_cas:
        _print_table(("sha-256 fingerprint", "subject", "not after", "ca"),
                     [(ca.fingerprint_sha256, ca.subject,
                       ca.not_after.isoformat(timespec="minutes"),
                       "yes" if ca.is_ca else "NO (not a CA)")
                      for ca in trust.accepted_client_cas])


def _print_namespace(trust: CloudNamespaceTrust) -> None:
    codec = trust.codec_server
    print(f"namespace         {trust.namespace}\n"
          f"state             {trust.state}\n"
          f"resource version  {trust.resource_version}")
    if codec is None:
        print("codec server      not set")
    else:
        print(f"codec server      {codec.endpoint}\n"
              f"  pass access token               {'yes' if codec.pass_access_token else 'no'}\n"
              f"  include cross-origin credentials "
              f"{'yes' if codec.include_cross_origin_credentials else 'no'}")
    print()
    _print_cas(trust)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $KEYWARD_CONFIG or ./keyward.toml)")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", dest="as_json",
                        help="print one JSON document instead of a table")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect-key", parents=[output],
                                  help="show a Transit key through the worker")
    inspect.add_argument("key")
    rotate = commands.add_parser("rotate-key", parents=[output], help="rotate a Transit key now")
    rotate.add_argument("key")
    renew = commands.add_parser("renew-cert", parents=[output],
                                help="renew a configured certificate now")
    renew.add_argument("name")
    rotate_ca_command = commands.add_parser(
        "rotate-ca", parents=[output],
        help="rotate a configured certificate authority (durable: runs for days)")
    rotate_ca_command.add_argument("name")
    rotate_ca_command.add_argument("--wait", action="store_true",
                                   help="wait for the whole rotation, old CA retired")
    pki = commands.add_parser("pki", help="local PKI")
    pki_actions = pki.add_subparsers(dest="pki_action", required=True)
    bootstrap = pki_actions.add_parser("bootstrap", parents=[output],
                                       help="write a local CA, server and client pair")
    bootstrap.add_argument("--dir", type=Path, default=Path("pki"),
                           help="where to write (default: ./pki)")
    bootstrap.add_argument("--overwrite", action="store_true",
                           help="replace an existing CA (certificates it signed stop verifying)")
    issue = pki_actions.add_parser(
        "issue", parents=[output],
        help="issue another pair from the local CA in --dir into --dir/NAME")
    issue.add_argument("name", help="directory under --dir for tls.crt, tls.key, ca.crt")
    issue.add_argument("--dir", type=Path, default=Path("pki"),
                       help="where the CA is (default: ./pki)")
    issue.add_argument("--cn", required=True, help="subject common name")
    issue.add_argument("--dns", action="append", default=[], help="DNS SAN (repeatable)")
    issue.add_argument("--ip", action="append", default=[], help="IP SAN (repeatable)")
    issue.add_argument("--usage", choices=("client", "server", "both"), default="client",
                       help="extended key usage; 'both' for a Temporal internode pair, "
                            "which is presented as server and as client (default: client)")
    issue.add_argument("--days", type=float, default=30.0, help="lifetime (default: 30)")
    show = commands.add_parser("status", parents=[output],
                               help="versions, next rotation, budget used per key")
    show.add_argument("keys", nargs="*", help="keys to show (default: the configured ones)")
    schedules = commands.add_parser("schedules", help="rotation Schedules")
    actions = schedules.add_subparsers(dest="action", required=True)
    apply = actions.add_parser("apply", parents=[output],
                               help="create or update one Schedule per configured key and "
                                    "reconcile its Vault backstop (rotation.vault_backstop)")
    apply.add_argument("--prune", action="store_true",
                       help="also delete schedules of keys no longer configured")
    actions.add_parser("list", parents=[output], help="list keyward's rotation Schedules")
    _cloud_parser(commands, output)
    return parser.parse_args(argv)


def _cloud_parser(commands: Any, output: argparse.ArgumentParser) -> None:
    cloud_cmd = commands.add_parser(
        "cloud", help="a Temporal Cloud namespace's accepted client CAs and codec server "
                      "(Cloud Ops API; needs cloud.api_key_file)")
    areas = cloud_cmd.add_subparsers(dest="cloud_area", required=True)
    ns_help = "the namespace as Cloud names it, <name>.<account-id> (e.g. orders.a1b2c)"

    namespace = areas.add_parser("namespace", help="a namespace's trust and codec server")
    namespace_actions = namespace.add_subparsers(dest="cloud_action", required=True)
    show = namespace_actions.add_parser(
        "show", parents=[output], help="state, accepted client CAs and codec server")
    show.add_argument("namespace", help=ns_help)

    ca = areas.add_parser("ca", help="accepted client CAs (spec.mtls_auth.accepted_client_ca)")
    ca_actions = ca.add_subparsers(dest="cloud_action", required=True)
    ca_list = ca_actions.add_parser("list", parents=[output],
                                    help="the CAs with their SHA-256 fingerprints")
    ca_list.add_argument("namespace", help=ns_help)
    ca_add = ca_actions.add_parser(
        "add", parents=[output],
        help="accept client certificates issued by the CA(s) in a PEM file (a no-op for "
             "those already accepted)")
    ca_add.add_argument("namespace", help=ns_help)
    ca_add.add_argument("pem_file", type=Path, metavar="pem-file",
                        help="CA certificate(s), PEM; no leaf, no private key")
    ca_remove = ca_actions.add_parser(
        "remove", parents=[output],
        help="stop accepting a CA (refused for the last one; a no-op when it is not there)")
    ca_remove.add_argument("namespace", help=ns_help)
    which = ca_remove.add_mutually_exclusive_group(required=True)
    which.add_argument("pem_file", type=Path, nargs="?", metavar="pem-file",
                       help="the certificate(s) to remove, PEM")
    which.add_argument("--fingerprint", metavar="SHA256",
                       help="the CA's SHA-256 fingerprint, as 'cloud ca list' prints it")

    codec = areas.add_parser("codec-server", help="the Web UI's codec endpoint")
    codec_actions = codec.add_subparsers(dest="cloud_action", required=True)
    codec_set = codec_actions.add_parser(
        "set", parents=[output], help="set the endpoint and its two switches (a no-op when "
                                      "they already have these values)")
    codec_set.add_argument("namespace", help=ns_help)
    codec_set.add_argument("url", help="https:// URL of the codec server")
    codec_set.add_argument("--pass-access-token", action="store_true",
                           help="the Web UI sends the user's access token with each request")
    codec_set.add_argument("--include-credentials", action="store_true",
                           help="the browser sends cookies on its cross-origin requests "
                                "(include_cross_origin_credentials)")


async def dispatch(settings: Settings, args: argparse.Namespace) -> int:
    """Run the command ``args`` names (every one; argparse refuses anything else)."""
    match args.command, getattr(args, "action", None):
        case "inspect-key", _:
            print_json(asdict(await inspect_key(settings, args.key)))
        case "rotate-key", _:
            print_json(asdict(await rotate_key(settings, args.key)))
        case "renew-cert", _:
            print_json(asdict(await renew_cert(settings, args.name)))
        case "rotate-ca", _:
            print_json(await rotate_ca(settings, args.name, wait=args.wait))
        case "status", _:
            return await status(settings, args.keys, as_json=args.as_json)
        case "schedules", "apply":
            return await schedules_apply(settings, prune=args.prune, as_json=args.as_json)
        case "schedules", "list":
            return await schedules_list(settings, as_json=args.as_json)
        case "cloud", _:
            return await cloud(settings, args)
        case command, action:  # pragma: no cover - argparse allows only the above
            raise AssertionError(f"unhandled command {command} {action}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def body() -> int:
        if args.command == "pki" and args.pki_action == "issue":  # needs no settings either
            return pki_issue(args.dir, CertificateSpec(
                name=args.name, common_name=args.cn, dns_names=tuple(args.dns),
                ip_addresses=tuple(args.ip), usage=args.usage,
                lifetime=timedelta(days=args.days)), as_json=args.as_json)
        if args.command == "pki":  # needs no settings, Vault or Temporal
            return pki_bootstrap(args.dir, overwrite=args.overwrite, as_json=args.as_json)
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        return asyncio.run(dispatch(settings, args))

    return run_entry_point(body, action=args.command)


def console() -> NoReturn:
    """The ``keyward`` console script (``pip install`` puts it on PATH)."""
    exit_now(main())


if __name__ == "__main__":
    console()
