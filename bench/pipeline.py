"""Benchmark: the event pipeline, from an expression of interest (HTTP) to its welcome email accepted by SMTP,
against the floor this machine's Kafka and store allow.

Platform: registration and notifications run as the platform runs them, each its own uvicorn process, against
the Kafka and store named by KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI, else the local stack's (`aimms local
start`); an SMTP server in a third process notes when each message arrives. Two runs, each in a deployment of
its own (namespace, topics, databases):

- burst: `--count` people express interest through the HTTP API, `--concurrency` at a time; the rate is people
  per second from the first request until every email is accepted. Target: within TARGET_RATIO of the floor.
- sustained: `--rate` people a second for `--seconds`, each at her time whether or not the platform kept up (an
  open load); the latency of each is from her time to her welcome accepted. Target: p99 under TARGET_P99_MS.

Floor, in the same run and volume as the burst: one bare aiokafka producer (idempotent, acks=all, as the relay)
sends one record per person and inserts one document; one bare consumer reads each record and inserts one
document. That is the least any design moving an event from one service's store to another's could do here. It
takes about a second, so a checkpoint or a collection of garbage moves it by half: it runs FLOOR_RUNS times and
the median counts (all are printed).

    .venv/bin/python bench/pipeline.py --count 1000 --concurrency 20 --rate 100 --seconds 60

The store is named in the output (FerretDB or MongoDB, from its buildInfo). The last line is one JSON object with
every figure, for tooling.
"""

import argparse
import asyncio
import json
import os
import time
import uuid
from typing import Any

from _platform import (
    CpuMeter,
    Endpoints,
    Platform,
    cpu_labels,
    interest,
    paced,
    per_item,
    percentiles,
    running,
    store_commands,
    store_identity,
)
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from pymongo import AsyncMongoClient

TARGET_RATIO = 1.5
TARGET_P99_MS = 1000.0
FLOOR_RUNS = 3
WINDOW_SECONDS = 5  # the sustained run's p99 is also given for each such stretch of it
SERVICES = {"registration": 1, "notifications": 1}


async def express(platform: Platform, n: int) -> str:
    """One person expresses interest; her address, which her welcome is sent to."""
    body = interest(platform.deployment.namespace, n)
    async with platform.client.post("/interests", json=body) as response:
        await response.read()
    return body["email"]


async def warm_up(platform: Platform) -> None:
    """One person first, so topic creation and consumer group joins are not timed."""
    email = await express(platform, -1)
    if not await platform.arrivals.wait_for([email], 120):
        raise TimeoutError("the warm-up email never arrived: are Kafka and the store up?")


async def burst_run(endpoints: Endpoints, count: int, concurrency: int) -> dict[str, Any]:
    """People per second through the public API until every welcome email is accepted, and their latencies."""
    async with running(endpoints, SERVICES, concurrency=concurrency) as platform:
        await warm_up(platform)
        gate = asyncio.Semaphore(concurrency)
        sent_at: dict[str, float] = {}

        async def one(i: int) -> None:
            async with gate:
                started = time.time()
                sent_at[await express(platform, i)] = started

        labels = cpu_labels(platform)
        cpu = CpuMeter()
        cpu.start(pid for pids in labels.values() for pid in pids)
        started = time.time()
        await asyncio.gather(*(one(i) for i in range(count)))
        http_done = time.time()
        await platform.arrivals.wait_for(sent_at, 600)
        at = platform.arrivals.at
        finished = max([at[e] for e in sent_at if e in at], default=time.time())
        busy = cpu.percent(labels) | {"machine": cpu.machine_percent()}
    latencies = [(at[e] - sent_at[e]) * 1000 for e in sent_at if e in at]
    return {
        "people": count,
        "concurrency": concurrency,
        "emails_accepted": len(latencies),
        "http_per_second": round(count / (http_done - started), 1),
        "per_second_until_all_emails": round(len(latencies) / (finished - started), 1),
        "seconds": round(finished - started, 2),
        **percentiles(latencies),
        "cpu_percent": busy,
        "cpu_ms_per_person": per_item(busy, time.time() - started, len(latencies)),
    }


async def sustained_run(endpoints: Endpoints, rate: float, seconds: float) -> dict[str, Any]:
    """`rate` people a second for `seconds`: each one's latency from her time to her welcome accepted."""
    async with running(endpoints, SERVICES) as platform:
        await warm_up(platform)
        scheduled_at: dict[str, float] = {}

        async def one(i: int, scheduled: float) -> None:
            scheduled_at[interest(platform.deployment.namespace, i)["email"]] = scheduled
            await express(platform, i)

        commands_before = await store_commands(endpoints.mongodb_uri)
        labelled = cpu_labels(platform)
        cpu = CpuMeter()
        cpu.start(pid for pids in labelled.values() for pid in pids)
        by_window: list[dict[str, float]] = []  # the CPU of each window: the store's, and the machine's

        async def sample() -> None:
            while True:
                window = CpuMeter()
                window.start(pid for pids in labelled.values() for pid in pids)
                await asyncio.sleep(WINDOW_SECONDS)
                ours = window.percent(labelled)
                machine = window.machine_percent()
                by_window.append({"store": ours["store"], "others": round(machine - sum(ours.values()), 1)})

        sampling = asyncio.create_task(sample())
        started = time.time()
        http_done = await paced(rate, seconds, one)
        await platform.arrivals.wait_for(scheduled_at, 600)
        sampling.cancel()
        at = platform.arrivals.at
        finished = max([at[e] for e in scheduled_at if e in at], default=time.time())
        busy = cpu.percent(labelled) | {"machine": cpu.machine_percent()}
        commands_after = await store_commands(endpoints.mongodb_uri)
    latencies = [(at[e] - scheduled_at[e]) * 1000 for e in scheduled_at if e in at]
    people = max(len(latencies), 1)
    commands = {k: round((v - commands_before.get(k, 0)) / people, 2) for k, v in commands_after.items()}
    windows: dict[int, list[float]] = {}  # by when she expressed interest: WINDOW_SECONDS at a time
    for email, scheduled in scheduled_at.items():
        if email in at:
            windows.setdefault(int((scheduled - started) // WINDOW_SECONDS), []).append((at[email] - scheduled) * 1000)
    per_person = per_item(busy, finished - started, len(latencies))  # over the run, until the last welcome
    return {
        "rate": rate,
        "seconds": seconds,
        "people": len(scheduled_at),
        "emails_accepted": len(latencies),
        "http_seconds": round(http_done - started, 2),
        "per_second_until_all_emails": round(len(latencies) / (finished - started), 1),
        "drained_seconds_after_load": round(finished - started - seconds, 2),
        **percentiles(latencies),
        "p99_ms_by_window": [percentiles(windows[w])["p99_ms"] for w in sorted(windows)],
        "store_cpu_percent_by_window": [w["store"] for w in by_window],
        # what the rest of the machine (other work than this bench's processes) took meanwhile
        "others_cpu_percent_by_window": [w["others"] for w in by_window],
        "cpu_percent": busy,
        "cpu_ms_per_person": per_person,
        "store_commands_per_person": {k: v for k, v in commands.items() if v},
    }


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

        labels = cpu_labels()
        cpu = CpuMeter()
        cpu.start(pid for pids in labels.values() for pid in pids)
        started = time.perf_counter()
        await asyncio.gather(produce(), consume())
        elapsed = time.perf_counter() - started
        busy = cpu.percent(labels) | {"machine": cpu.machine_percent()}
    finally:
        await producer.stop()
        await consumer.stop()
        await mongo.drop_database(f"{namespace}_a")
        await mongo.drop_database(f"{namespace}_b")
        await mongo.close()
    return {
        "records": count,
        "per_second": round(count / elapsed, 1),
        "seconds": round(elapsed, 2),
        "cpu_ms_per_record": per_item(busy, elapsed, count),
    }


async def run(count: int, concurrency: int, rate: float, seconds: float) -> dict[str, Any]:
    endpoints = Endpoints.from_environment()
    store = await store_identity(endpoints.mongodb_uri)
    print(f"store: {store['label']} at {endpoints.mongodb_uri}; Kafka at {endpoints.kafka}")
    figures: dict[str, Any] = {"benchmark": "pipeline", "store": store}
    if count:
        platform = await burst_run(endpoints, count, concurrency)
        print(
            f"burst: {platform['people']} expressions of interest, {platform['concurrency']} at a time; "
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
        print(f"  CPU ms per person: {_listed(platform['cpu_ms_per_person'])}")
        floors = [await floor_run(endpoints.kafka, endpoints.mongodb_uri, count) for _ in range(FLOOR_RUNS)]
        median = sorted(floors, key=lambda f: f["per_second"])[len(floors) // 2]
        floor = median | {"runs": [f["per_second"] for f in floors]}
        print(
            f"floor: bare producer + consumer + one insert each side: {floor['per_second']}/s "
            f"({floor['seconds']} s), the median of {', '.join(f'{rate}/s' for rate in floor['runs'])}"
        )
        print(f"  CPU ms per record: {_listed(floor['cpu_ms_per_record'])}")
        ratio = floor["per_second"] / platform["per_second_until_all_emails"]
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        print(f"platform is {ratio:.2f}x below the floor  [target within {TARGET_RATIO}x: {verdict}]")
        figures |= {"platform": platform, "floor": floor, "floor_ratio": round(ratio, 2)}
        figures["floor_ratio_met"] = ratio <= TARGET_RATIO
    if rate and seconds:
        sustained = await sustained_run(endpoints, rate, seconds)
        print(
            f"sustained: {sustained['rate']:g} expressions of interest a second for {sustained['seconds']:g} s "
            f"({sustained['people']}); {sustained['emails_accepted']} welcome emails accepted, the last "
            f"{sustained['drained_seconds_after_load']} s after the load ended"
        )
        met = sustained["p99_ms"] is not None and sustained["p99_ms"] < TARGET_P99_MS
        print(
            f"  latency her time -> SMTP accepted: p50 {sustained['p50_ms']} ms, p95 {sustained['p95_ms']} ms, "
            f"p99 {sustained['p99_ms']} ms  [target p99 under {TARGET_P99_MS:.0f} ms: {'met' if met else 'MISSED'}]"
        )
        print(
            f"  p99 of each {WINDOW_SECONDS} s, in ms: "
            + ", ".join(f"{p:.0f}" for p in sustained["p99_ms_by_window"] if p)
        )
        store_cpu = ", ".join(map(str, sustained["store_cpu_percent_by_window"]))
        print(f"  store CPU % of each {WINDOW_SECONDS} s: {store_cpu}")
        print(
            f"  other work on the machine, CPU % of each {WINDOW_SECONDS} s: "
            + ", ".join(map(str, sustained["others_cpu_percent_by_window"]))
        )
        print(
            f"  CPU % of one core: {_listed(sustained['cpu_percent'])} (of {100 * (os.cpu_count() or 1)}); "
            f"CPU ms per person: {_listed(sustained['cpu_ms_per_person'])}"
        )
        print(f"  store commands per person: {_listed(sustained['store_commands_per_person'])}")
        figures |= {"sustained": sustained, "sustained_p99_met": met}
    return figures


def _listed(figures: dict[str, float]) -> str:
    return ", ".join(f"{name} {value}" for name, value in figures.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="people in the burst run (0: none)")
    parser.add_argument("--concurrency", type=int, default=20, help="requests in flight in the burst run")
    parser.add_argument("--rate", type=float, default=100, help="people a second in the sustained run (0: none)")
    parser.add_argument("--seconds", type=float, default=60, help="length of the sustained run")
    args = parser.parse_args()
    figures = asyncio.run(run(args.count, args.concurrency, args.rate, args.seconds))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
