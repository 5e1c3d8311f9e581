"""deploy/k8s, checked offline: each overlay is built by the real kustomize, every object of the
result validates against the Kubernetes schemas (kubernetes-validate, strict: unknown fields are
errors), and the objects agree with the code: settings, topics, probes, routes.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .helpers import (
    REPO,
    SERVICES,
    STATEFUL,
    check_gateway_routes,
    check_service_env,
    prefix,
    run_topic_script,
)

K8S = REPO / "deploy" / "k8s"
TARGETS = ["base", "overlays/dev", "overlays/production"]
OVERLAYS = ["overlays/dev", "overlays/production"]
# The oldest Kubernetes the manifests support, and the newest the schemas know.
KUBERNETES_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


def kustomize() -> str:
    path = os.environ.get("KUSTOMIZE") or str(REPO / "var" / "tools" / "bin" / "kustomize")
    if not Path(path).is_file():
        pytest.fail(f"kustomize not found at {path}: run `make tools` (or set KUSTOMIZE)")
    return path


_BUILDS: dict[str, list[dict[str, Any]]] = {}


def build(target: str) -> list[dict[str, Any]]:
    if target not in _BUILDS:
        result = subprocess.run([kustomize(), "build", str(K8S / target)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"kustomize build {target} failed:\n{result.stderr}"
        _BUILDS[target] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return _BUILDS[target]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def generated(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """A generated ConfigMap or Secret, whose name carries a content hash after `name-`."""
    found = [o for o in find(objects, kind) if re.fullmatch(rf"{name}(-[a-z0-9]{{10}})?", o["metadata"]["name"])]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def by_name(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in find(objects, kind)}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    [c] = deployment["spec"]["template"]["spec"]["containers"]
    return c


# --------------------------------------------------------------------------- schemas


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(target: str, version: str) -> None:
    objects = build(target)
    assert objects
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_every_source_manifest_validates() -> None:
    """The base's own files too, not only what kustomize makes of them."""
    files = [p for p in (K8S / "base").glob("*.yaml") if p.name != "kustomization.yaml"]
    assert files
    for path in files:
        for obj in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(obj, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize(
    "broken",
    [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {"replicas": "two"}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"prots": []}},
    ],
)
def test_the_schema_check_rejects_broken_objects(broken: dict[str, Any]) -> None:
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


# --------------------------------------------------------------------------- workloads


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_has_deployment_service_budget_and_autoscaler(target: str) -> None:
    objects = build(target)
    for name in SERVICES:
        deployment = one(objects, "Deployment", name)
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        assert "replicas" not in deployment["spec"], "the autoscaler owns the replica count"

        service = one(objects, "Service", name)
        assert service["spec"]["selector"].items() <= labels.items()
        [port] = service["spec"]["ports"]
        assert port["port"] == 8000 and port["targetPort"] == "http"
        assert any(p["name"] == "http" and p["containerPort"] == 8000 for p in container(deployment)["ports"])

        budget = one(objects, "PodDisruptionBudget", name)
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert budget["spec"].get("maxUnavailable") == 1, "evictions possible at any replica count, one at a time"

        hpa = one(objects, "HorizontalPodAutoscaler", name)
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        minimum = 1 if target == "overlays/dev" else 2
        assert hpa["spec"]["minReplicas"] >= minimum and hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]


@pytest.mark.parametrize("target", TARGETS)
def test_pods_are_probed_limited_and_unprivileged(target: str) -> None:
    objects = build(target)
    pods = [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in find(objects, "Deployment")]
    pods += [(j["metadata"]["name"], j["spec"]["template"]["spec"]) for j in find(objects, "Job")]
    assert len(pods) == len(SERVICES) + 2  # and the gateway, and the topic job
    for name, pod in pods:
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["enableServiceLinks"] is False, f"{name}: service links would inject prefixed variables"
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] > 0, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        for c in pod["containers"]:
            resources = c["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            hardening = c["securityContext"]
            assert hardening["allowPrivilegeEscalation"] is False and hardening["readOnlyRootFilesystem"] is True
            assert hardening["capabilities"]["drop"] == ["ALL"]
            assert set(hardening["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}, name
    for name in SERVICES:
        c = container(one(objects, "Deployment", name))
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}


# --------------------------------------------------------------------------- configuration


def resolved_env(objects: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, str | None]:
    """A container's variables; a secret's is None when the Secret is not part of the build."""
    configmaps, secrets = by_name(objects, "ConfigMap"), by_name(objects, "Secret")
    env: dict[str, str | None] = {}
    for var in spec.get("env", []):
        source = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m[1]] or "", var["value"])
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            assert ref["name"] in configmaps, f"{var['name']}: no ConfigMap {ref['name']}"
            assert ref["key"] in configmaps[ref["name"]]["data"], f"{var['name']}: no key {ref['key']}"
            env[var["name"]] = configmaps[ref["name"]]["data"][ref["key"]]
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = secrets.get(ref["name"])
            if secret is not None and not ref.get("optional"):
                assert ref["key"] in secret["data"], f"{var['name']}: Secret {ref['name']} has no key {ref['key']}"
            env[var["name"]] = None
        else:
            raise AssertionError(f"unexpected variable source {var}")
    return env


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", SERVICES)
def test_every_setting_a_service_requires_is_set(target: str, name: str) -> None:
    objects = build(target)
    env = resolved_env(objects, container(one(objects, "Deployment", name)))
    check_service_env(name, env, "its Deployment")
    if name not in STATEFUL:
        return
    assert env[f"{prefix(name)}MONGODB_URI"] is None, "the database URI holds a password: from a Secret"
    if name != "registration":
        assert env[f"{prefix(name)}AUTH_JWKS_URL"] == "http://registration:8000/.well-known/jwks.json"


def secret_references(objects: list[dict[str, Any]]) -> set[tuple[str, str, bool]]:
    refs = set()
    for deployment in find(objects, "Deployment"):
        for var in container(deployment).get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"], bool(ref.get("optional"))))
    return refs


def test_production_only_references_its_secrets() -> None:
    objects = build("overlays/production")
    assert not find(objects, "Secret"), "production Secrets are managed outside the repository"
    readme = (K8S / "README.md").read_text()
    for name, key, _ in secret_references(objects):
        assert name in readme and key in readme, f"README.md must document Secret {name} key {key}"
    # Each service reads only its own Secret.
    for deployment in find(objects, "Deployment"):
        own = deployment["metadata"]["name"]
        for var in container(deployment).get("env", []):
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            assert ref is None or ref["name"] == f"{own}-secrets", f"{own} reads {ref}"


def test_dev_secrets_are_placeholders_for_every_key() -> None:
    objects = build("overlays/dev")
    secrets = by_name(objects, "Secret")
    for name, key, optional in secret_references(objects):
        assert name in secrets, f"dev has no Secret {name}"
        if not optional:
            assert key in secrets[name]["data"]
    for path in (K8S / "overlays" / "dev" / "secrets").iterdir():
        assert "CHANGE-ME" in path.read_text(), f"{path} must hold placeholders only"


@pytest.mark.parametrize("target", TARGETS)
def test_topic_job_creates_every_declared_topic(target: str, tmp_path: Path) -> None:
    objects = build(target)
    job = one(objects, "Job", "kafka-topics")
    pod = job["spec"]["template"]["spec"]
    [c] = pod["containers"]
    [mount] = [m for m in c["volumeMounts"] if c["command"][-1].startswith(m["mountPath"] + "/")]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    scripts = by_name(objects, "ConfigMap")[volume["configMap"]["name"]]["data"]
    script = tmp_path / "create-topics.sh"
    script.write_text(scripts[c["command"][-1].rsplit("/", 1)[1]])
    env = {k: v for k, v in resolved_env(objects, c).items() if v is not None}
    created = run_topic_script(script, env, tmp_path)
    replicas = {t.replication_factor for t in created.values()}
    if target == "overlays/dev":
        assert replicas == {1}
    else:
        assert replicas == {3}, "production topics survive the loss of a broker"
        assert {t.config["min.insync.replicas"] for t in created.values()} == {"2"}


@pytest.mark.parametrize("target", TARGETS)
def test_ingress_sends_each_service_path_to_the_gateway(target: str) -> None:
    objects = build(target)
    [ingress] = find(objects, "Ingress")
    [rule] = ingress["spec"]["rules"]
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == {f"/{name}" for name in SERVICES}
    gateway = one(objects, "Service", "gateway")
    for path in paths.values():
        assert path["pathType"] == "Prefix"
        backend = path["backend"]["service"]
        assert backend["name"] == "gateway"
        assert backend["port"]["name"] in {p["name"] for p in gateway["spec"]["ports"]}
    # Links in emails (matching's PUBLIC_URL) must reach this Ingress, over TLS where it has TLS.
    public_url = generated(objects, "ConfigMap", "platform")["data"]["PUBLIC_URL"]
    scheme = "https" if ingress["spec"].get("tls") else "http"
    assert public_url == f"{scheme}://{rule['host']}", public_url
    deployment = one(objects, "Deployment", "gateway")
    caddyfile = generated(objects, "ConfigMap", "gateway")["data"]["Caddyfile"]
    check_gateway_routes(caddyfile)
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
    config = generated(objects, "ConfigMap", "gateway")
    assert volumes[mounts["/etc/caddy"]]["configMap"]["name"] == config["metadata"]["name"]
    assert container(deployment)["readinessProbe"]["httpGet"]["path"] == "/healthz"


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_set_a_namespace_and_their_own_connection_settings(target: str) -> None:
    objects = build(target)
    [namespace] = find(objects, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for obj in objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == namespace["metadata"]["name"], obj["metadata"]["name"]
    base = generated(build("base"), "ConfigMap", "platform")["data"]
    config = generated(objects, "ConfigMap", "platform")["data"]
    assert set(config) == set(base), "overlays change values, not which settings exist"
    assert config["KAFKA_BOOTSTRAP_SERVERS"] != base["KAFKA_BOOTSTRAP_SERVERS"]
    for name in SERVICES:
        image = container(one(objects, "Deployment", name))["image"]
        assert re.fullmatch(rf"(\S+/)?aimms/{name}(:[\w.-]+|@sha256:[0-9a-f]{{64}})", image), image
