"""Apache Kafka in KRaft mode, from Maven Central's jars."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import shutil
import string
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

from .. import paths
from .base import HOST, LocalStackError, Progress
from .component import Component
from .processes import port_open, quiet_logger, run_streaming, run_sync

if TYPE_CHECKING:
    from ..local_stack import LocalStack


class Kafka(Component):
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
        run_streaming([mvn, *self._mvn_args()], cwd=paths.KAFKA_SRC_DIR, env=os.environ, progress=progress)
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
        if not self.external_setting() and not port_open(self.port):
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

        with quiet_logger("aiokafka"):
            return run_sync(ask)


# FerretDB 1.24's SQLite backend finds a document by `_id` with a full table scan: its queries spell
# the _id path differently from its own unique index, so SQLite never uses the index; and a filter
# naming anything beside `_id` (a version, a due time) is not pushed down at all, so every
# conditional write decodes the whole collection in Go. Measured on 3,000 documents: a lookup by _id
# 7 ms, a conditional update 118 ms; with these two edits 0.8 ms and 1.2 ms. The build applies them
# to a copy of the module (FerretDB re-checks the whole filter on what SQLite returns, so pushing
# `_id` down beside other conditions changes no result). Each edit must match exactly, or the build
# stops: a new FerretDB version needs them looked at again.
