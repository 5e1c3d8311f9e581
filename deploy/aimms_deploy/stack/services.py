"""The platform's own services, run with uvicorn on top of the infrastructure."""

from __future__ import annotations

import sys
import urllib.request
from typing import TYPE_CHECKING

from .base import DEMO_SENDER, HOST
from .component import Component

if TYPE_CHECKING:
    from ..local_stack import LocalStack

# The services whose public APIs the portal stands in front of.
PORTAL_APIS = ("registration", "matching", "surveys", "notifications")


class Service(Component):
    """One of the platform's services, run with uvicorn against the local (or given) infrastructure."""

    ready_timeout = 60.0

    def __init__(self, stack: LocalStack, name: str, default_port: int) -> None:
        self.name = self.title = name
        super().__init__(stack)
        self._port = int(stack.environ.get(f"AIMMS_{name.upper()}_PORT") or default_port)

    @property
    def port(self) -> int:
        return self._port

    def local_endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"

    def environment(self) -> dict[str, str]:
        if self.name == "portal":  # no store, no broker: the public APIs only
            return {f"PORTAL_{name.upper()}_URL": self.stack.service_url(name) for name in PORTAL_APIS}
        endpoints = self.stack.endpoints()
        prefix = self.name.upper()
        env = {
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": endpoints["KAFKA_BOOTSTRAP_SERVERS"],
            f"{prefix}_MONGODB_URI": endpoints["MONGODB_URI"],
            f"{prefix}_AUTH_JWKS_URL": f"{self.stack.service_url('registration')}/.well-known/jwks.json",
        }
        if self.name == "registration":
            env |= self.stack.registration_secrets() | {"REGISTRATION_PUBLIC_URL": self.stack.service_url("portal")}
        if self.name == "matching":
            env |= self.stack.matching_secrets() | {"MATCHING_PUBLIC_URL": self.stack.service_url("portal")}
        if self.name == "surveys":
            env |= self.stack.surveys_secrets() | {"SURVEYS_PUBLIC_URL": self.stack.service_url("portal")}
        if self.name == "notifications":
            env |= {
                "NOTIFICATIONS_SMTP_HOST": endpoints["SMTP_HOST"],
                "NOTIFICATIONS_SMTP_PORT": endpoints["SMTP_PORT"],
                "NOTIFICATIONS_SENDER": self.stack.environ.get("NOTIFICATIONS_SENDER", DEMO_SENDER),
                "NOTIFICATIONS_PUBLIC_URL": self.local_endpoint(),
            } | self.stack.notifications_secrets()
        # Settings already given by the caller (e.g. a real MongoDB for one service) win.
        return {key: value for key, value in env.items() if key not in self.stack.environ}

    def command(self) -> list[str]:
        app = f"aimms_{self.name}.app:create_app"
        return [sys.executable, "-m", "uvicorn", "--factory", app, "--host", HOST, "--port", str(self.port)]

    def cmd_markers(self) -> list[str]:
        return ["uvicorn", f"aimms_{self.name}.app:create_app"]

    def probe(self, timeout: float = 2.0) -> bool:
        try:
            with urllib.request.urlopen(f"{self.local_endpoint()}/readyz", timeout=timeout) as response:
                return response.status == 200
        except (OSError, ValueError):
            return False
