"""The Temporal Web UI, in a real headless Chromium, shows payloads decoded by the codec server.

``worker.py --dev`` starts Temporal (its UI pointed at the dev codec server), a dev
Vault and the worker. A workflow is started with an encrypting client; the browser
then loads the workflow page, where the UI's own JavaScript calls the codec server
across origins (CORS preflight included) and renders the decrypted input.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import hvac
import pytest
from temporalio.client import Client

from keyward.codec.converter import build_data_converter
from keyward.config import DEFAULT_TASK_QUEUE, Settings
from keyward.contracts.transit import ReadKeyInput
from keyward.secrets import Secret
from keyward_devstack.processes import free_port
from tests.e2e.test_dev_stack import DevWorker
from tests.support import kill_processes_mentioning
from workflows.inspect_key import InspectTransitKey

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's chromium at /usr/bin/chromium")


@pytest.fixture
async def dev_stack(tmp_path: Path) -> AsyncIterator[DevWorker]:
    """``python worker.py --dev`` on free ports with its state in this test's directory."""
    worker = DevWorker(state_dir=tmp_path / "state", temporal_port=free_port(),
                       ui_port=free_port(), vault_port=free_port(), codec_port=free_port(),
                       log_dir=tmp_path)
    worker.start()
    try:
        await asyncio.to_thread(worker.wait_ready)
        yield worker
    finally:
        assert worker.proc is not None
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)  # it stops the servers it started
            try:
                await asyncio.to_thread(worker.proc.wait, 30)
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                worker.proc.wait()
        kill_processes_mentioning(str(worker.state_dir))


@dataclasses.dataclass(frozen=True)
class StartedWorkflow:
    workflow_id: str
    run_id: str
    marker: str


async def run_marked_workflow(stack: DevWorker) -> StartedWorkflow:
    """InspectTransitKey on a fresh key named ``marker-…``: the name is in input and result."""
    marker = f"marker-{uuid.uuid4().hex[:12]}"
    vault_address = f"http://127.0.0.1:{stack.vault_port}"
    token = (stack.state_dir / "vault-root-token").read_text().strip()
    vault = hvac.Client(url=vault_address, token=token, timeout=10)
    try:
        vault.secrets.transit.create_key(name=marker, mount_point="transit")
    finally:
        vault.adapter.close()
    settings = Settings()
    settings = dataclasses.replace(settings, vault=dataclasses.replace(
        settings.vault, address=vault_address, token=Secret(token)))
    bundle = build_data_converter(settings, lambda: token, namespace="default")
    try:
        client = await Client.connect(f"127.0.0.1:{stack.temporal_port}",
                                      data_converter=bundle.converter)
        handle = await client.start_workflow(
            InspectTransitKey.run, ReadKeyInput(key=marker), id=f"web-ui-{uuid.uuid4()}",
            task_queue=DEFAULT_TASK_QUEUE)
        info = await handle.result()
        assert info.name == marker
    finally:
        await bundle.close()
    assert handle.result_run_id is not None
    return StartedWorkflow(handle.id, handle.result_run_id, marker)


class DevTools:
    """The smallest Chrome DevTools Protocol client: call a method, wait for its answer."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._last_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._last_id += 1
        await self._socket.send_json({"id": self._last_id, "method": method, "params": params})
        while True:
            message = await self._socket.receive_json(timeout=30)
            if message.get("id") == self._last_id:
                if "error" in message:
                    raise AssertionError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def text(self) -> str:
        result = await self.call("Runtime.evaluate",
                                 expression="document.body ? document.body.innerText : ''",
                                 returnByValue=True)
        return str(result["result"].get("value", ""))


@dataclasses.dataclass
class Browser:
    process: subprocess.Popen[bytes]
    debug_port: int


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Headless Chromium with remote debugging and a throwaway profile.

    Chromium picks its own debugging port (``0``) and writes it to ``DevToolsActivePort``
    in the profile: no port picked here can be taken by another server meanwhile, and a
    slow start on a loaded machine is waited for, not mistaken for a dead endpoint.
    """
    profile = tmp_path / "chromium-profile"
    log_path = tmp_path / "chromium.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", "--no-default-browser-check", "--window-size=1400,1100",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=log, stderr=log, start_new_session=True)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.is_file() and active.read_text().strip()):
            assert process.poll() is None, f"Chromium exited: {log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, \
                f"Chromium wrote no DevToolsActivePort in 60 s: {log_path.read_text()[-2000:]}"
            time.sleep(0.2)
        yield Browser(process, int(active.read_text().splitlines()[0]))
    finally:
        try:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the renderers go too
            process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
async def devtools(browser: Browser) -> AsyncIterator[DevTools]:
    """A DevTools session on the browser's first page."""
    base = f"http://127.0.0.1:{browser.debug_port}"
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        pages: list[dict[str, Any]] = []
        while not pages:
            try:
                async with session.get(f"{base}/json/list") as response:
                    pages = [t for t in await response.json() if t.get("type") == "page"]
            except aiohttp.ClientError:
                pass
            if not pages:
                assert time.monotonic() < deadline, "Chromium's DevTools endpoint never answered"
                assert browser.process.poll() is None, "Chromium exited"
                await asyncio.sleep(0.2)
        async with session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            yield DevTools(ws)


# Dev stack, browser start and page load each wait up to a minute on a loaded machine.
@pytest.mark.timeout(300)
async def test_web_ui_shows_decoded_input(dev_stack: DevWorker, devtools: DevTools,
                                          tmp_path: Path) -> None:
    """The workflow page in the Web UI shows the decrypted input; raw history never holds it."""
    workflow = await run_marked_workflow(dev_stack)

    raw_client = await Client.connect(f"127.0.0.1:{dev_stack.temporal_port}")
    history = await raw_client.get_workflow_handle(workflow.workflow_id).fetch_history()
    assert workflow.marker not in history.to_json()  # without the codec: ciphertext only

    url = (f"http://127.0.0.1:{dev_stack.ui_port}/namespaces/default/workflows/"
           f"{workflow.workflow_id}/{workflow.run_id}/history")
    await devtools.call("Page.enable")
    await devtools.call("Page.navigate", url=url)
    deadline = time.monotonic() + 30
    text = ""
    while workflow.marker not in text and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        text = await devtools.text()

    shot = await devtools.call("Page.captureScreenshot", format="png")
    screenshot = tmp_path / "workflow-page.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    assert workflow.marker in text, f"marker not shown; screenshot {screenshot}\n{text[:3000]}"
    assert "latest_version" in text  # the result card is decoded too
    assert '"codec request"' in dev_stack.stderr.read_text()  # the browser's call was audited
