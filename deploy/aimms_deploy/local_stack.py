"""Install, start, stop and inspect the local infrastructure: Kafka, FerretDB and an SMTP sink.

Everything the stack writes (jars, binary, data, logs, pid files) lives under one var/
directory. The CLI (``aimms local ...``) is a thin layer over :class:`LocalStack`, which
pytest fixtures can use directly, e.g. to stop and restart Kafka in the middle of a test.
Each component (Kafka, FerretDB, the SMTP sink, the services) is a module of ``stack/``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from . import paths, secrets
from .stack.base import COMPONENTS, HOST, SERVICES, ComponentStatus, LocalStackError, Ports, Progress, State, StepResult
from .stack.component import Component
from .stack.ferretdb import FerretDB
from .stack.kafka import Kafka
from .stack.processes import describe_listener, listener_pid, pid_alive, port_open, signal_group, tail_text, wait_dead
from .stack.services import Service
from .stack.smtp import SmtpSink

__all__ = ["COMPONENTS", "SERVICES", "Kafka", "LocalStack", "LocalStackError", "Ports", "StepResult"]


class LocalStack:
    """The local Kafka + FerretDB + SMTP sink, with all state under ``var_dir``."""

    def __init__(
        self,
        var_dir: Path | None = None,
        *,
        ports: Ports | None = None,
        environ: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.environ: Mapping[str, str] = dict(os.environ if environ is None else environ)
        self.var_dir = (var_dir or paths.var_dir()).resolve()
        self.ports = ports or Ports.from_env(self.environ)
        self.progress: Progress = progress or (lambda _msg: None)
        if not paths.KAFKA_SRC_DIR.is_dir():
            raise LocalStackError(
                f"{paths.KAFKA_SRC_DIR} not found: install aimms-deploy editable (pip install -e deploy)"
            )
        infrastructure: list[Component] = [Kafka(self), FerretDB(self), SmtpSink(self)]
        services = [Service(self, name, port) for name, port in SERVICES.items()]
        self._components: dict[str, Component] = {c.name: c for c in (*infrastructure, *services)}

    # -- helpers

    def _select(self, components: Iterable[str] | None) -> list[Component]:
        names = list(COMPONENTS if components is None else components)
        unknown = [n for n in names if n not in self._components]
        if unknown:
            raise LocalStackError(f"unknown component(s) {unknown}; choose from {list(self._components)}")
        return [c for n, c in self._components.items() if n in names]

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise start/stop/reset across processes (e.g. parallel pytest workers)."""
        self.var_dir.mkdir(parents=True, exist_ok=True)
        with (self.var_dir / ".aimms-local.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    # -- public API

    def service_url(self, name: str) -> str:
        """Where one of the platform's services listens (its port may be moved by AIMMS_<NAME>_PORT)."""
        return self._components[name].local_endpoint()

    def endpoints(self) -> dict[str, str]:
        """Connection settings for services and tests (the `aimms local env` variables)."""
        kafka, ferretdb = self._components["kafka"], self._components["ferretdb"]
        return {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.endpoint(),
            "MONGODB_URI": ferretdb.endpoint(),
            "SMTP_HOST": HOST,
            "SMTP_PORT": str(self.ports.smtp),
            "SMTP_SINK_DIR": str(self.var_dir / "mail"),
        }

    def registration_secrets(self) -> dict[str, str]:
        """Registration's keys and first administrator for this machine, generated once (var/secrets)."""
        return self._secrets("registration") | {"REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID": "local-admin"}

    def matching_secrets(self) -> dict[str, str]:
        """Matching's key for signing answer links, generated once (var/secrets)."""
        return self._secrets("matching")

    def surveys_secrets(self) -> dict[str, str]:
        """Surveys' key for the answers to sensitive items, generated once (var/secrets)."""
        return self._secrets("surveys")

    def notifications_secrets(self) -> dict[str, str]:
        """Notifications' key for signing opt-out links, generated once (var/secrets)."""
        return self._secrets("notifications")

    def _secrets(self, service: str) -> dict[str, str]:
        """A service's secrets as deploy/secrets.spec lists them, made once for this machine."""
        path = self.var_dir / "secrets" / f"{service}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(secrets.fresh(f"{service.upper()}_", key_id="local-1"), indent=1))
            tmp.chmod(0o600)
            os.replace(tmp, path)
        return json.loads(path.read_text())

    def log_path(self, component: str) -> Path:
        """Log file of ``component``."""
        return self._select([component])[0].log_file

    def install(self, components: Iterable[str] | None = None) -> list[StepResult]:
        """Fetch the Kafka jars and build FerretDB unless already done (idempotent)."""
        return [self._install_one(c) for c in self._select(components)]

    def _install_one(self, c: Component) -> StepResult:
        progress = self.progress
        t0 = time.monotonic()
        if isinstance(c, Kafka):
            what = f"Kafka {c.version()} jars"
            if not c.needs_install():
                progress(f"{what}: already installed in {c.libs}")
                return StepResult(c.name, "cached", time.monotonic() - t0)
            progress(f"Fetching {what} from Maven Central…")
        elif isinstance(c, FerretDB):
            what = "FerretDB"
            if not c.needs_install():
                progress(f"FerretDB binary: up to date ({c.binary})")
                return StepResult(c.name, "cached", time.monotonic() - t0)
            progress("Building FerretDB (first build compiles SQLite, takes a few minutes)…")
        else:
            return StepResult(c.name, "nothing to do", 0.0)
        c.install(progress)
        seconds = time.monotonic() - t0
        progress(f"{what}: installed in {seconds:.1f} s")
        return StepResult(c.name, "installed", seconds)

    def start(self, components: Iterable[str] | None = None) -> list[StepResult]:
        """Install if needed, start what is not running, and wait until everything answers."""
        with self._lock():
            return self._start(self._select(components))

    def _start(self, selected: list[Component]) -> list[StepResult]:
        progress = self.progress
        results: list[StepResult] = []
        errors: list[str] = []
        waiting: list[tuple[Component, int, float]] = []  # (component, pid, launched at)
        to_launch: list[Component] = []

        for c in selected:
            t0 = time.monotonic()
            setting = c.external_setting()
            if setting:
                results.append(StepResult(c.name, "external", 0.0, f"{setting}={c.endpoint()} (not started)"))
                continue
            entry = c.owned()
            if entry is not None and entry[1] != c.port:
                errors.append(
                    f"{c.title} from {self.var_dir} already runs on port {entry[1]} (pid {entry[0]}), "
                    f"not {c.port}; run `aimms local stop {c.name}` first"
                )
                continue
            pid = entry[0] if entry else None
            if pid is not None:
                if c.probe():
                    results.append(StepResult(c.name, "already running", time.monotonic() - t0, f"pid {pid}"))
                else:
                    progress(f"{c.title}: pid {pid} is running but not answering yet; waiting…")
                    waiting.append((c, pid, t0))
                continue
            busy = [p for p in (c.port, *c.extra_ports()) if port_open(p)]
            if busy and port_open(c.port) and c.probe():
                # Someone else's server answers correctly (e.g. a Kafka from another checkout): use it.
                detail = f"{describe_listener(c.port)} is served by a process not started by aimms; using it"
                if isinstance(c, SmtpSink):
                    detail += f" (mail will NOT land in {c.maildir})"
                progress(f"{c.title}: {detail}")
                results.append(StepResult(c.name, "external", time.monotonic() - t0, detail))
                continue
            if busy:
                errors.append(
                    f"{c.title}: {', '.join(describe_listener(p) for p in busy)} already in use by "
                    f"something that does not answer as {c.title}; stop it or set AIMMS_*_PORT"
                )
                continue
            to_launch.append(c)

        for c in to_launch:
            try:
                self._install_one(c)
                c.prepare(progress)
                t0 = time.monotonic()
                pid = c.launch()
            except LocalStackError as exc:
                errors.append(str(exc))
                continue
            progress(f"Starting {c.title} on {c.local_endpoint()} (pid {pid})…")
            waiting.append((c, pid, t0))

        # Poll all launched components in turn, so each one's time-to-ready is measured fairly.
        while waiting:
            for item in list(waiting):
                c, pid, t0 = item
                if c.probe():
                    seconds = time.monotonic() - t0
                    progress(f"{c.title} ready after {seconds:.1f} s")
                    results.append(StepResult(c.name, "started", seconds, f"pid {pid}"))
                elif not pid_alive(pid):
                    c.pid_file.unlink(missing_ok=True)
                    errors.append(
                        f"{c.title} exited during startup; last lines of {c.log_file}:\n{tail_text(c.log_file)}"
                    )
                elif time.monotonic() - t0 > c.ready_timeout:
                    # Don't leave a half-started daemon behind: the next start should begin clean.
                    self._stop_one(c, pid)
                    errors.append(
                        f"{c.title} did not answer within {c.ready_timeout:.0f} s; last lines of "
                        f"{c.log_file}:\n{tail_text(c.log_file)}"
                    )
                else:
                    continue
                waiting.remove(item)
            if waiting:
                time.sleep(0.25)

        if errors:
            raise LocalStackError("\n\n".join(errors))
        return results

    def stop(self, components: Iterable[str] | None = None) -> list[StepResult]:
        """Stop the daemons we started: SIGTERM, wait, then SIGKILL; remove their pid files."""
        with self._lock():
            return self._stop(self._select(components))

    def _stop(self, selected: list[Component]) -> list[StepResult]:
        results: list[StepResult] = []
        running: list[tuple[Component, int, float]] = []
        for c in selected:
            entry = c.owned()  # whatever port it was started on
            pid = entry[0] if entry else None
            if pid is None:
                note = ""
                if not c.external_setting() and port_open(c.port):
                    note = f"{describe_listener(c.port)} is served by a process not started by aimms; left alone"
                results.append(StepResult(c.name, "not running", 0.0, note))
                continue
            self.progress(f"Stopping {c.title} (pid {pid})…")
            signal_group(pid, signal.SIGTERM)  # all first, so they shut down in parallel
            running.append((c, pid, time.monotonic()))
        for c, pid, t0 in running:
            action = self._stop_one(c, pid, already_signalled_at=t0)
            results.append(StepResult(c.name, action, time.monotonic() - t0, f"pid {pid}"))
        return results

    def _stop_one(self, c: Component, pid: int, already_signalled_at: float | None = None) -> str:
        if already_signalled_at is None:
            signal_group(pid, signal.SIGTERM)
            already_signalled_at = time.monotonic()
        remaining = c.stop_timeout - (time.monotonic() - already_signalled_at)
        action = "stopped"
        if not wait_dead(pid, max(remaining, 0.0)):
            self.progress(f"{c.title} ignored SIGTERM for {c.stop_timeout:.0f} s; sending SIGKILL")
            signal_group(pid, signal.SIGKILL)
            wait_dead(pid, 5.0)
            action = "killed"
        c.pid_file.unlink(missing_ok=True)
        return action

    def status(self, components: Iterable[str] | None = None) -> list[ComponentStatus]:
        """Report each component: state, pid, endpoint and whether it answers."""
        return [self._status_one(c) for c in self._select(components)]

    def _status_one(self, c: Component) -> ComponentStatus:
        setting = c.external_setting()
        if setting:
            return ComponentStatus(c.name, "external", None, c.endpoint(), c.probe(), f"from {setting}")
        entry = c.owned()
        if entry is not None and entry[1] != c.port:
            return ComponentStatus(
                c.name,
                "unhealthy",
                entry[0],
                c.endpoint(),
                False,
                f"ours, but running on port {entry[1]}, not {c.port}",
            )
        pid = entry[0] if entry else None
        if pid is not None:
            ready = c.probe()
            state: State = "running" if ready else "unhealthy"
            note = "" if ready else "process alive but not answering (still starting?)"
            return ComponentStatus(c.name, state, pid, c.endpoint(), ready, note)
        if port_open(c.port):
            foreign = listener_pid(c.port)
            if c.probe():
                return ComponentStatus(c.name, "external", foreign, c.endpoint(), True, "not started by aimms")
            return ComponentStatus(
                c.name,
                "stopped",
                foreign,
                c.endpoint(),
                False,
                f"port {c.port} taken by a process that is not {c.title}",
            )
        return ComponentStatus(c.name, "stopped", None, c.endpoint(), False)

    def reset(self) -> list[Path]:
        """Stop everything and delete data, mail, logs and pid files (keeps jars and binary)."""
        with self._lock():
            self._stop(self._select(None))
            kafka = self._components["kafka"]
            assert isinstance(kafka, Kafka)
            doomed = [
                kafka.data,
                kafka.cluster_id_file,
                kafka.props,
                self.var_dir / "ferretdb",
                self.var_dir / "mail",
                self.var_dir / "log",
                self.var_dir / "run",
            ]
            removed = [p for p in doomed if p.exists()]
            for p in removed:
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink()
            return removed

    def tail_log(self, component: str, lines: int = 50, follow: bool = False) -> Iterator[str]:
        """Yield the last ``lines`` lines of a component's log, then new lines if ``follow``."""
        path = self.log_path(component)
        if not path.exists() and not follow:
            raise LocalStackError(f"no log yet for {component} ({path})")
        position = 0
        if path.exists():
            with path.open("rb") as f:
                last = deque(f, maxlen=lines) if lines > 0 else deque()
                position = f.tell()
            for raw in last:
                yield raw.decode(errors="replace").rstrip("\n")
        while follow:
            time.sleep(0.5)
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            if size < position:  # truncated or recreated (reset): start over
                position = 0
            if size == position:
                continue
            with path.open("rb") as f:
                f.seek(position)
                chunk = f.read()
            # Emit complete lines only; keep a partial last line for the next round.
            complete, _, _partial = chunk.rpartition(b"\n")
            if not complete and b"\n" not in chunk:
                continue
            position += len(complete) + 1
            for raw in complete.split(b"\n"):
                yield raw.decode(errors="replace")
