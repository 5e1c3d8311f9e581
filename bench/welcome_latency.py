"""Benchmark: from an expression of interest (HTTP) to the welcome email accepted by SMTP.

Runs registration and notifications in this process against the real Kafka and store named by
KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI, else the local stack's (`aimms local start`), with an SMTP
server in-process that notes when each message arrives. Prints latency percentiles and throughput.

    .venv/bin/python bench/welcome_latency.py --count 200 --concurrency 20
"""

import argparse
import asyncio
import os
import socket
import statistics
import time
import uuid

import httpx
from aiosmtpd.controller import Controller
from pymongo import AsyncMongoClient

from aimms_deploy.local_stack import LocalStack
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.app import create_app as create_registration
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings


class ArrivalClock:
    """SMTP handler that records when each recipient's message was accepted."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001, N802 - aiosmtpd's hook
        for recipient in envelope.rcpt_tos:
            self.arrived[recipient] = time.perf_counter()
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(count: int, concurrency: int) -> None:
    local = LocalStack().endpoints()  # the local stack's, unless the environment names others
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", local["KAFKA_BOOTSTRAP_SERVERS"])
    mongodb_uri = os.environ.get("MONGODB_URI", local["MONGODB_URI"])
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    common = {
        "kafka_bootstrap_servers": kafka,
        "mongodb_uri": mongodb_uri,
        "topic_namespace": namespace,
        "log_level": "WARNING",
    }
    clock, port = ArrivalClock(), free_port()
    smtp = Controller(clock, hostname="127.0.0.1", port=port)
    smtp.start()
    reg_settings = RegistrationSettings(**common, mongodb_database=f"{namespace}_registration")
    notif_settings = NotificationsSettings(
        **common,
        mongodb_database=f"{namespace}_notifications",
        smtp_host="127.0.0.1",
        smtp_port=port,
        sender="bench@aimms.test",
    )
    await seed_demo(reg_settings)

    registration, notifications = create_registration(reg_settings), create_notifications(notif_settings)
    sent_at: dict[str, float] = {}
    async with registration.router.lifespan_context(registration), notifications.router.lifespan_context(notifications):
        transport = httpx.ASGITransport(app=registration)
        async with httpx.AsyncClient(transport=transport, base_url="http://registration") as client:
            gate = asyncio.Semaphore(concurrency)

            async def express(i: int) -> None:
                email = f"person{i}.{namespace}@example.org"
                async with gate:
                    sent_at[email] = time.perf_counter()
                    response = await client.post(
                        "/interests",
                        json={
                            "name": f"Person {i}",
                            "email": email,
                            "institution_id": "demo-university",
                            "programme_id": "aimms-mentoring",
                        },
                    )
                    response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(express(i) for i in range(count)))
            accepted = time.perf_counter()
            deadline = time.monotonic() + 120
            while len(clock.arrived) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            finished = time.perf_counter()

    smtp.stop()
    mongo: AsyncMongoClient = AsyncMongoClient(mongodb_uri)
    for database in (reg_settings.mongodb_database, notif_settings.mongodb_database):
        await mongo.drop_database(database)
    await mongo.close()

    latencies = sorted((clock.arrived[e] - sent_at[e]) * 1000 for e in clock.arrived)
    print(f"interests: {count} (concurrency {concurrency}); welcome emails accepted by SMTP: {len(latencies)}")
    print(f"HTTP accepted all in {accepted - started:.2f} s ({count / (accepted - started):.0f}/s)")
    print(f"all emails delivered in {finished - started:.2f} s ({len(latencies) / (finished - started):.0f}/s)")
    if latencies:
        q = statistics.quantiles(latencies, n=100)
        print(f"latency HTTP request -> SMTP accepted, ms: p50 {q[49]:.0f}  p95 {q[94]:.0f}  max {latencies[-1]:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(run(args.count, args.concurrency))


if __name__ == "__main__":
    main()
