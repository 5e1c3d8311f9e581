"""Benchmark: the event pipeline, from an expression of interest (HTTP) to its welcome email accepted by SMTP,
against the floor this machine's Kafka and store allow.

Platform: registration and notifications run as the platform runs them, each its own uvicorn process, against
the Kafka and store named by KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI, else the local stack's (`aimms local
start`); an SMTP server in a third process notes when each message arrives. `--count` people express interest
through the HTTP API, `--concurrency` at a time; the rate is people per second from the first request until
every email is accepted.

Floor, in the same run and volume: one bare aiokafka producer (idempotent, acks=all, as the relay) sends one
record per person and inserts one document; one bare consumer reads each record and inserts one document. That
is the least any design moving an event from one service's store to another's could do here. It takes well under
a second, so a checkpoint or a collection of garbage moves it by half: it runs FLOOR_RUNS times and the median
counts (all are printed).

    .venv/bin/python bench/pipeline.py --count 300 --concurrency 20

The last line is one JSON object with every figure, for tooling.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import threading
import time
import uuid
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from aimms_deploy.local_stack import LocalStack
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings

TARGET_RATIO = 3.0
FLOOR_RUNS = 3


class ArrivalClock:
    """SMTP handler that prints, for each recipient, when her message was accepted (wall clock)."""

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        accepted = time.time()
        for recipient in envelope.rcpt_tos:
            print(f"{accepted} {recipient}", flush=True)
        return "250 OK"


def smtp_clock(port: int) -> None:
    """Run an SMTP server that accepts everything and notes arrivals on stdout, until killed."""
    controller = Controller(ArrivalClock(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(latencies_ms, n=100)
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1)}


class Arrivals:
    """The SMTP clock's reports, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.at: dict[str, float] = {}
        self._process = process

    async def ready(self) -> None:
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"the SMTP clock did not start: {line!r}")

    async def follow(self) -> None:
        assert self._process.stdout is not None
        async for line in self._process.stdout:
            accepted, recipient = line.decode().split()
            self.at.setdefault(recipient, float(accepted))


async def start_service(name: str, environment: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    """One service as the platform runs it (uvicorn, its own process); returns it and its URL once ready."""
    port = free_port()
    app = f"aimms_{name}.app:create_app"
    command = ["-m", "uvicorn", "--factory", app, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    process = await asyncio.create_subprocess_exec(sys.executable, *command, env={**os.environ, **environment})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}")
            try:
                async with client.get(f"{url}/readyz") as ready:
                    if ready.status == 200:
                        return process, url
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.2)
    process.kill()
    raise TimeoutError(f"{name} was not ready within 60 s")


async def platform_run(kafka: str, mongodb_uri: str, count: int, concurrency: int) -> dict[str, Any]:
    """People per second through the public API until every welcome email is accepted, and their latencies."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    smtp_port = free_port()
    clock = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--smtp-clock", str(smtp_port), stdout=asyncio.subprocess.PIPE
    )
    arrivals = Arrivals(clock)
    common = {"KAFKA_BOOTSTRAP_SERVERS": kafka, "MONGODB_URI": mongodb_uri, "TOPIC_NAMESPACE": namespace}
    common |= {"LOG_LEVEL": "WARNING"}
    secrets = LocalStack().registration_secrets()  # this machine's local keys (generated once)
    registration_env = {f"REGISTRATION_{k}": v for k, v in common.items()} | secrets
    registration_env["REGISTRATION_MONGODB_DATABASE"] = f"{namespace}_registration"
    registration_env["REGISTRATION_PUBLIC_URL"] = "http://portal.bench"  # page links, none asked for here
    notifications_env = {f"NOTIFICATIONS_{k}": v for k, v in common.items()} | {
        "NOTIFICATIONS_MONGODB_DATABASE": f"{namespace}_notifications",
        "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "NOTIFICATIONS_SMTP_PORT": str(smtp_port),
        "NOTIFICATIONS_SENDER": "bench@aimms.test",
        "NOTIFICATIONS_LINK_SIGNING_KEY": uuid.uuid4().hex * 2,  # signs opt-out links, none followed here
        "NOTIFICATIONS_PUBLIC_URL": "http://notifications.bench",
    }
    keys = {name.removeprefix("REGISTRATION_").lower(): value for name, value in registration_env.items()}
    portal = await seed_demo(RegistrationSettings(**keys))
    services: list[asyncio.subprocess.Process] = []
    sent_at: dict[str, float] = {}
    try:
        await arrivals.ready()
        following = asyncio.create_task(arrivals.follow())
        registration, registration_url = await start_service("registration", registration_env)
        services.append(registration)
        services.append((await start_service("notifications", notifications_env))[0])
        # aiohttp rather than httpx: on two cores the load generator's own CPU takes from the platform's,
        # and httpx spent more per request than the registration service did.
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(registration_url, connector=connector, raise_for_status=True) as client:
            form = {"grant_type": "client_credentials", "client_id": portal.client_id}
            form["client_secret"] = portal.client_secret
            async with client.post("/oauth/token", data=form) as response:
                token = (await response.json())["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            await warm_up(client, arrivals, namespace)
            gate = asyncio.Semaphore(concurrency)

            async def express(i: int) -> None:
                email = f"person{i}.{namespace}@example.org"
                body = {"name": f"Dr Person {i}", "email": email, "programme_id": "aimms-mentoring"}
                async with gate:
                    sent_at[email] = time.time()
                    async with client.post("/interests", json=body) as response:
                        await response.read()

            started = time.time()
            await asyncio.gather(*(express(i) for i in range(count)))
            http_done = time.time()
            deadline = time.monotonic() + 600
            while sum(email in arrivals.at for email in sent_at) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            finished = max([arrivals.at[e] for e in sent_at if e in arrivals.at], default=time.time())
        following.cancel()
    finally:
        for process in [*services, clock]:
            if process.returncode is None:
                process.terminate()
                await process.wait()
        await drop_databases(mongodb_uri, namespace)
    latencies = sorted((arrivals.at[e] - sent_at[e]) * 1000 for e in sent_at if e in arrivals.at)
    return {
        "people": count,
        "concurrency": concurrency,
        "emails_accepted": len(latencies),
        "http_per_second": round(count / (http_done - started), 1),
        "per_second_until_all_emails": round(len(latencies) / (finished - started), 1),
        "seconds": round(finished - started, 2),
        **percentiles(latencies),
    }


async def warm_up(client: aiohttp.ClientSession, arrivals: Arrivals, namespace: str) -> None:
    """One person first, so topic creation and consumer group joins are not timed."""
    email = f"warm-up.{namespace}@example.org"
    body = {"name": "Dr Warm Up", "email": email, "programme_id": "aimms-mentoring"}
    async with client.post("/interests", json=body) as response:
        await response.read()
    deadline = time.monotonic() + 120
    while email not in arrivals.at:
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up email never arrived: are Kafka and the store up?")
        await asyncio.sleep(0.05)


async def floor_run(kafka: str, mongodb_uri: str, count: int) -> dict[str, Any]:
    """The same volume through one bare producer and consumer, each writing one document per record."""
    namespace = f"floor{uuid.uuid4().hex[:8]}"
    topic = f"{namespace}.records"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    await admin.close()
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri)
    sent, received = mongo[f"{namespace}_a"]["sent"], mongo[f"{namespace}_b"]["received"]
    producer = AIOKafkaProducer(bootstrap_servers=kafka, enable_idempotence=True, acks="all")
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka, group_id=namespace, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await producer.start()
    await consumer.start()
    try:
        await sent.insert_one({"_id": "warm-up"})
        await received.insert_one({"_id": "warm-up"})

        async def produce() -> None:
            for i in range(count):
                await sent.insert_one({"_id": i, "person": f"person{i}"})
                await producer.send_and_wait(topic, key=str(i).encode(), value=b'{"person": %d}' % i)

        async def consume() -> None:
            seen = 0
            while seen < count:
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        await received.insert_one({"_id": record.key.decode(), "value": record.value})
                        seen += 1
                await consumer.commit()

        started = time.perf_counter()
        await asyncio.gather(produce(), consume())
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await consumer.stop()
        await drop_databases(mongodb_uri, namespace)
        await mongo.close()
    return {"records": count, "per_second": round(count / elapsed, 1), "seconds": round(elapsed, 2)}


async def drop_databases(mongodb_uri: str, prefix: str) -> None:
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri)
    try:
        for name in await mongo.list_database_names():
            if name.startswith(prefix):
                await mongo.drop_database(name)
    finally:
        await mongo.close()


async def run(count: int, concurrency: int) -> dict[str, Any]:
    local = LocalStack().endpoints()  # the local stack's, unless the environment names others
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", local["KAFKA_BOOTSTRAP_SERVERS"])
    mongodb_uri = os.environ.get("MONGODB_URI", local["MONGODB_URI"])
    platform = await platform_run(kafka, mongodb_uri, count, concurrency)
    print(
        f"platform: {platform['people']} expressions of interest, {platform['concurrency']} at a time; "
        f"{platform['emails_accepted']} welcome emails accepted by SMTP in {platform['seconds']} s"
    )
    print(
        f"  HTTP accepted {platform['http_per_second']}/s; sustained until every email: "
        f"{platform['per_second_until_all_emails']}/s"
    )
    print(
        f"  latency HTTP request -> SMTP accepted: p50 {platform['p50_ms']} ms, p95 {platform['p95_ms']} ms, "
        f"p99 {platform['p99_ms']} ms"
    )
    floors = [await floor_run(kafka, mongodb_uri, count) for _ in range(FLOOR_RUNS)]
    median = sorted(floors, key=lambda f: f["per_second"])[len(floors) // 2]
    floor = median | {"runs": [f["per_second"] for f in floors]}
    print(
        f"floor: bare producer + consumer + one insert each side: {floor['per_second']}/s ({floor['seconds']} s), "
        f"the median of {', '.join(f'{rate}/s' for rate in floor['runs'])}"
    )
    ratio = floor["per_second"] / platform["per_second_until_all_emails"]
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"platform is {ratio:.1f}x below the floor  [target within {TARGET_RATIO:.0f}x: {verdict}]")
    return {"benchmark": "pipeline", "platform": platform, "floor": floor, "floor_ratio": round(ratio, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--smtp-clock", type=int, metavar="PORT", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.smtp_clock:
        smtp_clock(args.smtp_clock)
        return
    figures = asyncio.run(run(args.count, args.concurrency))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
