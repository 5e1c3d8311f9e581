"""Benchmark: the event pipeline, from an expression of interest (HTTP) to its welcome email accepted by SMTP,
against the floor this machine's Kafka and store allow.

Platform: registration and notifications run in this process (the real apps, through their HTTP API) against
the Kafka and store named by KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI, else the local stack's (`aimms local
start`), with an in-process SMTP server noting when each message arrives. `--count` people express interest,
`--concurrency` at a time; the rate is people per second from the first request until every email is accepted.

Floor, in the same run and volume: one bare aiokafka producer (idempotent, acks=all, as the relay) sends one
record per person and inserts one document; one bare consumer reads each record and inserts one document. That
is the least any design moving an event from one service's store to another's could do here.

    .venv/bin/python bench/pipeline.py --count 300 --concurrency 20

The last line is one JSON object with every figure, for tooling.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import time
import uuid
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from aimms_deploy.local_stack import LocalStack
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.app import create_app as create_registration
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings

TARGET_RATIO = 3.0


class ArrivalClock:
    """SMTP handler that records when each recipient's message was accepted."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        for recipient in envelope.rcpt_tos:
            self.arrived.setdefault(recipient, time.perf_counter())
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentiles(latencies_ms: list[float]) -> dict[str, float]:
    q = statistics.quantiles(latencies_ms, n=100)
    return {"p50_ms": round(q[49], 1), "p95_ms": round(q[94], 1), "p99_ms": round(q[98], 1)}


async def platform_run(kafka: str, mongodb_uri: str, count: int, concurrency: int) -> dict[str, Any]:
    """People per second through the public API until every welcome email is accepted, and their latencies."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    common = {"kafka_bootstrap_servers": kafka, "mongodb_uri": mongodb_uri, "topic_namespace": namespace}
    common |= {"log_level": "WARNING"}
    clock, port = ArrivalClock(), free_port()
    smtp = Controller(clock, hostname="127.0.0.1", port=port)
    smtp.start()
    secrets = LocalStack().registration_secrets()  # this machine's local keys (generated once)
    keys = {name.removeprefix("REGISTRATION_").lower(): value for name, value in secrets.items()}
    reg_settings = RegistrationSettings(**common, **keys, mongodb_database=f"{namespace}_registration")
    notif_settings = NotificationsSettings(
        **common,
        mongodb_database=f"{namespace}_notifications",
        smtp_host="127.0.0.1",
        smtp_port=port,
        sender="bench@aimms.test",
        link_signing_key=uuid.uuid4().hex * 2,  # signs opt-out links, none of which is followed here
        public_url="http://notifications.bench",
    )
    portal = await seed_demo(reg_settings)
    registration, notifications = create_registration(reg_settings), create_notifications(notif_settings)
    sent_at: dict[str, float] = {}
    try:
        async with (
            registration.router.lifespan_context(registration),
            notifications.router.lifespan_context(notifications),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=registration), base_url="http://api") as client,
        ):
            form = {"grant_type": "client_credentials", "client_id": portal.client_id}
            form["client_secret"] = portal.client_secret
            token = (await client.post("/oauth/token", data=form)).raise_for_status().json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            await warm_up(client, clock, namespace)
            gate = asyncio.Semaphore(concurrency)

            async def express(i: int) -> None:
                email = f"person{i}.{namespace}@example.org"
                body = {"name": f"Dr Person {i}", "email": email, "programme_id": "aimms-mentoring"}
                async with gate:
                    sent_at[email] = time.perf_counter()
                    (await client.post("/interests", json=body)).raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(express(i) for i in range(count)))
            http_done = time.perf_counter()
            deadline = time.monotonic() + 600
            while sum(email in clock.arrived for email in sent_at) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            finished = time.perf_counter()
    finally:
        smtp.stop()
        await drop_databases(mongodb_uri, namespace)
    latencies = sorted((clock.arrived[e] - sent_at[e]) * 1000 for e in sent_at if e in clock.arrived)
    return {
        "people": count,
        "concurrency": concurrency,
        "emails_accepted": len(latencies),
        "http_per_second": round(count / (http_done - started), 1),
        "per_second_until_all_emails": round(len(latencies) / (finished - started), 1),
        "seconds": round(finished - started, 2),
        **percentiles(latencies),
    }


async def warm_up(client: httpx.AsyncClient, clock: ArrivalClock, namespace: str) -> None:
    """One person first, so topic creation and consumer group joins are not timed."""
    email = f"warm-up.{namespace}@example.org"
    body = {"name": "Dr Warm Up", "email": email, "programme_id": "aimms-mentoring"}
    (await client.post("/interests", json=body)).raise_for_status()
    deadline = time.monotonic() + 120
    while email not in clock.arrived:
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
    floor = await floor_run(kafka, mongodb_uri, count)
    print(f"floor: bare producer + consumer + one insert each side: {floor['per_second']}/s ({floor['seconds']} s)")
    ratio = floor["per_second"] / platform["per_second_until_all_emails"]
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"platform is {ratio:.1f}x below the floor  [target within {TARGET_RATIO:.0f}x: {verdict}]")
    return {"benchmark": "pipeline", "platform": platform, "floor": floor, "floor_ratio": round(ratio, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    figures = asyncio.run(run(args.count, args.concurrency))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
