"""Install, start, stop and inspect the local infrastructure: Kafka, FerretDB and an SMTP sink.

Everything the stack writes (jars, binary, data, logs, pid files) lives under one var/
directory. The CLI (``aimms local ...``) is a thin layer over :class:`LocalStack`, which
pytest fixtures can use directly, e.g. to stop and restart Kafka in the middle of a test.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import smtplib
import socket
import string
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from . import paths

COMPONENTS: tuple[str, ...] = ("kafka", "ferretdb", "smtp")
# The platform's own services, run by `aimms up` on top of the infrastructure.
SERVICES: dict[str, int] = {"registration": 8001, "matching": 8002, "surveys": 8003, "notifications": 8004}
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


# --------------------------------------------------------------------------- processes

# Popen objects of the daemons this Python process started. Keeping them referenced lets
# us reap them (no zombies inside a long pytest run) and avoids Popen's ResourceWarning.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def _read_pid_file(pid_file: Path) -> tuple[int, int] | None:
    """(pid, port) from a pid file: line 1 the pid, line 2 the port the daemon was started on."""
    try:
        pid, port = pid_file.read_text().split()[:2]
        return int(pid), int(port)
    except (OSError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (zombies count as dead)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def _port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _listener_pid(port: int) -> int | None:
    """Best effort: pid of the process listening on TCP ``port`` (Linux /proc only)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    targets = {f"socket:[{inode}]" for inode in inodes}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in targets:
                    return int(proc.name)
        except OSError:
            continue
    return None


def _describe_listener(port: int) -> str:
    pid = _listener_pid(port)
    if pid is None:
        return f"port {port}"
    cmd = _cmdline(pid) or "?"
    return f"port {port} (pid {pid}: {cmd[:120]})"


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the daemon's whole process group (it leads its own session), else just the pid."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _run_streaming(cmd: list[str], *, cwd: Path, env: Mapping[str, str], progress: Progress) -> None:
    """Run ``cmd``, passing each output line to ``progress``; raise with the output tail on failure."""
    tail: deque[str] = deque(maxlen=25)
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise LocalStackError(f"{cmd[0]} not found on PATH") from exc
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            line = line.rstrip()
            tail.append(line)
            progress(f"    {line}")
    if proc.returncode != 0:
        output = "\n".join(tail)
        raise LocalStackError(f"{' '.join(cmd[:2])} failed (exit {proc.returncode}); last output:\n{output}")


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Inside an async test: a private loop in a worker thread (blocks the caller briefly).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Silence a library logger while probing (aiokafka logs every refused connection)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def _tail_text(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            last = deque(f, maxlen=lines)
    except OSError:
        return "(no log)"
    return b"".join(last).decode(errors="replace").rstrip()


def _newest_mtime(files: Iterable[Path]) -> float:
    return max(f.stat().st_mtime for f in files)


# --------------------------------------------------------------------------- components


class _Component:
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
        entry = _read_pid_file(self.pid_file)
        if entry is None:
            self.pid_file.unlink(missing_ok=True)
            return None
        pid = entry[0]
        cmd = _cmdline(pid)
        if _pid_alive(pid) and (cmd is None or all(m in cmd for m in self.cmd_markers())):
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
        _CHILDREN[proc.pid] = proc
        tmp = self.pid_file.with_suffix(".pid.tmp")
        tmp.write_text(f"{proc.pid}\n{self.port}\n")
        os.replace(tmp, self.pid_file)
        return proc.pid


class _Kafka(_Component):
    name = "kafka"
    title = "Kafka"
    ready_timeout = 90.0
    stop_timeout = 20.0  # a clean KRaft shutdown flushes logs and snapshots

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(stack)
        self.home = stack.var_dir / "kafka"
        self.libs = self.home / "libs"
        self.marker = self.libs / ".installed"
        self.data = self.home / "data"
        self.props = self.home / "server.properties"
        self.cluster_id_file = self.home / "cluster-id"
        self.pom = paths.KAFKA_SRC_DIR / "pom.xml"
        self.log4j = paths.KAFKA_SRC_DIR / "log4j2.properties"
        self.template = paths.KAFKA_SRC_DIR / "server.properties.template"

    @property
    def port(self) -> int:
        return self.stack.ports.kafka

    def extra_ports(self) -> list[int]:
        return [self.stack.ports.kafka_controller]

    def local_endpoint(self) -> str:
        return f"{HOST}:{self.port}"

    def external_setting(self) -> str | None:
        value = self.stack.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        local = {f"{HOST}:{self.port}", f"localhost:{self.port}"}
        return "KAFKA_BOOTSTRAP_SERVERS" if value and value not in local else None

    def version(self) -> str:
        """Kafka version pinned in the pom (single source of truth)."""
        ns = "{http://maven.apache.org/POM/4.0.0}"
        prop = ET.parse(self.pom).getroot().find(f"{ns}properties/{ns}kafka.version")
        return prop.text.strip() if prop is not None and prop.text else "?"

    def _mvn_args(self) -> list[str]:
        return [
            "-B",
            "-Dstyle.color=never",
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            "-Dmdep.prependGroupId=true",
            f"-DoutputDirectory={self.libs}",
            "-f",
            str(self.pom),
        ]

    def _install_key(self) -> str:
        # Changes whenever the pom (versions) or the way we copy jars changes.
        digest = hashlib.sha256(self.pom.read_bytes())
        digest.update(" ".join(self._mvn_args()[:-3]).encode())
        return digest.hexdigest()

    def needs_install(self) -> bool:
        try:
            return self.marker.read_text().strip() != self._install_key() or not any(self.libs.glob("*.jar"))
        except OSError:
            return True

    def install(self, progress: Progress) -> None:
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalStackError("Kafka: Maven (mvn) not found on PATH; install it (apt-get install maven)")
        # Start from an empty dir: stale jars of another version would poison the classpath.
        shutil.rmtree(self.libs, ignore_errors=True)
        self.libs.mkdir(parents=True)
        _run_streaming([mvn, *self._mvn_args()], cwd=paths.KAFKA_SRC_DIR, env=os.environ, progress=progress)
        self.marker.write_text(self._install_key() + "\n")

    def _java(self) -> str:
        java_home = os.environ.get("JAVA_HOME")
        if java_home and (Path(java_home) / "bin" / "java").exists():
            return str(Path(java_home) / "bin" / "java")
        java = shutil.which("java")
        if java is None:
            raise LocalStackError("Kafka: java not found (need Java 17+ on PATH or JAVA_HOME)")
        return java

    def _java_base(self) -> list[str]:
        return [self._java(), "-cp", f"{self.libs}/*", f"-Dlog4j2.configurationFile={self.log4j}"]

    def prepare(self, progress: Progress) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        if not self.cluster_id_file.exists():
            cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
            self.cluster_id_file.write_text(cluster_id + "\n")
        template = string.Template(self.template.read_text())
        self.props.write_text(
            template.substitute(
                data_dir=self.data,
                broker_port=self.port,
                controller_port=self.stack.ports.kafka_controller,
            )
        )
        if (self.data / "meta.properties").exists():
            return
        progress("  Formatting Kafka storage (first start)…")
        cluster_id = self.cluster_id_file.read_text().strip()
        result = subprocess.run(
            [
                *self._java_base(),
                "kafka.tools.StorageTool",
                "format",
                f"--cluster-id={cluster_id}",  # one word: an id may begin with "-" (base64url)
                "-c",
                str(self.props),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            errors="replace",
        )
        if result.returncode != 0:
            raise LocalStackError(f"Kafka storage format failed:\n{result.stdout}{result.stderr}")

    def command(self) -> list[str]:
        java, *rest = self._java_base()
        return [java, "-Xms512m", "-Xmx1g", "-XX:+UseG1GC", *rest, "kafka.Kafka", str(self.props)]

    def cmd_markers(self) -> list[str]:
        return ["kafka.Kafka", str(self.props)]

    def probe(self, timeout: float = 3.0) -> bool:
        from aiokafka.admin import AIOKafkaAdminClient  # type: ignore[import-untyped]

        bootstrap = self.endpoint()
        if not self.external_setting() and not _port_open(self.port):
            return False  # cheap pre-check while the JVM boots

        async def ask() -> bool:
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000))
            try:
                await asyncio.wait_for(admin.start(), timeout)
                cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
                # Only unfenced brokers are listed: an empty list means "not serving yet".
                return bool(cluster.get("brokers"))
            except Exception:
                return False
            finally:
                await admin.close()

        with _quiet_logger("aiokafka"):
            return _run_sync(ask)


# FerretDB 1.24's SQLite backend finds a document by `_id` with a full table scan: its queries spell
# the _id path differently from its own unique index, so SQLite never uses the index; and a filter
# naming anything beside `_id` (a version, a due time) is not pushed down at all, so every
# conditional write decodes the whole collection in Go. Measured on 3,000 documents: a lookup by _id
# 7 ms, a conditional update 118 ms; with these two edits 0.8 ms and 1.2 ms. The build applies them
# to a copy of the module (FerretDB re-checks the whole filter on what SQLite returns, so pushing
# `_id` down beside other conditions changes no result). Each edit must match exactly, or the build
# stops: a new FerretDB version needs them looked at again.
FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_EDITS: dict[str, list[tuple[str, str, int]]] = {
    "internal/backends/sqlite/metadata/metadata.go": [
        ("IDColumn = DefaultColumn + \"->'$._id'\"", 'IDColumn = DefaultColumn + `->"_id"`', 1),
    ],
    "internal/backends/sqlite/collection.go": [
        ("if params.Filter.Len() == 1 {", "if params.Filter.Len() >= 1 {", 2),
    ],
}


def _edited_ferretdb(go: str, src: Path, build_dir: Path, env: Mapping[str, str]) -> Path:
    """A copy of the FerretDB module with FERRETDB_EDITS applied, and a go.mod using it; returns that go.mod."""
    found = subprocess.run(
        [go, "mod", "download", "-json", FERRETDB_MODULE], cwd=src, env=dict(env), capture_output=True, text=True
    )
    if found.returncode != 0:
        raise LocalStackError(f"FerretDB: go mod download failed: {found.stderr.strip() or found.stdout.strip()}")
    shutil.rmtree(build_dir, ignore_errors=True)
    module = build_dir / "ferretdb-module"
    shutil.copytree(json.loads(found.stdout)["Dir"], module)
    for path in module.rglob("*"):
        path.chmod(path.stat().st_mode | 0o200)  # the module cache is read-only
    for name, edits in FERRETDB_EDITS.items():
        text = (module / name).read_text()
        for old, new, times in edits:
            if text.count(old) != times:
                raise LocalStackError(f"FerretDB: {name} no longer has {old!r} {times}x; review FERRETDB_EDITS")
            text = text.replace(old, new)
        (module / name).write_text(text)
    modfile = build_dir / "go.mod"
    shutil.copy(src / "go.mod", modfile)
    shutil.copy(src / "go.sum", build_dir / "go.sum")
    edit = [go, "mod", "edit", f"-modfile={modfile}", f"-replace={FERRETDB_MODULE}={module}"]
    subprocess.run(edit, cwd=src, env=dict(env), check=True)
    return modfile


class _FerretDB(_Component):
    name = "ferretdb"
    title = "FerretDB"
    ready_timeout = 30.0

    def __init__(self, stack: LocalStack) -> None:
        super().__init__(stack)
        self.binary = stack.var_dir / "bin" / "ferretdb-local"
        self.data = stack.var_dir / "ferretdb"
        self.sources = [paths.FERRETDB_SRC_DIR / n for n in ("main.go", "gate.go", "go.mod", "go.sum")]
        self.sources.append(Path(__file__))  # FERRETDB_EDITS

    @property
    def port(self) -> int:
        return self.stack.ports.ferretdb

    def local_endpoint(self) -> str:
        return f"mongodb://{HOST}:{self.port}/"

    def external_setting(self) -> str | None:
        value = self.stack.environ.get("MONGODB_URI", "").strip().rstrip("/")
        local = {f"mongodb://{HOST}:{self.port}", f"mongodb://localhost:{self.port}"}
        return "MONGODB_URI" if value and value not in local else None

    def needs_install(self) -> bool:
        return not self.binary.exists() or self.binary.stat().st_mtime < _newest_mtime(self.sources)

    def install(self, progress: Progress) -> None:
        go = shutil.which("go")
        if go is None:
            raise LocalStackError("FerretDB: the Go toolchain (go) is not on PATH")
        self.binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.binary.with_name(self.binary.name + ".tmp")
        # GOTOOLCHAIN=local: never download another toolchain; CGO off: pure-Go SQLite.
        # -buildvcs=false: the repo may have no commits yet, which breaks VCS stamping.
        env = {**os.environ, "GOTOOLCHAIN": "local", "CGO_ENABLED": "0"}
        modfile = _edited_ferretdb(go, paths.FERRETDB_SRC_DIR, self.stack.var_dir / "build" / "ferretdb", env)
        cmd = [go, "build", "-v", "-buildvcs=false", f"-modfile={modfile}", "-tags", "ferretdb_no_postgresql"]
        cmd += ["-o", str(tmp), "."]
        _run_streaming(cmd, cwd=paths.FERRETDB_SRC_DIR, env=env, progress=progress)
        os.replace(tmp, self.binary)
        self.binary.touch()  # mtime is the "up to date" marker even if go reused a cached link

    def prepare(self, progress: Progress) -> None:
        self.data.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [str(self.binary), "-listen", f"{HOST}:{self.port}", "-data", str(self.data)]

    def cmd_markers(self) -> list[str]:
        return [str(self.binary)]

    def probe(self, timeout: float = 2.0) -> bool:
        from pymongo import MongoClient

        ms = int(timeout * 1000)
        client: MongoClient[dict[str, Any]] = MongoClient(
            self.endpoint(),
            serverSelectionTimeoutMS=ms,
            connectTimeoutMS=ms,
            socketTimeoutMS=ms,
        )
        try:
            client.admin.command("ping")
            return True
        except Exception:
            return False
        finally:
            client.close()


class _SmtpSink(_Component):
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


class _Service(_Component):
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
        endpoints = self.stack.endpoints()
        prefix = self.name.upper()
        env = {
            f"{prefix}_KAFKA_BOOTSTRAP_SERVERS": endpoints["KAFKA_BOOTSTRAP_SERVERS"],
            f"{prefix}_MONGODB_URI": endpoints["MONGODB_URI"],
            f"{prefix}_AUTH_JWKS_URL": f"{self.stack.service_url('registration')}/.well-known/jwks.json",
        }
        if self.name == "registration":
            env |= self.stack.registration_secrets()
        if self.name == "matching":
            env |= self.stack.matching_secrets() | {"MATCHING_PUBLIC_URL": self.local_endpoint()}
        if self.name == "surveys":
            env |= self.stack.surveys_secrets() | {"SURVEYS_PUBLIC_URL": self.local_endpoint()}
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


# --------------------------------------------------------------------------- the stack


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
        infrastructure: list[_Component] = [_Kafka(self), _FerretDB(self), _SmtpSink(self)]
        services = [_Service(self, name, port) for name, port in SERVICES.items()]
        self._components: dict[str, _Component] = {c.name: c for c in (*infrastructure, *services)}

    # -- helpers

    def _select(self, components: Iterable[str] | None) -> list[_Component]:
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

        def generate() -> dict[str, str]:
            # Imported here: only the commands that run the platform need its packages.
            from aimms_registration.tokens import new_signing_key_pem
            from aimms_shared.crypto import new_key_spec

            return {
                "REGISTRATION_TOKEN_SIGNING_KEY": new_signing_key_pem(),
                "REGISTRATION_ENCRYPTION_KEYS": new_key_spec("local-1"),
                "REGISTRATION_ENCRYPTION_KEY_ID": "local-1",
                "REGISTRATION_BOOTSTRAP_ADMIN_CLIENT_ID": "local-admin",
                "REGISTRATION_BOOTSTRAP_ADMIN_SECRET": base64.urlsafe_b64encode(os.urandom(24)).decode(),
            }

        return self._secrets("registration", generate)

    def matching_secrets(self) -> dict[str, str]:
        """Matching's key for signing answer links, generated once (var/secrets)."""
        return self._secrets(
            "matching", lambda: {"MATCHING_LINK_SIGNING_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()}
        )

    def surveys_secrets(self) -> dict[str, str]:
        """Surveys' key for the answers to sensitive items, generated once (var/secrets)."""
        from aimms_shared.crypto import new_key_spec

        keys = {"SURVEYS_ENCRYPTION_KEYS": new_key_spec("local-1"), "SURVEYS_ENCRYPTION_KEY_ID": "local-1"}
        return self._secrets("surveys", lambda: keys)

    def notifications_secrets(self) -> dict[str, str]:
        """Notifications' key for signing opt-out links, generated once (var/secrets)."""
        return self._secrets(
            "notifications",
            lambda: {"NOTIFICATIONS_LINK_SIGNING_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode()},
        )

    def _secrets(self, service: str, generate: Callable[[], dict[str, str]]) -> dict[str, str]:
        path = self.var_dir / "secrets" / f"{service}.json"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(generate(), indent=1))
            tmp.chmod(0o600)
            os.replace(tmp, path)
        return json.loads(path.read_text())

    def log_path(self, component: str) -> Path:
        """Log file of ``component``."""
        return self._select([component])[0].log_file

    def install(self, components: Iterable[str] | None = None) -> list[StepResult]:
        """Fetch the Kafka jars and build FerretDB unless already done (idempotent)."""
        return [self._install_one(c) for c in self._select(components)]

    def _install_one(self, c: _Component) -> StepResult:
        progress = self.progress
        t0 = time.monotonic()
        if isinstance(c, _Kafka):
            what = f"Kafka {c.version()} jars"
            if not c.needs_install():
                progress(f"{what}: already installed in {c.libs}")
                return StepResult(c.name, "cached", time.monotonic() - t0)
            progress(f"Fetching {what} from Maven Central…")
        elif isinstance(c, _FerretDB):
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

    def _start(self, selected: list[_Component]) -> list[StepResult]:
        progress = self.progress
        results: list[StepResult] = []
        errors: list[str] = []
        waiting: list[tuple[_Component, int, float]] = []  # (component, pid, launched at)
        to_launch: list[_Component] = []

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
            busy = [p for p in (c.port, *c.extra_ports()) if _port_open(p)]
            if busy and _port_open(c.port) and c.probe():
                # Someone else's server answers correctly (e.g. a Kafka from another checkout): use it.
                detail = f"{_describe_listener(c.port)} is served by a process not started by aimms; using it"
                if isinstance(c, _SmtpSink):
                    detail += f" (mail will NOT land in {c.maildir})"
                progress(f"{c.title}: {detail}")
                results.append(StepResult(c.name, "external", time.monotonic() - t0, detail))
                continue
            if busy:
                errors.append(
                    f"{c.title}: {', '.join(_describe_listener(p) for p in busy)} already in use by "
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
                elif not _pid_alive(pid):
                    c.pid_file.unlink(missing_ok=True)
                    errors.append(
                        f"{c.title} exited during startup; last lines of {c.log_file}:\n{_tail_text(c.log_file)}"
                    )
                elif time.monotonic() - t0 > c.ready_timeout:
                    # Don't leave a half-started daemon behind: the next start should begin clean.
                    self._stop_one(c, pid)
                    errors.append(
                        f"{c.title} did not answer within {c.ready_timeout:.0f} s; last lines of "
                        f"{c.log_file}:\n{_tail_text(c.log_file)}"
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

    def _stop(self, selected: list[_Component]) -> list[StepResult]:
        results: list[StepResult] = []
        running: list[tuple[_Component, int, float]] = []
        for c in selected:
            entry = c.owned()  # whatever port it was started on
            pid = entry[0] if entry else None
            if pid is None:
                note = ""
                if not c.external_setting() and _port_open(c.port):
                    note = f"{_describe_listener(c.port)} is served by a process not started by aimms; left alone"
                results.append(StepResult(c.name, "not running", 0.0, note))
                continue
            self.progress(f"Stopping {c.title} (pid {pid})…")
            _signal_group(pid, signal.SIGTERM)  # all first, so they shut down in parallel
            running.append((c, pid, time.monotonic()))
        for c, pid, t0 in running:
            action = self._stop_one(c, pid, already_signalled_at=t0)
            results.append(StepResult(c.name, action, time.monotonic() - t0, f"pid {pid}"))
        return results

    def _stop_one(self, c: _Component, pid: int, already_signalled_at: float | None = None) -> str:
        if already_signalled_at is None:
            _signal_group(pid, signal.SIGTERM)
            already_signalled_at = time.monotonic()
        remaining = c.stop_timeout - (time.monotonic() - already_signalled_at)
        action = "stopped"
        if not _wait_dead(pid, max(remaining, 0.0)):
            self.progress(f"{c.title} ignored SIGTERM for {c.stop_timeout:.0f} s; sending SIGKILL")
            _signal_group(pid, signal.SIGKILL)
            _wait_dead(pid, 5.0)
            action = "killed"
        c.pid_file.unlink(missing_ok=True)
        return action

    def status(self, components: Iterable[str] | None = None) -> list[ComponentStatus]:
        """Report each component: state, pid, endpoint and whether it answers."""
        return [self._status_one(c) for c in self._select(components)]

    def _status_one(self, c: _Component) -> ComponentStatus:
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
        if _port_open(c.port):
            foreign = _listener_pid(c.port)
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
            assert isinstance(kafka, _Kafka)
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
