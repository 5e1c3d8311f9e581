"""What the deployment files must agree with, read from the code itself: settings and topics."""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic_settings import BaseSettings

import aimms_shared.contracts
from aimms_matching.settings import MatchingSettings
from aimms_notifications.settings import NotificationsSettings
from aimms_portal.settings import PortalSettings
from aimms_registration.settings import RegistrationSettings
from aimms_shared.events import Topic, dead_letter
from aimms_surveys.settings import SurveysSettings

REPO = Path(__file__).resolve().parents[2]

SETTINGS: dict[str, type[BaseSettings]] = {
    "registration": RegistrationSettings,
    "matching": MatchingSettings,
    "surveys": SurveysSettings,
    "notifications": NotificationsSettings,
    "portal": PortalSettings,
}
SERVICES = list(SETTINGS)
# The services with a database and a broker of their own; the portal has neither.
STATEFUL = [name for name, cls in SETTINGS.items() if "mongodb_uri" in cls.model_fields]

# Settings a deployment must give although the class may have a default: without them the
# service starts but cannot verify tokens or sign links.
DEPLOYMENT_REQUIRED: dict[str, set[str]] = {
    "registration": set(),
    "matching": {"MATCHING_AUTH_JWKS_URL", "MATCHING_LINK_SIGNING_KEY", "MATCHING_PUBLIC_URL"},
    "surveys": {"SURVEYS_AUTH_JWKS_URL", "SURVEYS_PUBLIC_URL"},
    "notifications": {"NOTIFICATIONS_AUTH_JWKS_URL", "NOTIFICATIONS_LINK_SIGNING_KEY", "NOTIFICATIONS_PUBLIC_URL"},
    "portal": set(),
}


def prefix(service: str) -> str:
    return SETTINGS[service].model_config["env_prefix"]


def setting_names(service: str) -> set[str]:
    """Every environment variable the service's settings class reads."""
    return {prefix(service) + name.upper() for name in SETTINGS[service].model_fields}


def required_settings(service: str) -> set[str]:
    """Variables the service cannot start without, or must be given in a deployment."""
    cls = SETTINGS[service]
    required = {prefix(service) + name.upper() for name, field in cls.model_fields.items() if field.is_required()}
    return required | DEPLOYMENT_REQUIRED[service]


def check_service_env(service: str, env: Mapping[str, str | None], where: str) -> None:
    """The environment a deployment gives a service sets every setting it requires, only settings it has,
    and the path the gateway serves it under."""
    missing = required_settings(service) - set(env)
    assert not missing, f"{service} needs {sorted(missing)} in {where}"
    # With extra="ignore", a misspelt variable would be silently ignored: every prefixed one is real.
    known = setting_names(service) | required_settings(service)
    unknown = {key for key in env if key.startswith(prefix(service)) and key not in known}
    assert not unknown, f"{service}: {sorted(unknown)} are not settings of {SETTINGS[service].__name__}"
    assert env["UVICORN_ROOT_PATH"] == f"/{service}", "the gateway serves it under its own name"


# --------------------------------------------------------------------------- topics


@dataclass(frozen=True)
class CreatedTopic:
    partitions: int
    replication_factor: int
    config: dict[str, str]


def declared_topics() -> list[Topic]:
    """Every Topic(...) declared in the contracts, one module per producing service."""
    topics: dict[str, Topic] = {}
    for info in pkgutil.iter_modules(aimms_shared.contracts.__path__):
        module = importlib.import_module(f"aimms_shared.contracts.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Topic):
                topics[value.name] = value
    assert topics, "no Topic found in aimms_shared.contracts"
    return list(topics.values())


def expected_topic_names(namespace: str = "") -> set[str]:
    names = {name for t in declared_topics() for name in (t.name, dead_letter(t.name))}
    return {f"{namespace}.{n}" if namespace else n for n in names}


def run_topic_script(script: Path, env: dict[str, str], tmp_path: Path) -> dict[str, CreatedTopic]:
    """Run a topic-creation script with a stand-in for kafka-topics.sh that records each call; check it created
    the declared topics in the namespace `env` gives it (check_created_topics), and return them."""
    calls = tmp_path / "calls.jsonl"
    fake = tmp_path / "kafka-topics.sh"
    fake.write_text(
        f"#!{sys.executable}\nimport json, sys\n"
        f"with open({str(calls)!r}, 'a') as f:\n    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    result = subprocess.run(
        ["/bin/sh", str(script)],
        env={"PATH": os.environ["PATH"], **env, "KAFKA_TOPICS_COMMAND": str(fake)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stdout}\n{result.stderr}"
    created: dict[str, CreatedTopic] = {}
    for line in calls.read_text().splitlines() if calls.exists() else []:
        args = json.loads(line)
        assert "--create" in args and "--if-not-exists" in args, f"not an idempotent create: {shlex.join(args)}"
        assert args[args.index("--bootstrap-server") + 1] == env["KAFKA_BOOTSTRAP_SERVERS"]
        options: dict[str, list[str]] = {}
        for flag, value in zip(args, args[1:], strict=False):
            if flag.startswith("--") and not value.startswith("--"):
                options.setdefault(flag, []).append(value)
        name = options["--topic"][0]
        assert name not in created, f"topic {name} created twice"
        created[name] = CreatedTopic(
            partitions=int(options["--partitions"][0]),
            replication_factor=int(options["--replication-factor"][0]),
            config=dict(item.split("=", 1) for item in options.get("--config", [])),
        )
    check_created_topics(created, env.get("TOPIC_NAMESPACE", ""))
    return created


def check_created_topics(created: dict[str, CreatedTopic], namespace: str = "") -> None:
    """The script created exactly the declared topics and their dead-letter topics, laid out right."""
    assert set(created) == expected_topic_names(namespace), (
        "topics created differ from the contracts (shared/aimms_shared/contracts): "
        f"missing {sorted(expected_topic_names(namespace) - set(created))}, "
        f"unexpected {sorted(set(created) - expected_topic_names(namespace))}"
    )
    ns = f"{namespace}." if namespace else ""
    for topic in declared_topics():
        main, dlq = created[ns + topic.name], created[ns + dead_letter(topic.name)]
        assert main.partitions == topic.partitions, (
            f"{topic.name}: {main.partitions} partitions, not {topic.partitions}"
        )
        policy = main.config.get("cleanup.policy", "delete")
        assert (policy == "compact") == topic.compacted, f"{topic.name}: cleanup.policy={policy}"
        # Dead letters expire: an erased person's contact details must not live on there.
        assert dlq.config.get("cleanup.policy", "delete") == "delete", f"{dlq}: dead letters must expire"
        assert int(dlq.config["retention.ms"]) > 0


# --------------------------------------------------------------------------- Caddyfile


def check_gateway_routes(caddyfile: str) -> None:
    """The gateway sends each service's path to that service by its name, and nothing else: every
    `handle_path /<prefix>/* { reverse_proxy <upstream> }`, as path prefix -> upstream."""
    pattern = re.compile(r"handle_path\s+(/[\w-]+)/\*\s*\{\s*reverse_proxy\s+(\S+)\s*\}")
    routes = dict(pattern.findall(caddyfile))
    assert routes == {f"/{name}": f"{name}:8000" for name in SERVICES}, f"the gateway's routes: {routes}"
