"""docker-compose.yml, the Dockerfiles and the files they use, checked offline (no Docker engine).

The file is validated against the Compose specification's JSON schema (as vendored by
check-jsonschema), then against what the code needs: every setting a service requires, every
topic the contracts declare, health checks and start order, and secrets only from .env.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from dotenv import dotenv_values

from aimms_registration.tokens import TokenIssuer
from aimms_shared.crypto import FieldCipher, parse_keys

from .helpers import (
    REPO,
    SERVICES,
    SETTINGS,
    STATEFUL,
    check_gateway_routes,
    check_service_env,
    prefix,
    run_topic_script,
)

COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "deploy" / "compose" / "env.example"
GENERATE_ENV = REPO / "deploy" / "compose" / "generate-env.sh"
# Compose's interpolation: $$, $VAR, ${VAR}, ${VAR-default}, ${VAR:-default}, ${VAR?err}, ${VAR:?err}.
INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>[A-Za-z_]\w*)|\{(?P<name>[A-Za-z_]\w*)(?P<op>:?[-?])?(?P<arg>[^}]*)\})"
)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|SIGNING_KEY|ENCRYPTION_KEYS$")


class MissingVariable(KeyError):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Resolve compose variable references in `value` from `env` (the .env file)."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["bare"] or match["name"]
        op, arg = match["op"] or "", match["arg"]
        present = name in env and (env[name] != "" or not op.startswith(":"))
        if present:
            return env[name]
        if op.endswith("?"):
            raise MissingVariable(f"{name}: {arg}")
        return arg if op.endswith("-") else ""

    return INTERPOLATION.sub(replace, value)


def variables_in(value: Any) -> set[str]:
    """Names of the variables referenced anywhere in a (nested) compose value."""
    if isinstance(value, dict):
        return set().union(*(variables_in(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(variables_in(v) for v in value), set())
    if isinstance(value, str):
        return {m["bare"] or m["name"] for m in INTERPOLATION.finditer(value) if not m["escaped"]}
    return set()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "write environment as a mapping, so keys can be checked"
    return {key: str(value) for key, value in env.items()}


def one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


# --------------------------------------------------------------------------- the specification


def compose_schema() -> dict[str, Any]:
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(schema_file.read_text())


def schema_errors(document: Any) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    assert schema_errors(compose) == []


MISTAKES = {
    "unknown depends_on condition": (
        lambda c: c["services"]["registration"]["depends_on"]["kafka"].update(condition="service_ready"),
        "services/registration/depends_on",
    ),
    "healthcheck interval not a duration": (
        lambda c: c["services"]["gateway"]["healthcheck"].update(interval={"seconds": 10}),
        "services/gateway/healthcheck/interval",
    ),
    "misspelt key": (lambda c: c["services"]["surveys"].update(environmnet={}), "environmnet"),
    "port as a mapping": (lambda c: c["services"]["gateway"].update(ports=[{"8080": 8080}]), "services/gateway/ports"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_schema_check_reports_known_mistakes(mistake: str) -> None:
    """Guards the check above against a vacuous schema."""
    mutate, where = MISTAKES[mistake]
    broken = yaml.safe_load(COMPOSE_FILE.read_text())
    mutate(broken)
    errors = schema_errors(broken)
    assert any(where in error for error in errors), errors


# --------------------------------------------------------------------------- images


def test_every_build_context_and_dockerfile_exists(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(SERVICES) <= set(built), "each platform service is built from the one Dockerfile"
    for name, build in built.items():
        context = (REPO / build["context"]).resolve()
        assert context == REPO, f"{name}: the context must be the repository root (the images need shared/)"
        assert (context / build["dockerfile"]).is_file(), f"{name}: {build['dockerfile']} does not exist"
    for name in SERVICES:
        assert built[name]["dockerfile"] == "services/Dockerfile"
        assert built[name]["args"] == {"SERVICE": name}, f"{name}: builds its own service"


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", SERVICES)
def test_the_dockerfile_builds_each_service_small_non_root_and_healthchecked(name: str) -> None:
    """The one Dockerfile, with SERVICE=name, as Docker would read it."""
    instructions = dockerfile_instructions(REPO / "services" / "Dockerfile")
    build_args = dict(value.partition("=")[::2] for op, value in instructions if op == "ARG") | {"SERVICE": name}

    def expanded(value: str) -> str:
        return re.sub(r"\$\{(\w+)\}", lambda m: build_args[m[1]], value)

    bases = [expanded(value.split()[0]) for op, value in instructions if op == "FROM"]
    assert bases and all(base == "python:3.11-slim" for base in bases), bases

    copied = [expanded(value).split()[:-1] for op, value in instructions if op == "COPY" and "--from" not in value]
    sources = {src.rstrip("/") for srcs in copied for src in srcs}
    assert sources == {"shared", f"services/{name}"}, f"copies only shared/ and its own package: {sources}"
    installs = " ".join(expanded(value) for op, value in instructions if op == "RUN" and "pip install" in value)
    assert f"aimms-{name}" in installs and "--no-index" in installs, "installs its own package from built wheels"
    for other in set(SERVICES) - {name}:
        assert f"aimms-{other}" not in installs and f"services/{other}" not in " ".join(v for _, v in instructions)

    users = [value for op, value in instructions if op == "USER"]
    assert users and users[-1].split(":")[0] not in {"0", "root"}, "runs as a non-root user"
    assert users[-1].split(":")[0].isdigit(), "numeric uid, so Kubernetes can verify runAsNonRoot"

    [healthcheck] = [value for op, value in instructions if op == "HEALTHCHECK"]
    assert "urllib.request" in healthcheck and "/healthz" in healthcheck
    environment = " ".join(expanded(value) for op, value in instructions if op == "ENV")
    assert f"AIMMS_SERVICE={name}" in environment, "the image knows which service it is"
    [cmd] = [json.loads(value) for op, value in instructions if op == "CMD"]
    assert cmd[:2] == ["sh", "-c"] and cmd[2].startswith("exec uvicorn --factory"), "uvicorn replaces the shell"
    served = cmd[2].replace("${AIMMS_SERVICE}", name).split()
    assert served[3] == f"aimms_{name}.app:create_app"
    assert served[served.index("--host") + 1] == "0.0.0.0" and served[served.index("--port") + 1] == "8000"


def dockerignore_regex(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` stay within a segment, `**` spans segments."""
    parts = pattern.strip("/").split("/")
    regex = ""
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if part == "**":
            regex += ".*" if last else "(?:[^/]+/)*"
            continue
        regex += "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in part)
        regex += "" if last else "/"
    return re.compile(regex)


def docker_context_files() -> set[str]:
    """Files Docker would send as the build context: the last matching pattern wins, and a
    pattern that matches a directory matches everything in it."""
    rules = [
        (line.startswith("!"), dockerignore_regex(line.lstrip("!")))
        for line in (raw.strip() for raw in (REPO / ".dockerignore").read_text().splitlines())
        if line and not line.startswith("#")
    ]
    reincluded_tops = {r.pattern.split("/")[0].split("[")[0] for negated, r in rules if negated}

    def excluded(path: str) -> bool:
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        result = False
        for negated, regex in rules:
            if any(regex.fullmatch(p) for p in prefixes):
                result = not negated
        return result

    files: set[str] = set()
    for root, dirs, names in os.walk(REPO):
        base = Path(root).relative_to(REPO).as_posix()
        base = "" if base == "." else base + "/"
        # Skip directories nothing below could be re-included from (.git, .venv, var, ...).
        dirs[:] = [d for d in dirs if not (excluded(base + d) and (base + d).split("/")[0] not in reincluded_tops)]
        files |= {base + n for n in names if not excluded(base + n)}
    return files


def test_dockerignore_sends_only_what_the_images_copy() -> None:
    files = docker_context_files()
    assert {f.split("/", 1)[0] for f in files} <= {"shared", "services"}, sorted(files)[:20]
    assert any(f.startswith("shared/aimms_shared/") for f in files)
    assert not [f for f in files if "__pycache__" in f or ".egg-info" in f or f.endswith(".env")]
    ignore = (REPO / ".dockerignore").read_text()
    assert "*" in ignore.split(), "everything is excluded unless named"


# --------------------------------------------------------------------------- settings and secrets


@pytest.mark.parametrize("name", SERVICES)
def test_every_setting_a_service_requires_is_set(name: str, services: dict[str, dict[str, Any]]) -> None:
    check_service_env(name, environment(services[name]), "docker-compose.yml")


@pytest.mark.parametrize("name", STATEFUL)
def test_each_service_uses_its_own_database_user(name: str, services: dict[str, dict[str, Any]]) -> None:
    uri = environment(services[name])[f"{prefix(name)}MONGODB_URI"]
    pattern = r"mongodb://(?P<user>\w+):(?P<password>\$\{[^}]+\})@mongodb:27017/(?P<db>\w+)\?authSource=(?P<auth>\w+)"
    match = re.fullmatch(pattern, uri)
    assert match, uri
    assert match["user"] == match["db"] == match["auth"] == name
    password_variable = f"{name.upper()}_MONGODB_PASSWORD"
    assert match["password"].startswith("${" + password_variable + ":?")
    # The init script creates that user, with that password, for that database only.
    mongodb = services["mongodb"]
    assert password_variable in environment(mongodb)
    init = [v for v in mongodb["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    [script] = [REPO / v.split(":")[0] for v in init]
    text = script.read_text()
    [listed] = re.findall(r"for \(const service of \[([^\]]*)\]\)", text)
    assert json.loads(f"[{listed}]") == STATEFUL
    assert "_MONGODB_PASSWORD" in text and 'role: "readWrite", db: service' in text


def test_no_secret_has_a_value_in_the_compose_file(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", value), f"{name}.{key} must come from .env, required"
            credentials = re.search(r"://[^/@:]+:([^@]*)@", value)
            if credentials:
                assert re.fullmatch(r"\$\{\w+:\?[^}]*\}", credentials[1]), f"{name}.{key}: password in a URI"


def test_env_example_documents_every_variable_and_holds_no_secret(compose: dict[str, Any]) -> None:
    used = variables_in(compose)
    documented = dotenv_values(ENV_EXAMPLE)
    assert used == set(documented), (
        f"undocumented: {sorted(used - set(documented))}, unused: {sorted(set(documented) - used)}"
    )
    for key, value in documented.items():
        if SECRET_NAME.search(key):
            assert not value, f"env.example must not carry a value for {key}"


def test_without_env_compose_refuses_to_start(services: dict[str, dict[str, Any]]) -> None:
    """Every secret is required: an empty .env stops compose before anything starts."""
    for name in STATEFUL:
        env = environment(services[name])
        secrets = {k: v for k, v in env.items() if SECRET_NAME.search(k) or "MONGODB_URI" in k}
        assert secrets
        for value in secrets.values():
            with pytest.raises(MissingVariable):
                interpolate(value, {})


@pytest.fixture(scope="module")
def generated_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    path = tmp_path_factory.mktemp("compose") / ".env"
    subprocess.run(["/bin/sh", str(GENERATE_ENV), str(path)], check=True, capture_output=True, timeout=60)
    assert path.stat().st_mode & 0o077 == 0, ".env holds secrets: readable by its owner only"
    again = subprocess.run(["/bin/sh", str(GENERATE_ENV), str(path)], capture_output=True, timeout=60)
    assert again.returncode != 0, "must not overwrite an existing .env"
    return {k: v or "" for k, v in dotenv_values(path).items()}


@pytest.mark.parametrize("name", SERVICES)
def test_generated_env_starts_every_service(
    name: str, services: dict[str, dict[str, Any]], generated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings each container would get from a generated .env load, and the keys parse."""
    resolved = {key: interpolate(value, generated_env) for key, value in environment(services[name]).items()}
    for key in list(os.environ):
        if key.startswith(prefix(name)):
            monkeypatch.delenv(key)
    for key, value in resolved.items():
        monkeypatch.setenv(key, value)
    settings = SETTINGS[name]()
    if name == "registration":
        FieldCipher(parse_keys(settings.encryption_keys.get_secret_value()), settings.encryption_key_id)
        TokenIssuer(settings.token_signing_key.get_secret_value(), issuer="test", ttl_seconds=900)
    if name in STATEFUL:
        assert resolved[f"{prefix(name)}MONGODB_URI"].count(generated_env[f"{name.upper()}_MONGODB_PASSWORD"]) == 1


def test_generated_env_fills_every_required_variable(compose: dict[str, Any], generated_env: dict[str, str]) -> None:
    for service in compose["services"].values():
        for value in environment(service).values():
            interpolate(value, generated_env)  # raises for a required variable left empty
    lengths = {k: len(v) for k, v in generated_env.items() if SECRET_NAME.search(k)}
    assert lengths and min(lengths.values()) >= 24, lengths


# --------------------------------------------------------------------------- health and start order


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if one_shot(service):
            continue
        check = service.get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
    for name in SERVICES:
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"]), "healthy means what it needs answers"


def test_services_start_only_when_their_dependencies_are_healthy(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on needs conditions"
        for dependency, rule in depends_on.items():
            condition = rule.get("condition")
            if one_shot(services[dependency]):
                assert condition == "service_completed_successfully", f"{name} -> {dependency}"
            else:
                assert condition == "service_healthy", f"{name} -> {dependency}: {condition}"
    for name in STATEFUL:
        assert {"kafka", "mongodb", "kafka-topics"} <= set(services[name]["depends_on"]), name
    assert "mailpit" in services["notifications"]["depends_on"]
    assert set(services["portal"]["depends_on"]) == set(STATEFUL), "the portal needs only the APIs it calls"
    assert set(SERVICES) <= set(services["gateway"]["depends_on"])


def test_only_the_gateway_and_mail_ui_are_published(services: dict[str, dict[str, Any]]) -> None:
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"gateway", "mailpit"}
    assert all(str(p).startswith("127.0.0.1:") for p in services["mailpit"]["ports"]), "mail stays on this host"


# --------------------------------------------------------------------------- Kafka, gateway, demo


def mounted_file(service: dict[str, Any], target_dir: str) -> Path:
    [source] = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1].startswith(target_dir)]
    return REPO / source


def test_kafka_runs_kraft_and_creates_no_topic_by_accident(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    env = environment(kafka)
    assert kafka["image"] == "apache/kafka:4.0.1"
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    for name in STATEFUL:
        assert environment(services[name])[f"{prefix(name)}KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


@pytest.mark.parametrize("namespace", ["", "pilot"])
def test_topic_job_creates_every_declared_topic(
    namespace: str, services: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    job = services["kafka-topics"]
    assert one_shot(job) and job["image"] == services["kafka"]["image"]
    script = mounted_file(job, "/opt/aimms")
    assert script == REPO / "deploy/k8s/base/create-topics.sh", "one script for compose and k8s"
    assert job["entrypoint"][-1].startswith("/opt/aimms/")
    env = environment(job) | ({"TOPIC_NAMESPACE": namespace} if namespace else {})
    run_topic_script(script, env, tmp_path)


def test_gateway_routes_each_service_by_its_name(services: dict[str, dict[str, Any]]) -> None:
    caddyfile = mounted_file(services["gateway"], "/etc/caddy").read_text()
    check_gateway_routes(caddyfile)
    assert re.search(r"respond\s+/\*/metrics\s+404", caddyfile), "metrics are not public"
    assert mounted_file(services["gateway"], "/etc/caddy") == REPO / "deploy/k8s/base/gateway/Caddyfile", "one routing"
    for name in ("matching", "surveys"):
        public = environment(services[name])[f"{prefix(name)}PUBLIC_URL"]
        assert public.endswith("}/portal"), f"{name}'s links open the portal's pages, through the gateway"
    for name in STATEFUL:
        assert environment(services["portal"])[f"PORTAL_{name.upper()}_URL"] == f"http://{name}:8000"


def test_demo_loads_with_one_command(services: dict[str, dict[str, Any]]) -> None:
    demo = services["demo"]
    assert demo["profiles"] == ["demo"] and one_shot(demo)
    assert demo["command"] == ["python", "-m", "aimms_registration.demo"]
    assert demo["image"] == services["registration"]["image"]
    assert environment(demo) == environment(services["registration"])
    assert demo["depends_on"]["registration"]["condition"] == "service_healthy"
