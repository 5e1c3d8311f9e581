"""Processes of the local stack: pid files, liveness, ports, signals, and commands run to completion."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .base import HOST, LocalStackError, Progress, T

# Popen objects of the daemons this Python process started. Keeping them referenced lets
# us reap them (no zombies inside a long pytest run) and avoids Popen's ResourceWarning.
CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


def read_pid_file(pid_file: Path) -> tuple[int, int] | None:
    """(pid, port) from a pid file: line 1 the pid, line 2 the port the daemon was started on."""
    try:
        pid, port = pid_file.read_text().split()[:2]
        return int(pid), int(port)
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (zombies count as dead)."""
    child = CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del CHILDREN[pid]
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


def cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def listener_pid(port: int) -> int | None:
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


def describe_listener(port: int) -> str:
    pid = listener_pid(port)
    if pid is None:
        return f"port {port}"
    cmd = cmdline(pid) or "?"
    return f"port {port} (pid {pid}: {cmd[:120]})"


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the daemon's whole process group (it leads its own session), else just the pid."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_dead(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def run_streaming(cmd: list[str], *, cwd: Path, env: Mapping[str, str], progress: Progress) -> None:
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


def run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion, also when called from inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    # Inside an async test: a private loop in a worker thread (blocks the caller briefly).
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


@contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Silence a library logger while probing (aiokafka logs every refused connection)."""
    logger = logging.getLogger(name)
    previous = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(previous)


def tail_text(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            last = deque(f, maxlen=lines)
    except OSError:
        return "(no log)"
    return b"".join(last).decode(errors="replace").rstrip()


def newest_mtime(files: Iterable[Path]) -> float:
    return max(f.stat().st_mtime for f in files)
