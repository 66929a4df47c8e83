"""keyward's operator CLI: runs keyward workflows through Temporal.

    python starter.py inspect-key default      # show a Transit key's versions via the worker

Later subcommands (schedules, rotate-key, renew-cert, pki, status) join here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from temporalio.client import Client

from activities.transit_keys import ReadKeyInput, TransitKeyInfo
from keyward.codec.converter import encrypting_converter
from keyward.config import Settings, load_settings
from keyward.connect.temporal import connect_temporal
from keyward.errors import ConfigError, KeywardError
from keyward.log import configure_logging
from keyward.vault.client import connect_vault
from workflows.inspect_key import InspectTransitKey


@asynccontextmanager
async def temporal_client(settings: Settings) -> AsyncIterator[Client]:
    """A Temporal client that encrypts like the worker does (same converter, same keys)."""
    with connect_vault(settings.vault, renew=False) as vault:
        codec = encrypting_converter(settings, vault)
        try:
            yield await connect_temporal(settings.temporal, data_converter=codec.converter)
        finally:
            await codec.close()


async def inspect_key(settings: Settings, key: str) -> TransitKeyInfo:
    async with temporal_client(settings) as client:
        return await client.execute_workflow(
            InspectTransitKey.run,
            ReadKeyInput(key=key, mount=settings.vault.transit_mount),
            id=f"inspect-key-{key}-{uuid.uuid4().hex[:8]}",
            task_queue=settings.temporal.task_queue,
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None,
                        help="settings file (default: $KEYWARD_CONFIG or ./keyward.toml)")
    commands = parser.add_subparsers(dest="command", required=True)
    inspect = commands.add_parser("inspect-key", help="show a Transit key through the worker")
    inspect.add_argument("key")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        if args.command == "inspect-key":
            info = asyncio.run(inspect_key(settings, args.key))
            print(json.dumps(asdict(info), indent=2))
    except ConfigError as exc:
        print(f"keyward: {exc}", file=sys.stderr)
        return 2
    except KeywardError as exc:
        print(f"keyward: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
