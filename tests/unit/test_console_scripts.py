"""The installed console scripts are the top-level entry points, and print JSON on request."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = {"keyward-worker": "worker:console", "keyward-codec-server": "codec_server:console",
           "keyward": "starter:console"}


def test_pyproject_declares_the_three_scripts_on_existing_functions() -> None:
    """`keyward-worker`, `keyward-codec-server` and `keyward` name the entry scripts'
    `console` functions (which exit through exit_now, as `python worker.py` does)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert declared == SCRIPTS
    for target in declared.values():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_the_installed_scripts_point_where_pyproject_says() -> None:
    """What pip installed (the venv's entry points) matches pyproject: a stale install
    would run other code than the checkout."""
    installed = {ep.name: ep.value for ep in entry_points(group="console_scripts")
                 if ep.name in SCRIPTS}
    if not installed:
        pytest.skip("keyward is not installed in this interpreter's environment")
    assert installed == SCRIPTS


def test_keyward_pki_commands_print_json(tmp_path: Path) -> None:
    """The installed `keyward` runs the operator CLI: `pki bootstrap --json` and
    `pki issue --json` list the files written, as JSON."""
    script = Path(sys.executable).parent / "keyward"
    command = [str(script)] if script.exists() else [sys.executable, str(ROOT / "starter.py")]
    done = subprocess.run([*command, "pki", "bootstrap", "--dir", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    written = json.loads(done.stdout)
    assert written["directory"] == str(tmp_path)
    paths = {Path(item["path"]).relative_to(tmp_path).as_posix() for item in written["files"]}
    assert {"ca.crt", "ca.key"} <= paths
    issued = subprocess.run([*command, "pki", "issue", "internode", "--dir", str(tmp_path),
                             "--cn", "internode", "--usage", "both", "--json"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert issued.returncode == 0, issued.stderr
    files = json.loads(issued.stdout)["files"]
    assert {Path(item["path"]).name for item in files} >= {"tls.crt", "tls.key"}
    assert all(item["description"] for item in files)
