"""The base class of the local stack's daemons: how one is installed, launched, recognised and probed."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .base import LocalStackError, Progress
from .processes import CHILDREN, cmdline, pid_alive, read_pid_file

if TYPE_CHECKING:
    from ..local_stack import LocalStack


class Component:
    """One daemon of the local stack: how to install, launch, recognise and probe it."""

    name: str = ""
    title: str = ""
    ready_timeout: float = 30.0
    stop_timeout: float = 10.0

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.pid_file = stack.var_dir / "run" / f"{self.name}.pid"
        self.log_file = stack.var_dir / "log" / f"{self.name}.log"

    # Overridden per component.
    @property
    def port(self) -> int:
        raise NotImplementedError

    def local_endpoint(self) -> str:
        raise NotImplementedError

    def external_setting(self) -> str | None:
        """Name of the env var that points this component elsewhere, if it does."""
        return None

    def needs_install(self) -> bool:
        return False

    def install(self, progress: Progress) -> None:
        """Install what launching needs (idempotent); nothing by default."""

    def prepare(self, progress: Progress) -> None:
        """Per-launch preparation (config files, data dirs)."""

    def command(self) -> list[str]:
        raise NotImplementedError

    def cmd_markers(self) -> list[str]:
        """Substrings of /proc/<pid>/cmdline that identify our process (guards against pid reuse)."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Variables the daemon needs beyond the caller's environment."""
        return {}

    def probe(self, timeout: float = 2.0) -> bool:
        """True if the endpoint answers this component's protocol."""
        raise NotImplementedError

    # Shared logic.
    def extra_ports(self) -> list[int]:
        return []

    def endpoint(self) -> str:
        setting = self.external_setting()
        return self.stack.environ[setting] if setting else self.local_endpoint()

    def owned(self) -> tuple[int, int] | None:
        """(pid, port) of the daemon this var dir started, if it still runs; clears a stale pid file."""
        entry = read_pid_file(self.pid_file)
        if entry is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        pid = entry[0]
        cmd = cmdline(pid)
        if pid_alive(pid) and (cmd is None or all(m in cmd for m in self.cmd_markers())):
            return entry
        self.pid_file.unlink(missing_ok=True)
        return None

    def launch(self) -> int:
        """Start the daemon detached, logging to var/log, and record its pid."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = self.command()
        with self.log_file.open("ab") as log:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            log.write(f"\n===== aimms local start {self.name} at {stamp}: {' '.join(cmd)}\n".encode())
            log.flush()
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.environment()}
            try:
                # Own session: Ctrl-C in the terminal that ran `aimms local start` must not kill it.
                proc = subprocess.Popen(
                    cmd,
                    cwd=self.stack.var_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as exc:
                raise LocalStackError(f"{self.title}: {cmd[0]} not found") from exc
        CHILDREN[proc.pid] = proc
        tmp = self.pid_file.with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid}\n{self.port}\n")
        os.replace(tmp, self.pid_file)
        return proc.pid
