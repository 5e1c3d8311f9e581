"""The SMTP sink that keeps every message as a file."""

from __future__ import annotations

import smtplib
import sys
from typing import TYPE_CHECKING

from .base import HOST, Progress
from .component import Component

if TYPE_CHECKING:
    from ..local_stack import LocalStack


class SmtpSink(Component):
    name = "smtp"
    title = "SMTP sink"
    ready_timeout = 15.0

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(stack)
        self.maildir = stack.var_dir / "mail"

    @property
    def port(self) -> int:
        return self.stack.ports.smtp

    def local_endpoint(self) -> str:
        return f"smtp://{HOST}:{self.port}"

    def prepare(self, progress: Progress) -> None:
        self.maildir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "aimms_deploy.smtp_sink",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--maildir",
            str(self.maildir),
        ]

    def cmd_markers(self) -> list[str]:
        return ["aimms_deploy.smtp_sink", str(self.maildir)]

    def probe(self, timeout: float = 2.0) -> bool:
        try:
            # Connecting reads the 220 banner (SMTPConnectError otherwise); NOOP proves a dialogue.
            with smtplib.SMTP(HOST, self.port, timeout=timeout) as smtp:
                return smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False
