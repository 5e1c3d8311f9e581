"""FerretDB (MongoDB wire protocol on SQLite), built from Go modules with the project's edits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import paths
from .base import HOST, LocalStackError, Progress
from .component import Component
from .processes import newest_mtime, run_streaming

if TYPE_CHECKING:
    from ..local_stack import LocalStack


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


class FerretDB(Component):
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
        return not self.binary.exists() or self.binary.stat().st_mtime < newest_mtime(self.sources)

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
        run_streaming(cmd, cwd=paths.FERRETDB_SRC_DIR, env=env, progress=progress)
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
