"""Benchmark: notifications and matching scaled out to 1, 2 and 4 replicas under a sustained load of expressions
of interest and registrations, and a rebalance (a replica of each killed and started again mid-run).

Each replica count runs in a deployment of its own (namespace, databases, topics made with `--partitions`
partitions, as a deployment's topic job makes them: a consumer group shares a topic's partitions among its
replicas, so a topic of three partitions keeps a fourth replica idle). Registration runs once, as the source of
the load; notifications and matching `N` times each, every replica its own uvicorn process, against the Kafka and
store named by KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI, else the local stack's. The load is open, on loopback
only: `--interest-rate` expressions of interest and `--registration-rate` registrations a second for `--seconds`,
each at her time whether or not the platform kept up, bounded by the count it comes to.

Printed per replica count:
- throughput: emails accepted by SMTP (welcomes and registration confirmations) a second while the load ran,
  and until the last one; how long matching's read model took to hold every registration;
- consumer lag over time: the records notifications' and matching's consumer groups have still to commit,
  sampled every `--sample-seconds`;
- latency from each person's time to her email accepted: p50/p95/p99, interests and registrations apart;
- the CPU each part used (percent of one core; the machine has `os.cpu_count()`), and the whole machine's.

Then the rebalance run (`--rebalance-replicas`, 0 for none): the same load, one notifications and one matching
replica killed with SIGKILL a third of the way in and started again; every email owed must arrive exactly once
(distinct Message-IDs; a copy resent with the same Message-ID after a kill between SMTP's reply and its record is
counted apart) and every registration must reach matching's read model.

    .venv/bin/python bench/scale.py --replicas 1,2,4 --interest-rate 60 --registration-rate 5 --seconds 30

The store is named in the output (FerretDB or MongoDB, from its buildInfo). The last line is one JSON object with
every figure, for tooling.
"""

import argparse
import asyncio
import json
import os
import time
from typing import Any

from _platform import (
    REGISTERED,
    STALL_SECONDS,
    WELCOME,
    ConsumerLag,
    CpuMeter,
    Endpoints,
    Platform,
    cpu_labels,
    interest,
    paced,
    percentiles,
    registrant,
    running,
    store_commands,
    store_identity,
    store_write_capacity,
)
from pymongo import AsyncMongoClient

from aimms_shared.contracts.registration import CONTACTS, INTERESTS, PARTICIPANTS

DRAIN_SECONDS = 300  # after the load, how long everything owed may take to arrive before it counts as lost
LATE_COPIES_SECONDS = 3  # then, how long to wait for a late second copy
WRITES = ("insert", "update", "findAndModify", "delete")
NOISY_PERCENT = 25  # other work taking more of the machine than this (of one core) makes runs hard to compare


async def members(platform: Platform) -> set[str]:
    """The participants matching's read model holds."""
    mongo: AsyncMongoClient = AsyncMongoClient(platform.deployment.endpoints.mongodb_uri)
    try:
        collection = mongo[f"{platform.deployment.namespace}_matching"]["members"]
        return {doc["_id"] async for doc in collection.find({}, {"_id": 1})}
    finally:
        await mongo.close()


async def warm_up(platform: Platform) -> None:
    """One interest and one registration first, so consumer group joins and first connections are not timed."""
    namespace = platform.deployment.namespace
    async with platform.client.post("/interests", json=interest(namespace, -1)) as response:
        await response.read()
    async with platform.client.post("/participants", json=registrant(namespace, -1)) as response:
        participant = (await response.json())["participant_id"]
    emails = [interest(namespace, -1)["email"], registrant(namespace, -1)["email"]]
    deadline = time.monotonic() + 120
    while not (platform.arrivals.count(emails) == 2 and participant in await members(platform)):
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up never went through: are Kafka and the store up?")
        await asyncio.sleep(0.2)


def lag_groups(platform: Platform) -> dict[str, tuple[str, str]]:
    deployment = platform.deployment
    return {
        f"{service}:{topic.name}": (deployment.group(service, topic), deployment.topic(topic))
        for service, topics in (("notifications", (INTERESTS, CONTACTS, PARTICIPANTS)), ("matching", (PARTICIPANTS,)))
        for topic in topics
    }


async def one_run(
    endpoints: Endpoints, replicas: int, args: argparse.Namespace, *, rebalance: bool = False
) -> dict[str, Any]:
    """The load on `replicas` of notifications and matching; with `rebalance`, one of each killed and restarted."""
    deployment_replicas = {"registration": 1, "notifications": replicas, "matching": replicas}
    async with running(endpoints, deployment_replicas, partitions=args.partitions) as platform:
        await warm_up(platform)
        namespace = platform.deployment.namespace
        interest_at: dict[str, float] = {}
        registration_at: dict[str, float] = {}
        participants: set[str] = set()
        timeline: list[dict[str, Any]] = []
        events: list[str] = []
        commands_before = await store_commands(endpoints.mongodb_uri)
        cpu = CpuMeter()
        cpu.start(pid for pids in cpu_labels(platform).values() for pid in pids)

        async def express(i: int, scheduled: float) -> None:
            body = interest(namespace, i)
            interest_at[body["email"]] = scheduled
            async with platform.client.post("/interests", json=body) as response:
                await response.read()

        async def register(i: int, scheduled: float) -> None:
            body = registrant(namespace, i)
            registration_at[body["email"]] = scheduled
            async with platform.client.post("/participants", json=body) as response:
                participants.add((await response.json())["participant_id"])

        started = time.time()
        done = asyncio.Event()
        matched_at: list[float] = []

        async def sample(lag: ConsumerLag) -> None:
            while not done.is_set():
                point: dict[str, Any] = {"t": round(time.time() - started, 1)}
                try:
                    lags = await lag.sample()
                except Exception as exc:  # noqa: BLE001 - a sample missed (e.g. during a rebalance) is a gap
                    point["error"] = type(exc).__name__
                else:
                    point["notifications"] = sum(v for k, v in lags.items() if k.startswith("notifications:"))
                    point["matching"] = sum(v for k, v in lags.items() if k.startswith("matching:"))
                point["emails"] = platform.arrivals.count(interest_at) + platform.arrivals.count(registration_at)
                timeline.append(point)
                await asyncio.sleep(args.sample_seconds)

        async def chaos() -> None:
            await asyncio.sleep(args.seconds / 3)
            victims = [platform.services["notifications"][0], platform.services["matching"][0]]
            for victim in victims:
                await victim.kill()
            events.append(f"{time.time() - started:.1f} s: killed notifications-0 and matching-0 (SIGKILL)")
            await asyncio.sleep(2)
            for victim in victims:
                await victim.start()
            await asyncio.gather(*(victim.ready() for victim in victims))
            events.append(f"{time.time() - started:.1f} s: both ready again")

        async with ConsumerLag(endpoints.kafka, lag_groups(platform)) as lag:
            sampling = asyncio.create_task(sample(lag))
            chaos_task = asyncio.create_task(chaos()) if rebalance else None
            await asyncio.gather(
                paced(args.interest_rate, args.seconds, express),
                paced(args.registration_rate, args.seconds, register),
            )
            load_ended = time.time()
            if chaos_task is not None:
                await chaos_task
            cpu_during_load = cpu.percent(cpu_labels(platform))  # a replica killed meanwhile is left out
            machine_during_load = cpu.machine_percent()
            owed = list(interest_at) + list(registration_at)
            deadline = time.monotonic() + DRAIN_SECONDS
            held: set[str] = set()
            progress, progressed = (-1, -1), time.monotonic()
            while time.monotonic() < min(deadline, progressed + STALL_SECONDS):
                if not matched_at:
                    held = await members(platform)
                    if participants <= held:
                        matched_at.append(time.time())
                now = (platform.arrivals.count(owed), len(held))
                if now != progress:
                    progress, progressed = now, time.monotonic()
                if matched_at and now[0] == len(owed):
                    break
                await asyncio.sleep(0.5)
            commands = command_delta(commands_before, await store_commands(endpoints.mongodb_uri))
            await asyncio.sleep(LATE_COPIES_SECONDS)
            done.set()
            await sampling
            held = await members(platform)

        arrivals = platform.arrivals
        at = arrivals.at
        in_load = sum(1 for e in owed if e in at and at[e] <= load_ended)
        finished = max([at[e] for e in owed if e in at], default=time.time())
        owed_subjects = [(e, WELCOME) for e in interest_at] + [(e, REGISTERED) for e in registration_at]
        lost = [e for e, subject in owed_subjects if arrivals.distinct(e, subject) == 0]
        duplicated = [e for e, subject in owed_subjects if arrivals.distinct(e, subject) > 1]
        resent = sum(arrivals.copies[e] - len(arrivals.messages.get(e, {})) for e in owed)
        kills = {name: sum(s.kills for s in group) for name, group in platform.services.items()}
        peak = {k: max((p.get(k, 0) for p in timeline), default=0) for k in ("notifications", "matching")}
    return {
        "replicas": replicas,
        "rebalance": rebalance,
        "offered_per_second": args.interest_rate + args.registration_rate,
        "interests": len(interest_at),
        "registrations": len(registration_at),
        "emails_per_second_during_load": round(in_load / (load_ended - started), 1),
        "emails_per_second_until_last": round((len(owed) - len(lost)) / (finished - started), 1),
        "last_email_after_load_seconds": round(finished - load_ended, 2),
        "matching_all_held_after_load_seconds": round(matched_at[0] - load_ended, 2) if matched_at else None,
        "registrations_per_second_into_matching": (
            round(len(participants) / (matched_at[0] - started), 1) if matched_at else None
        ),
        "interest_to_welcome": percentiles((at[e] - t) * 1000 for e, t in interest_at.items() if e in at),
        "registration_to_email": percentiles((at[e] - t) * 1000 for e, t in registration_at.items() if e in at),
        "peak_lag": peak,
        "lag_timeline": timeline,
        "store_commands_per_email": {k: round(v / max(len(owed), 1), 2) for k, v in commands.items()},
        "cpu_percent_during_load": cpu_during_load,
        "machine_cpu_percent_during_load": machine_during_load,
        # what other work than this bench's processes took of the machine meanwhile (it is shared)
        "others_cpu_percent_during_load": round(machine_during_load - sum(cpu_during_load.values()), 1),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "resent_same_message_id": resent,
        "missing_from_matching": len(participants - held),
        "kills": kills,
        "events": events,
    }


def report(run: dict[str, Any], cores: int) -> None:
    title = f"{run['replicas']} replica(s) of notifications and matching" + (
        ", one of each killed and restarted mid-run" if run["rebalance"] else ""
    )
    welcome, registered = run["interest_to_welcome"], run["registration_to_email"]
    print(title)
    print(
        f"  load: {run['interests']} interests + {run['registrations']} registrations "
        f"({run['offered_per_second']:g}/s offered)"
    )
    print(
        f"  throughput: {run['emails_per_second_during_load']} emails/s during the load, "
        f"{run['emails_per_second_until_last']}/s until the last ({run['last_email_after_load_seconds']} s after "
        f"the load); matching held every registration {run['matching_all_held_after_load_seconds']} s after the load "
        f"({run['registrations_per_second_into_matching']}/s)"
    )
    print(
        f"  interest -> welcome: p50 {welcome['p50_ms']} ms, p95 {welcome['p95_ms']} ms, p99 {welcome['p99_ms']} ms; "
        f"registration -> email: p50 {registered['p50_ms']} ms, p95 {registered['p95_ms']} ms, "
        f"p99 {registered['p99_ms']} ms"
    )
    step = max(1, len(run["lag_timeline"]) // 12)
    points = [p for p in run["lag_timeline"][::step] if "notifications" in p]
    print(
        "  lag (records) notifications/matching at t s: "
        + ", ".join(f"{p['t']:g}: {p['notifications']}/{p['matching']}" for p in points)
    )
    print(
        f"  peak lag: notifications {run['peak_lag']['notifications']}, matching {run['peak_lag']['matching']}; "
        f"CPU % of one core during the load: "
        + ", ".join(f"{k} {v}" for k, v in run["cpu_percent_during_load"].items())
        + f"; whole machine {run['machine_cpu_percent_during_load']} of {cores * 100}, of which other work "
        f"{run['others_cpu_percent_during_load']}"
    )
    commands = run["store_commands_per_email"]
    if commands:
        print(
            "  store commands per email (both services' and the relays' together): "
            + ", ".join(f"{k} {v}" for k, v in commands.items() if v)
        )
    for event in run["events"]:
        print(f"  {event}")
    print(
        f"  lost {run['lost']}, duplicated {run['duplicated']} (resent with the same Message-ID: "
        f"{run['resent_same_message_id']}), missing from matching {run['missing_from_matching']}"
    )


def command_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before.get(name, 0) for name in after}


def limit(runs: list[dict[str, Any]], cores: int, capacity: dict[str, float]) -> str:
    """Where throughput stops growing with replicas, read from the figures."""
    best = max(runs, key=lambda r: r["emails_per_second_during_load"])
    first = runs[0]
    gain = best["emails_per_second_during_load"] / max(first["emails_per_second_during_load"], 0.1)
    offered = first["offered_per_second"]
    kept_up = [r["replicas"] for r in runs if r["emails_per_second_during_load"] >= 0.95 * offered]
    cpu = best["cpu_percent_during_load"]
    busiest = max(cpu, key=lambda k: cpu[k])
    writes = sum(v for k, v in best["store_commands_per_email"].items() if k in WRITES)
    saturated = [r for r in runs if r["machine_cpu_percent_during_load"] >= 0.9 * cores * 100]
    if gain >= 1.1:
        verdict = "replicas added throughput"
    elif saturated:
        verdict = (
            "replicas added none: the machine's cores were the limit before any consumer was (the store the "
            "busiest part); more replicas only add their own polling"
        )
    else:
        verdict = "replicas added none: one replica of each already kept up with the load offered"
    others = [r["others_cpu_percent_during_load"] for r in runs]
    if max(others) > NOISY_PERCENT:
        verdict += (
            f" (but other work took {min(others):.0f}-{max(others):.0f}% of one core during the runs: a difference "
            "between replica counts may be theirs)"
        )
    return (
        f"{verdict}; "
        f"throughput {first['emails_per_second_during_load']}/s with {first['replicas']} replica(s), "
        f"{best['emails_per_second_during_load']}/s at best ({best['replicas']} replicas, x{gain:.2f}); "
        f"kept up with the {offered:g}/s offered at {kept_up or 'no'} replica count(s); "
        f"at the best, the machine was {best['machine_cpu_percent_during_load']}% busy of {cores * 100}% "
        f"and the busiest part was {busiest} at {cpu[busiest]}% of one core; "
        f"{writes:.1f} store write commands per email, against {capacity.get('updates_per_second', '?')} "
        f"single-document updates a second the store takes into one database"
    )


async def run(args: argparse.Namespace) -> dict[str, Any]:
    endpoints = Endpoints.from_environment()
    store = await store_identity(endpoints.mongodb_uri)
    cores = os.cpu_count() or 1
    print(f"store: {store['label']} at {endpoints.mongodb_uri}; Kafka at {endpoints.kafka}; {cores} cores")
    capacity = await store_write_capacity(endpoints.mongodb_uri)
    print(
        f"store write capacity, one database, 16 writers: {capacity['inserts_per_second']} inserts/s, "
        f"{capacity['updates_per_second']} updates by _id/s"
    )
    runs = []
    for replicas in args.replicas:
        runs.append(await one_run(endpoints, replicas, args))
        report(runs[-1], cores)
    figures: dict[str, Any] = {"benchmark": "scale", "store": store, "store_write_capacity": capacity}
    figures |= {"cores": cores, "partitions": args.partitions}
    figures["runs"] = runs
    if runs:
        figures["limit"] = limit(runs, cores, capacity)
        print(f"limit: {figures['limit']}")
    if args.rebalance_replicas:
        rebalanced = await one_run(endpoints, args.rebalance_replicas, args, rebalance=True)
        report(rebalanced, cores)
        clean = rebalanced["lost"] == 0 and rebalanced["duplicated"] == 0 and rebalanced["missing_from_matching"] == 0
        print(f"rebalance: {'nothing lost, nothing duplicated' if clean else 'LOST OR DUPLICATED'}")
        figures["rebalance"] = rebalanced | {"clean": clean}
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=lambda v: [int(n) for n in v.split(",") if n], default=[1, 2, 4])
    parser.add_argument("--interest-rate", type=float, default=60, help="expressions of interest a second")
    parser.add_argument("--registration-rate", type=float, default=5, help="registrations a second")
    parser.add_argument("--seconds", type=float, default=30, help="how long the load runs")
    parser.add_argument("--partitions", type=int, default=4, help="partitions of every topic")
    parser.add_argument("--sample-seconds", type=float, default=1.0, help="how often consumer lag is sampled")
    parser.add_argument("--rebalance-replicas", type=int, default=2, help="replicas in the rebalance run (0: none)")
    args = parser.parse_args()
    figures = asyncio.run(run(args))
    print(json.dumps(figures, separators=(",", ":")))


if __name__ == "__main__":
    main()
