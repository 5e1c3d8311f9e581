"""What every part of the local stack shares: its errors, ports, statuses, and the daemons' base class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

COMPONENTS: tuple[str, ...] = ("kafka", "ferretdb", "smtp")
# The platform's own services, run by `aimms up` on top of the infrastructure.
# The portal comes last: it serves pages over the others' APIs and holds no data of its own.
SERVICES: dict[str, int] = {
    "registration": 8001,
    "matching": 8002,
    "surveys": 8003,
    "notifications": 8004,
    "portal": 8005,
}
HOST = "127.0.0.1"
DEMO_SENDER = "AIMMS Mentoring <mentoring@aimms.local>"

Progress = Callable[[str], None]
State = Literal["running", "external", "stopped", "unhealthy"]
T = TypeVar("T")


class LocalStackError(RuntimeError):
    """A component could not be installed, started or stopped; the message says why."""


@dataclass(frozen=True)
class Ports:
    """TCP ports of the local stack (overridable via AIMMS_*_PORT, e.g. to dodge a busy port)."""

    kafka: int = 9092
    kafka_controller: int = 9093
    ferretdb: int = 27017
    smtp: int = 1025

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Ports:
        """Read AIMMS_KAFKA_PORT, AIMMS_KAFKA_CONTROLLER_PORT, AIMMS_FERRETDB_PORT, AIMMS_SMTP_PORT."""
        defaults = cls()

        def port(var: str, default: int) -> int:
            return int(environ.get(var) or default)

        return cls(
            kafka=port("AIMMS_KAFKA_PORT", defaults.kafka),
            kafka_controller=port("AIMMS_KAFKA_CONTROLLER_PORT", defaults.kafka_controller),
            ferretdb=port("AIMMS_FERRETDB_PORT", defaults.ferretdb),
            smtp=port("AIMMS_SMTP_PORT", defaults.smtp),
        )


@dataclass(frozen=True)
class ComponentStatus:
    """What ``status`` found for one component."""

    name: str
    state: State
    pid: int | None
    endpoint: str
    ready: bool
    note: str = ""

    @property
    def up(self) -> bool:
        """True when the component answers, whether we started it or not."""
        return self.ready and self.state in ("running", "external")


@dataclass(frozen=True)
class StepResult:
    """Outcome of one install/start/stop step for one component, with its duration."""

    name: str
    action: str
    seconds: float
    detail: str = ""
