"""What the platform benches share: the services as the platform runs them (uvicorn, a process each) against the
Kafka and store the environment names (else the local stack's), an SMTP server in a process of its own that
clocks each message it accepts, the store's identity, consumer lag, and the CPU each process spent.

Run directly, this module is that SMTP clock (`python bench/_platform.py PORT`): it prints `ready`, then one line
per recipient of each accepted message: `<wall clock> <recipient> <Message-ID> <subject>`.
"""

import asyncio
import contextlib
import os
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

from aimms_deploy.local_stack import LocalStack
from aimms_deploy.paths import FERRETDB_SRC_DIR
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings
from aimms_shared.contracts import matching, notifications, registration, surveys
from aimms_shared.events import Topic, dead_letter, in_namespace

PROGRAMME = "aimms-mentoring"
WELCOME = "Welcome to"  # the subject of the welcome an expression of interest earns
REGISTERED = "registration with"  # the subject of the confirmation a registration earns
STALL_SECONDS = 60  # no email owed arriving for this long: the rest are taken as lost (see the services' logs)


@dataclass(frozen=True)
class Endpoints:
    """Where the benches find Kafka and the store: the environment's first, else the local stack's."""

    kafka: str
    mongodb_uri: str

    @classmethod
    def from_environment(cls) -> "Endpoints":
        local = LocalStack().endpoints()
        return cls(
            os.environ.get("KAFKA_BOOTSTRAP_SERVERS", local["KAFKA_BOOTSTRAP_SERVERS"]),
            os.environ.get("MONGODB_URI", local["MONGODB_URI"]),
        )


async def store_identity(mongodb_uri: str) -> dict[str, Any]:
    """Which store answers at `mongodb_uri` (FerretDB or MongoDB, and its version), from its buildInfo."""
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        info = await mongo.admin.command("buildInfo")
    finally:
        await mongo.close()
    if "ferretdbVersion" not in info:
        return {"store": "mongodb", "version": info["version"], "label": f"MongoDB {info['version']}"}
    version = info["ferretdbVersion"]
    if version in ("", "unknown"):  # the local build embeds FerretDB as a module: its version is the module's
        version = _ferretdb_module_version() + " (local build, SQLite)"
    return {"store": "ferretdb", "version": version, "label": f"FerretDB {version}, MongoDB {info['version']} wire"}


STORE_COMMANDS = ("find", "getMore", "insert", "update", "findAndModify", "delete", "aggregate", "count")


async def store_commands(mongodb_uri: str) -> dict[str, int]:
    """How many of each data command the store has answered since it started (serverStatus), to count a
    run's by difference; empty where the server does not say."""
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri, serverSelectionTimeoutMS=5000)
    try:
        status = await mongo.admin.command("serverStatus")
    except Exception:  # noqa: BLE001 - a figure the bench can do without (e.g. no clusterMonitor role)
        return {}
    finally:
        await mongo.close()
    commands = status.get("metrics", {}).get("commands", {})
    return {name: int(commands[name]["total"]) for name in STORE_COMMANDS if name in commands}


async def store_write_capacity(mongodb_uri: str, seconds: float = 3.0, writers: int = 16) -> dict[str, float]:
    """Single-document writes a second the store takes into one database from `writers` clients at once: inserts,
    then updates by `_id` (FerretDB runs the writes of one database one at a time; MongoDB side by side)."""
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri)
    database = f"capacity{uuid.uuid4().hex[:8]}"
    collection = mongo[database]["probe"]
    figures: dict[str, float] = {}
    try:
        await collection.insert_many([{"_id": n, "n": 0} for n in range(writers)])
        for kind in ("inserts", "updates"):
            done = 0
            until = time.monotonic() + seconds

            async def writer(n: int, kind: str = kind, until: float = until) -> None:
                nonlocal done
                while time.monotonic() < until:
                    if kind == "inserts":
                        await collection.insert_one({"pad": "x" * 500})
                    else:
                        await collection.update_one({"_id": n}, {"$inc": {"n": 1}})
                    done += 1

            await asyncio.gather(*(writer(n) for n in range(writers)))
            figures[f"{kind}_per_second"] = round(done / seconds)
    finally:
        await mongo.drop_database(database)
        await mongo.close()
    return figures


def _ferretdb_module_version() -> str:
    with contextlib.suppress(OSError):
        for line in (FERRETDB_SRC_DIR / "go.mod").read_text().splitlines():
            if line.startswith("require github.com/FerretDB/FerretDB "):
                return line.split()[-1]
    return "unknown"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(latencies_ms: Iterable[float]) -> dict[str, float | None]:
    values = sorted(latencies_ms)
    if len(values) < 2:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None}
    q = statistics.quantiles(values, n=100)
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1)}


# -- the SMTP clock


class _ArrivalClock:
    """SMTP handler that prints, for each recipient, when her message was accepted (wall clock) and its id."""

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        accepted = time.time()
        headers = BytesHeaderParser().parsebytes(envelope.original_content or envelope.content)
        message_id = "".join(str(headers["Message-ID"] or "-").split())
        subject = " ".join(str(headers["Subject"] or "").split())
        for recipient in envelope.rcpt_tos:
            print(f"{accepted} {recipient} {message_id} {subject}", flush=True)
        return "250 OK"


def _smtp_clock(port: int) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_ArrivalClock(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


class Arrivals:
    """The SMTP clock's reports, read as they come: each recipient's first arrival, and every message she got."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.port = port
        self.at: dict[str, float] = {}  # recipient -> first accepted
        self.messages: dict[str, dict[str, str]] = {}  # recipient -> her distinct Message-IDs and their subjects
        self.copies: Counter[str] = Counter()  # recipient -> messages accepted, resent copies included
        self._process = process
        self._following: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls) -> "Arrivals":
        """An SMTP clock on a free port, followed from now on."""
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, str(port), stdout=asyncio.subprocess.PIPE
        )
        arrivals = cls(process, port)
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the SMTP clock did not start: {line!r}")
        arrivals._following = asyncio.create_task(arrivals._follow())
        return arrivals

    async def _follow(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            accepted, recipient, message_id, *subject = line.decode().split(maxsplit=3)
            self.at.setdefault(recipient, float(accepted))
            self.messages.setdefault(recipient, {})[message_id] = subject[0].strip() if subject else ""
            self.copies[recipient] += 1

    def distinct(self, recipient: str, subject: str) -> int:
        """How many different messages (by Message-ID) whose subject holds `subject` reached her."""
        return sum(subject in s for s in self.messages.get(recipient, {}).values())

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process.returncode is None else None

    def count(self, recipients: Iterable[str]) -> int:
        return sum(recipient in self.at for recipient in recipients)

    async def wait_for(self, recipients: Iterable[str], timeout: float, stall: float = STALL_SECONDS) -> bool:
        """Until each recipient has a message, or `timeout` seconds, or `stall` seconds without one more arriving
        (a message that fails, e.g. a template that cannot be rendered, never comes); whether all have."""
        wanted = list(recipients)
        deadline = time.monotonic() + timeout
        arrived, progressed = -1, time.monotonic()
        while (now := self.count(wanted)) < len(wanted):
            if now > arrived:
                arrived, progressed = now, time.monotonic()
            if time.monotonic() > min(deadline, progressed + stall):
                return False
            await asyncio.sleep(0.05)
        return True

    async def stop(self) -> None:
        if self._following is not None:
            self._following.cancel()
        if self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()


# -- the services


class ServiceProcess:
    """One service as the platform runs it: uvicorn in a process of its own, on a free port, logging to a file."""

    def __init__(self, name: str, environment: dict[str, str], log_dir: Path, replica: int = 0) -> None:
        self.name, self.replica = name, replica
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log_dir / f"{name}-{replica}.log"
        self._environment = {**os.environ, **environment}
        self.process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self) -> None:
        app = f"aimms_{self.name}.app:create_app"
        command = ["-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning", "--no-access-log"]
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, *command, env=self._environment, stdout=log, stderr=asyncio.subprocess.STDOUT
            )

    async def ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as client:
            while time.monotonic() < deadline:
                if self.process is None or self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited; its log: {self.log.read_text()[-2000:]}")
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with client.get(f"{self.url}/readyz", timeout=aiohttp.ClientTimeout(total=5)) as ready:
                        if ready.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} was not ready within {timeout:.0f} s; its log: {self.log}")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is committed or flushed."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()
            self.kills += 1

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclass
class Deployment:
    """One namespace of the platform on the shared Kafka and store: its topics, databases and settings."""

    endpoints: Endpoints
    smtp_port: int
    namespace: str = field(default_factory=lambda: f"bench{uuid.uuid4().hex[:8]}")
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="aimms-bench-")))

    def environment(self, service: str) -> dict[str, str]:
        """A service's settings as the environment variables it reads."""
        prefix = service.upper()
        common = {
            "KAFKA_BOOTSTRAP_SERVERS": self.endpoints.kafka,
            "MONGODB_URI": self.endpoints.mongodb_uri,
            "TOPIC_NAMESPACE": self.namespace,
            "MONGODB_DATABASE": f"{self.namespace}_{service}",
            # BENCH_LOG_LEVEL=INFO keeps every event a service logs (JSON, in `log_dir`), to see where time goes.
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "LOG_FORMAT": "json",
        }
        stack = LocalStack()  # this machine's local keys (generated once)
        specific = {
            "registration": {"PUBLIC_URL": "http://portal.bench"},  # page links, none followed here
            "matching": {"PUBLIC_URL": "http://matching.bench"},
            "notifications": {
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.smtp_port),
                "SENDER": "bench@aimms.test",
                "PUBLIC_URL": "http://notifications.bench",
            },
        }[service]
        secrets = {
            "registration": stack.registration_secrets,
            "matching": stack.matching_secrets,
            "notifications": stack.notifications_secrets,
        }[service]()
        return {f"{prefix}_{k}": v for k, v in (common | specific).items()} | secrets

    def service(self, name: str, replica: int = 0) -> ServiceProcess:
        return ServiceProcess(name, self.environment(name), self.log_dir, replica)

    async def seed(self) -> dict[str, str]:
        """The demo institution, programme and portal client; the portal's client credentials."""
        keys = {k.removeprefix("REGISTRATION_").lower(): v for k, v in self.environment("registration").items()}
        portal = await seed_demo(RegistrationSettings(**keys))
        return {"client_id": portal.client_id, "client_secret": portal.client_secret}

    async def create_topics(self, partitions: int) -> None:
        """Every topic of the platform in this namespace with `partitions` partitions, as a deployment's topic job
        makes them before the services start (the services would make the missing ones with their default)."""
        layouts = [
            value
            for module in (registration, matching, surveys, notifications)
            for value in vars(module).values()
            if isinstance(value, Topic)
        ]
        new = []
        for layout in layouts:
            name = in_namespace(layout.name, self.namespace)
            config = {"cleanup.policy": "compact"} if layout.compacted else {}
            new += [NewTopic(name, partitions, 1, topic_configs=config), NewTopic(dead_letter(name), partitions, 1)]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.endpoints.kafka)
        await admin.start()
        try:
            await admin.create_topics(new)
        finally:
            await admin.close()

    def group(self, service: str, topic: Topic) -> str:
        """The consumer group of a service's consumer of a topic (aimms_shared.consumer.EventConsumer.group_for)."""
        return in_namespace(f"{service}.{topic.name}", self.namespace)

    def topic(self, topic: Topic) -> str:
        return in_namespace(topic.name, self.namespace)

    async def drop(self) -> None:
        await drop_databases(self.endpoints.mongodb_uri, self.namespace)


async def portal_session(url: str, credentials: dict[str, str], concurrency: int) -> aiohttp.ClientSession:
    """An HTTP client of registration's API holding the portal's access token.

    aiohttp rather than httpx: on two cores the load generator's own CPU takes from the platform's, and httpx
    spent more per request than the registration service did.
    """
    client = aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=concurrency), raise_for_status=True)
    form = {"grant_type": "client_credentials"} | credentials
    async with client.post("/oauth/token", data=form) as response:
        client.headers["Authorization"] = f"Bearer {(await response.json())['access_token']}"
    return client


def interest(namespace: str, n: int) -> dict[str, Any]:
    """An expression of interest (POST /interests) by a person of her own."""
    return {"name": f"Dr Person {n}", "email": f"person{n}.{namespace}@example.org", "programme_id": PROGRAMME}


def registrant(namespace: str, n: int) -> dict[str, Any]:
    """A mentee's registration (POST /participants) by a person of her own."""
    return {
        "name": f"Dr Mentee {n}",
        "email": f"mentee{n}.{namespace}@demo-university.ac.uk",
        "programme_id": PROGRAMME,
        "role": "mentee",
        "job_title": "Lecturer",
        "seniority": "Lecturer",
        "pathway": "clinical",
        "research_interests": ["global health"],
        "seeks": "career advice",
        "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1", "evaluation": "1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
    }


async def drop_databases(mongodb_uri: str, prefix: str) -> None:
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri)
    try:
        for name in await mongo.list_database_names():
            if name.startswith(prefix):
                await mongo.drop_database(name)
    finally:
        await mongo.close()


@dataclass
class Platform:
    """A running deployment: its services' processes by name, the SMTP clock, and a portal's client of registration."""

    deployment: Deployment
    arrivals: Arrivals
    services: dict[str, list[ServiceProcess]]
    client: aiohttp.ClientSession

    def pids(self, name: str) -> list[int | None]:
        return [s.pid for s in self.services.get(name, [])]


@contextlib.asynccontextmanager
async def running(
    endpoints: Endpoints, replicas: dict[str, int], *, partitions: int | None = None, concurrency: int = 64
) -> AsyncIterator[Platform]:
    """Start a deployment of its own (namespace, databases, topics) with `replicas` of each service, registration
    first; stop everything and drop its databases afterwards. Topics are made with `partitions` when given."""
    arrivals = await Arrivals.start()
    deployment = Deployment(endpoints, arrivals.port)
    services: dict[str, list[ServiceProcess]] = {}
    client: aiohttp.ClientSession | None = None
    try:
        if partitions is not None:
            await deployment.create_topics(partitions)
        credentials = await deployment.seed()
        for name, count in replicas.items():
            services[name] = [deployment.service(name, replica) for replica in range(count)]
        every = [s for group in services.values() for s in group]
        await asyncio.gather(*(s.start() for s in every))
        await asyncio.gather(*(s.ready() for s in every))
        client = await portal_session(services["registration"][0].url, credentials, concurrency)
        yield Platform(deployment, arrivals, services, client)
    except BaseException:
        print(f"the services' logs: {deployment.log_dir}", file=sys.stderr)
        raise
    finally:
        if client is not None:
            await client.close()
        await asyncio.gather(*(s.stop() for group in services.values() for s in group))
        await arrivals.stop()
        await deployment.drop()


async def paced(rate: float, seconds: float, send: Callable[[int, float], Awaitable[None]]) -> float:
    """Call `send(i, scheduled)` `rate` times a second for `seconds`, each at its time whether or not the earlier
    ones have finished (an open load: people do not wait for each other); the time the last one finished."""
    count = round(rate * seconds)
    started = time.time()
    tasks = []
    for i in range(count):
        scheduled = started + i / rate
        delay = scheduled - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(i, scheduled)))
    await asyncio.gather(*tasks)
    return time.time()


# -- what the platform is doing


class ConsumerLag:
    """Records behind the end of their topics, per consumer group (committed offsets against the end offsets)."""

    def __init__(self, kafka: str, groups: dict[str, tuple[str, str]]) -> None:
        self._kafka = kafka
        self._groups = groups  # label -> (group, topic)
        self._admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
        self._ends = AIOKafkaConsumer(bootstrap_servers=kafka, enable_auto_commit=False)

    async def __aenter__(self) -> "ConsumerLag":
        await self._admin.start()
        await self._ends.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._ends.stop()
        await self._admin.close()

    async def sample(self) -> dict[str, int]:
        lags = {}
        for label, (group, topic) in self._groups.items():
            partitions = [TopicPartition(topic, p) for p in self._ends.partitions_for_topic(topic) or ()]
            if not partitions:
                await self._ends._client.force_metadata_update()  # noqa: SLF001 - a topic made after start
                partitions = [TopicPartition(topic, p) for p in self._ends.partitions_for_topic(topic) or ()]
            ends = await self._ends.end_offsets(partitions)
            committed = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
            lags[label] = sum(
                end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                for tp, end in ends.items()
            )
        return lags


class CpuMeter:
    """CPU seconds each labelled process spent between two readings, from /proc (Linux)."""

    TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def __init__(self) -> None:
        self._start: dict[int, float] = {}
        self._started_at = 0.0
        self._machine_start = (0, 0)

    @classmethod
    def _seconds(cls, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        return (int(fields[11]) + int(fields[12])) / cls.TICKS  # utime, stime

    @staticmethod
    def _machine() -> tuple[int, int]:
        """Busy and total jiffies of every core together, since boot."""
        try:
            values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return 0, 0
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle, iowait
        return sum(values) - idle, sum(values)

    def start(self, pids: Iterable[int | None]) -> None:
        self._started_at = time.monotonic()
        self._start = {pid: s for pid in pids if pid is not None and (s := self._seconds(pid)) is not None}
        self._machine_start = self._machine()

    def machine_percent(self) -> float:
        """How busy the whole machine was since `start` (every process, ours or not), in percent of one core."""
        busy, total = self._machine()
        busy, total = busy - self._machine_start[0], total - self._machine_start[1]
        return round(100 * (os.cpu_count() or 1) * busy / total, 1) if total > 0 else 0.0

    def percent(self, labelled: dict[str, Iterable[int | None]]) -> dict[str, float]:
        """Per label, the CPU its processes used since `start`, in percent of one core."""
        elapsed = time.monotonic() - self._started_at
        shares = {}
        for label, pids in labelled.items():
            spent = 0.0
            for pid in pids:
                if pid is None or pid not in self._start:
                    continue
                now = self._seconds(pid)
                spent += (now - self._start[pid]) if now is not None else 0.0
            shares[label] = round(100 * spent / elapsed, 1) if elapsed > 0 else 0.0
        return shares


def cpu_labels(platform: "Platform | None" = None) -> dict[str, list[int | None]]:
    """The processes whose CPU the benches report: each service's replicas, Kafka, the store, and the bench
    itself (the load and, with a platform, the SMTP clock)."""
    infrastructure = infrastructure_pids()
    labels: dict[str, list[int | None]] = {}
    if platform is not None:
        labels = {name: platform.pids(name) for name in platform.services}
    labels |= {"kafka": [infrastructure.get("kafka")], "store": [infrastructure.get("ferretdb")]}
    labels["bench"] = [os.getpid()] + ([platform.arrivals.pid] if platform is not None else [])
    return labels


def per_item(busy: dict[str, float], seconds: float, items: int) -> dict[str, float]:
    """CPU percentages over `seconds` as CPU milliseconds per item."""
    return {k: round(v / 100 * seconds * 1000 / max(items, 1), 2) for k, v in busy.items()}


def infrastructure_pids() -> dict[str, int | None]:
    """The local stack's Kafka and FerretDB processes (None where the environment names other servers)."""
    try:
        return {s.name: s.pid for s in LocalStack().status(["kafka", "ferretdb"]) if s.state == "running"}
    except Exception:  # noqa: BLE001 - CPU figures are extra: without them the bench still runs
        return {}


if __name__ == "__main__":
    _smtp_clock(int(sys.argv[1]))
