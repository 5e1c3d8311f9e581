"""The fault suite: the four services run as separate processes on the real broker, store and SMTP sink,
and under a load of interests, registrations, a matching round and accepted proposals they are killed
with SIGKILL at moments of the load, Kafka and the store are restarted, and malformed messages are
injected. Then: every email owed went out exactly once (per Message-ID; a copy resent with the same
Message-ID after a kill between the SMTP server's reply and its recording is counted apart), every
registration reached matching's read model, every poison message is on its dead-letter topic with a
reason, and the consumers went on.

`make test` runs it at a reduced size; `make faults` (AIMMS_FAULTS=full) at full size: 2,000
interests and registrations and 500 pairs. The last line printed is JSON with the figures.
"""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel, SecretStr
from pydantic_settings import BaseSettings
from pymongo import AsyncMongoClient

from aimms_deploy.local_stack import LocalStack
from aimms_deploy.smtp_sink import read_messages
from aimms_matching.settings import MatchingSettings
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings
from aimms_shared.contracts.registration import INTERESTS
from aimms_shared.events import dead_letter, in_namespace
from aimms_surveys.settings import SurveysSettings
from tests.integration.conftest import (
    ADMIN_CLIENT_ID,
    ADMIN_SECRET,
    Infrastructure,
    _free_port,
    drop_databases,
    read_topic,
    service_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

FULL = os.environ.get("AIMMS_FAULTS") == "full"
SIZE = {
    "interests": 2000 if FULL else 60,
    "mentees": 1500 if FULL else 12,
    "mentors": 500 if FULL else 8,  # capacity 1 each: at most this many pairs
    "poison": 1000 if FULL else 20,
    "kafka_down_seconds": 30 if FULL else 6,
    "store_down_seconds": 10 if FULL else 4,
}
SETTINGS = {
    "registration": RegistrationSettings,
    "matching": MatchingSettings,
    "surveys": SurveysSettings,
    "notifications": NotificationsSettings,
}
# Endpoints the integration environment names: a LocalStack built without them owns its components.
INHERITED = ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "SMTP_HOST", "SMTP_PORT", "SMTP_SINK_DIR")


def env_of(settings: BaseSettings) -> dict[str, str]:
    """Settings as the environment variables a service process reads them from."""
    prefix = settings.model_config.get("env_prefix", "")
    env = {}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, BaseModel):
            value = value.model_dump_json()
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        env[f"{prefix}{name.upper()}"] = str(value)
    return env


class ServiceProcess:
    """One service run by uvicorn in a process of its own, which the test may kill outright."""

    def __init__(self, name: str, port: int, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self._env = {k: v for k, v in os.environ.items() if k not in INHERITED} | env
        self._log = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        command = [sys.executable, "-m", "uvicorn", "--factory", f"aimms_{self.name}.app:create_app"]
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [*command, "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not ready; its log: {self._log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        assert self._process is not None
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()


@dataclass
class Platform:
    namespace: str
    services: dict[str, ServiceProcess]
    admin: dict[str, str]
    portal: dict[str, str]
    infrastructure: Infrastructure
    figures: dict[str, Any] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.services[service].url


@pytest.fixture
async def platform(infrastructure: Infrastructure, tmp_path: Path) -> AsyncIterator[Platform]:
    namespace = f"f{uuid.uuid4().hex[:8]}"
    ports = {name: _free_port() for name in SETTINGS}
    jwks = f"http://127.0.0.1:{ports['registration']}/.well-known/jwks.json"
    settings = {
        name: service_settings(
            cls, infrastructure, namespace, **({} if name == "registration" else {"auth_jwks_url": jwks})
        )
        for name, cls in SETTINGS.items()
    }
    demo = await seed_demo(settings["registration"])
    services = {name: ServiceProcess(name, ports[name], env_of(s), tmp_path) for name, s in settings.items()}
    for service in services.values():
        service.start()
    try:
        for service in services.values():
            await service.ready()
        async with httpx.AsyncClient(timeout=30) as client:
            form = {"grant_type": "client_credentials"}
            admin = await client.post(
                f"{services['registration'].url}/oauth/token",
                data=form | {"client_id": ADMIN_CLIENT_ID, "client_secret": ADMIN_SECRET},
            )
            portal = await client.post(
                f"{services['registration'].url}/oauth/token",
                data=form | {"client_id": demo.client_id, "client_secret": demo.client_secret},
            )
        yield Platform(
            namespace,
            services,
            {"Authorization": f"Bearer {admin.json()['access_token']}"},
            {"Authorization": f"Bearer {portal.json()['access_token']}"},
            infrastructure,
        )
    finally:
        for service in services.values():
            service.stop()
        await drop_databases(infrastructure, namespace)


# Requests in flight at once: portals sending a load, not thousands of sockets (an httpx pool with
# thousands of waiting requests spends its time rescanning them, and the load would stall the test).
IN_FLIGHT = asyncio.Semaphore(32)


async def persistently(call: Callable[[], Awaitable[httpx.Response]], ok: tuple[int, ...]) -> httpx.Response:
    """A client that keeps trying through a crash or an outage (the same request, so idempotent)."""
    deadline: float | None = None  # from its first try: waiting for a turn to send is not the platform's time
    last = "no answer"
    while True:
        try:
            async with IN_FLIGHT:
                deadline = deadline or time.monotonic() + (600 if FULL else 180)
                response = await call()
            if response.status_code in ok:
                return response
            last = f"{response.status_code} {response.text[:300]}"
            if response.status_code < 500 and response.status_code not in (409, 429):
                raise AssertionError(f"refused: {last}")
        except httpx.HTTPError as error:
            last = repr(error)
        if deadline is not None and time.monotonic() > deadline:
            raise AssertionError(f"the platform did not recover in time; its last answer: {last}")
        await asyncio.sleep(0.3)


def person(namespace: str, n: int, role: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": f"Dr {role.title()} {n}",
        "email": f"{role}{n}.{namespace}@demo-university.ac.uk",
        "programme_id": "aimms-mentoring",
        "role": role,
        "job_title": "Professor" if role == "mentor" else "Lecturer",
        "seniority": "Professor" if role == "mentor" else "Lecturer",
        "pathway": "clinical",
        "research_interests": ["global health"],
        "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1", "evaluation": "1"},
        "confirmed_eligibility": ["woman", "ethnic-minority", "academic-medicine"],
    }
    if role == "mentor":
        body |= {"offers": "grant writing", "mentor_capacity": 1, "publish_profile": True}
    else:
        body |= {"seeks": "career advice"}
    return body


class Chaos:
    """Kills a service now and then and brings it back; restarts Kafka and the store once each."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.recoveries: list[float] = []
        self.stack = LocalStack(environ={k: v for k, v in os.environ.items() if k not in INHERITED})
        self.outages: list[str] = []

    async def kill(self, name: str) -> None:
        service = self.platform.services[name]
        service.kill()
        await asyncio.sleep(random.uniform(0.2, 1.5))
        started = time.monotonic()
        service.start()
        await service.ready()
        self.recoveries.append(time.monotonic() - started)

    async def restart(self, component: str, down_seconds: float) -> None:
        """Stop an infrastructure component of the local stack for a while (only where the stack owns it)."""
        [status] = self.stack.status([component])
        if status.state != "running":
            return
        await asyncio.to_thread(self.stack.stop, [component])
        await asyncio.sleep(down_seconds)
        await asyncio.to_thread(self.stack.start, [component])
        self.outages.append(f"{component} {down_seconds:.0f} s")


async def test_crashes_and_outages_lose_nothing_and_duplicate_nothing(platform: Platform) -> None:
    random.seed(7)
    chaos, ns = Chaos(platform), platform.namespace
    started = time.monotonic()
    registration = platform.url("registration")
    async with httpx.AsyncClient(timeout=30) as http:
        interests = [
            {
                "name": f"Dr Interest {n}",
                "email": f"interest{n}.{ns}@demo-university.ac.uk",
                "programme_id": "aimms-mentoring",
            }
            for n in range(SIZE["interests"])
        ]
        people = [person(ns, n, "mentee") for n in range(SIZE["mentees"])]
        people += [person(ns, n, "mentor") for n in range(SIZE["mentors"])]

        async def express(body: dict[str, Any]) -> None:
            await persistently(
                lambda: http.post(f"{registration}/interests", json=body, headers=platform.portal), (200, 201)
            )

        async def register(body: dict[str, Any]) -> str:
            key = {"Idempotency-Key": f"{ns}-{body['email']}"}  # a retry after a crash returns the first answer
            answer = await persistently(
                lambda: http.post(f"{registration}/participants", json=body, headers=platform.portal | key), (201,)
            )
            return answer.json()["participant_id"]

        # Load, with a kill of each service and an outage of Kafka and of the store along the way.
        load = asyncio.gather(*(express(b) for b in interests), *(register(b) for b in people))
        await asyncio.sleep(0.5)
        await chaos.kill("notifications")
        await chaos.kill("registration")
        await chaos.restart("kafka", SIZE["kafka_down_seconds"])
        await chaos.kill("matching")
        await chaos.restart("ferretdb", SIZE["store_down_seconds"])
        ids = (await load)[len(interests) :]
        await _poison(platform, SIZE["poison"])
        await chaos.kill("surveys")
        await chaos.kill("notifications")

        # Matching learns of everyone; a round proposes; both sides accept each pair (with a kill meanwhile).
        await _eventually(lambda: _members(platform, len(ids)), "matching's read model has every registration")
        round_report = await persistently(
            lambda: http.post(f"{platform.url('matching')}/programmes/aimms-mentoring/rounds", headers=platform.admin),
            (201,),
        )
        pairs = (
            await http.get(
                f"{platform.url('matching')}/pairs", params={"programme_id": "aimms-mentoring"}, headers=platform.admin
            )
        ).json()
        accepting = asyncio.gather(
            *(
                persistently(
                    lambda p=p, side=side: http.post(
                        f"{platform.url('matching')}/pairs/{p['pair_id']}/answers",
                        json={"side": side, "accept": True},
                        headers=platform.portal,
                    ),
                    (200, 409),
                )
                for p in pairs
                for side in ("mentee", "mentor")
            )
        )
        await chaos.kill("notifications")
        await accepting

    # Every email owed, exactly once.
    owed = Counter({(i["email"], "Welcome to AIMMS Mentoring"): 1 for i in interests})
    owed.update({(p["email"], "Your registration with AIMMS Mentoring is complete"): 1 for p in people})
    emails = {pid: p["email"] for pid, p in zip(ids, people, strict=True)}
    for pair in pairs:
        for side in ("mentee_id", "mentor_id"):
            owed[(emails[pair[side]], "We propose")] = 1
            owed[(emails[pair[side]], "as your mentoring begins")] = 1  # the baseline questionnaire

    def tally() -> tuple[Counter, Counter]:
        ours = read_messages(platform.infrastructure.maildir, to=ns)
        distinct, copies = Counter(), Counter()
        seen: set[tuple[str, str]] = set()
        for message in ours:
            to = str(message["To"]).split("<")[-1].rstrip(">")
            for address, subject in owed:
                if address == to and subject in str(message["Subject"]):
                    copies[(address, subject)] += 1
                    if (address, str(message["Message-ID"])) not in seen:
                        seen.add((address, str(message["Message-ID"])))
                        distinct[(address, subject)] += 1
        return distinct, copies

    async def all_sent() -> bool:
        distinct, _ = tally()
        return all(distinct[k] >= 1 for k in owed)

    await _eventually(all_sent, "every email owed went out", timeout=900 if FULL else 240)
    await asyncio.sleep(3)  # anything late and doubled would show now
    distinct, copies = tally()
    lost = [k for k in owed if distinct[k] == 0]
    duplicated = [k for k in owed if distinct[k] > 1]
    resent = sum(copies.values()) - sum(distinct.values())
    parked = await read_topic(
        platform.infrastructure, dead_letter(in_namespace(INTERESTS.name, ns)), expect=SIZE["poison"], timeout=30
    )
    reasons = [dict(r.headers).get("dlq_reason", b"").decode() for r in parked]

    figures = {
        "interests": SIZE["interests"],
        "registrations": len(people),
        "pairs": len(pairs),
        "round": {k: round_report.json()[k] for k in ("proposed", "unmatched")},
        "kills": {name: s.kills for name, s in platform.services.items()},
        "outages": chaos.outages,
        "recovery_seconds_max": round(max(chaos.recoveries), 2),
        "emails_owed": len(owed),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "resent_same_message_id": resent,
        "poison": SIZE["poison"],
        "parked_with_reason": sum(1 for r in reasons if r),
        "seconds": round(time.monotonic() - started, 1),
    }
    print(json.dumps(figures))
    assert lost == [], f"never sent: {lost[:10]}"
    assert duplicated == [], f"sent twice as different messages: {duplicated[:10]}"
    assert len(parked) == SIZE["poison"] and all(reasons), "every poison message is parked with its reason"


async def _poison(platform: Platform, count: int) -> None:
    """Malformed messages on registration's interests topic: each must be parked, none may stall it."""
    producer = AIOKafkaProducer(bootstrap_servers=platform.infrastructure.kafka)
    await producer.start()
    try:
        topic = in_namespace(INTERESTS.name, platform.namespace)
        for n in range(count):
            await producer.send_and_wait(topic, b"{not an event " + str(n).encode(), key=f"poison-{n}".encode())
    finally:
        await producer.stop()


async def _members(platform: Platform, expected: int) -> bool:
    client = AsyncMongoClient(platform.infrastructure.mongodb_uri)
    try:
        members = client[f"{platform.namespace}_matching"]["members"]
        return await members.count_documents({"programme_id": "aimms-mentoring"}) >= expected
    finally:
        await client.close()


async def _eventually(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await probe():
                return
        except Exception:  # an outage still ending: ask again
            pass
        await asyncio.sleep(0.5)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")
