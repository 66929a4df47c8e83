"""Through a real Temporal server: history holds only encrypted payloads; failures stay closed."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from keyward.app.worker import ACTIVITY_THREADS, build_worker
from keyward.codec.converter import CodecBundle, build_data_converter
from keyward.codec.transit_codec import PayloadEncryptionError
from keyward.config import CodecSettings, Settings, TemporalSettings
from keyward.contracts.transit import ReadKeyInput
from keyward.vault.client import build_hvac_client, connect_vault
from keyward_devstack.processes import free_port
from keyward_devstack.vault_dev import DevVault, ensure_transit
from tests.conftest import VaultEndpoint
from workflows.inspect_key import InspectTransitKey


def iter_payloads(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a protobuf message."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            values = value.values()
        elif field.is_repeated:
            values = value
        else:
            values = [value]
        for item in values:
            if isinstance(item, Message):
                yield from iter_payloads(item)


def with_converter(client: Client, settings: Settings, token: str) -> tuple[Client, CodecBundle]:
    bundle = build_data_converter(settings, lambda: token, namespace=client.namespace)
    config = client.config()
    config["data_converter"] = bundle.converter
    return Client(**config), bundle


@pytest.mark.parametrize("mode", ["direct", "envelope"])
async def test_history_holds_only_ciphertext(temporal_client: Client, vault: VaultEndpoint,
                                             transit_key: str, task_queue: str,
                                             mode: str) -> None:
    """A workflow's history, read raw without the codec, has no plaintext payload at all."""
    settings = dataclasses.replace(
        Settings(), vault=vault.settings(), temporal=TemporalSettings(task_queue=task_queue),
        codec=CodecSettings(mode=mode, keys={temporal_client.namespace: transit_key}))  # type: ignore[arg-type]
    client, bundle = with_converter(temporal_client, settings, vault.token.reveal())
    workflow_id = f"encrypted-{uuid.uuid4()}"
    try:
        with connect_vault(settings.vault) as session, \
                concurrent.futures.ThreadPoolExecutor(ACTIVITY_THREADS) as pool:
            async with build_worker(client, settings, session, pool):
                info = await client.execute_workflow(
                    InspectTransitKey.run, ReadKeyInput(key=transit_key), id=workflow_id,
                    task_queue=task_queue, memo={"note": "marker-in-memo"})
        assert info.name == transit_key  # decoded correctly on the way back

        history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
        found = [p for event in history.events for p in iter_payloads(event)]
        assert len(found) >= 4  # input, activity input, activity result, workflow result, memo
        for payload in found:
            assert payload.metadata["encoding"] == b"binary/encrypted", payload.metadata
            assert payload.metadata["keyward-key"] == transit_key.encode()
        raw = history.to_json()
        assert "marker-in-memo" not in raw
        assert '"latest_version"' not in raw
    finally:
        await bundle.close()


@pytest.mark.parametrize("mode", ["direct", "envelope"])
async def test_start_fails_closed_when_vault_is_down(temporal_client: Client, tmp_path: Path,
                                                     task_queue: str, mode: str) -> None:
    """With the Transit server stopped, starting a workflow raises and nothing reaches history.

    (An envelope codec that still holds a fresh data key keeps encrypting without Vault,
    as designed; what matters is that nothing is ever sent unencrypted.)
    """
    dev = DevVault(host="127.0.0.1", port=free_port(), state_dir=tmp_path)
    process, token = await dev.ensure_running()
    assert process is not None
    settings = dataclasses.replace(
        Settings(), vault=dataclasses.replace(Settings().vault, address=dev.address, token=token))
    hvac_client = build_hvac_client(settings.vault)
    hvac_client.token = token.reveal()
    ensure_transit(hvac_client, "transit", [temporal_client.namespace])
    settings = dataclasses.replace(settings, codec=CodecSettings(mode=mode))  # type: ignore[arg-type]
    working, warm = with_converter(temporal_client, settings, token.reveal())
    encrypting, bundle = with_converter(temporal_client, settings, token.reveal())
    workflow_id = f"fail-closed-{uuid.uuid4()}"
    try:
        # The same settings work while Vault is up (so the failure below is Vault's absence)...
        await working.start_workflow(InspectTransitKey.run, ReadKeyInput(key="default"),
                                     id=f"{workflow_id}-ok", task_queue=task_queue)
        await warm.close()
        process.stop()
        # ...and a client whose codec has no cached data key fails closed once it is gone.
        with pytest.raises(PayloadEncryptionError, match="cannot connect to Vault"):
            await encrypting.start_workflow(InspectTransitKey.run, ReadKeyInput(key="default"),
                                            id=workflow_id, task_queue=task_queue)
        with pytest.raises(RPCError) as caught:
            await temporal_client.get_workflow_handle(workflow_id).describe()
        assert caught.value.status == RPCStatusCode.NOT_FOUND
    finally:
        process.stop()
        hvac_client.adapter.close()
        await bundle.close()
