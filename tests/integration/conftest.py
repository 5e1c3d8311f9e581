"""Real infrastructure for integration tests, and the services running in-process against it.

Endpoints come from the environment first (KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI, and SMTP_HOST /
SMTP_PORT / SMTP_SINK_DIR for an SMTP sink that stores messages as files), then from
testcontainers where a Docker engine answers. Otherwise the tests fail and say how to get either.
Each test runs in its own topic namespace and databases, so tests never see each other's events.
"""

import asyncio
import contextlib
import inspect
import os
import secrets
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import FastAPI
from pymongo import AsyncMongoClient

from aimms_deploy.smtp_sink import read_messages
from aimms_matching.app import create_app as create_matching
from aimms_matching.settings import MatchingSettings
from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.app import create_app as create_registration
from aimms_registration.demo import seed as seed_demo
from aimms_registration.settings import RegistrationSettings
from aimms_registration.tokens import new_signing_key_pem
from aimms_shared.auth import TokenVerifier
from aimms_shared.crypto import new_key_spec
from aimms_shared.settings import ServiceSettings
from aimms_surveys.settings import SurveysSettings

HOW_TO_GET_INFRASTRUCTURE = """
Integration tests need a Kafka broker and a MongoDB-wire store, and found neither in the
environment nor a Docker engine for testcontainers. Either:
  * run `make test`, which installs and starts the local stack (Kafka, FerretDB, SMTP sink)
    and exports its endpoints; or start it yourself with `.venv/bin/aimms local start`
    and `eval "$(.venv/bin/aimms local env)"`; or
  * set KAFKA_BOOTSTRAP_SERVERS and MONGODB_URI to servers you run; or
  * run a Docker engine, and testcontainers will start Kafka and MongoDB containers.
"""

T = TypeVar("T")
S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class Infrastructure:
    """Where the real Kafka, store and SMTP sink answer."""

    kafka: str
    mongodb_uri: str
    smtp_host: str
    smtp_port: int
    maildir: Path


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:  # noqa: BLE001 - no engine, no client config, no permission: all mean "no"
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def infrastructure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infrastructure]:
    """Resolve (or start) Kafka, the store and an SMTP sink for the whole session."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    mongodb_uri = os.environ.get("MONGODB_URI")
    with contextlib.ExitStack() as cleanup:
        if not (kafka and mongodb_uri):
            if not _docker_answers():
                pytest.fail(HOW_TO_GET_INFRASTRUCTURE, pytrace=False)
            from testcontainers.community.kafka import KafkaContainer
            from testcontainers.community.mongodb import MongoDbContainer

            if not kafka:
                kafka = cleanup.enter_context(KafkaContainer().with_kraft()).get_bootstrap_server()
            if not mongodb_uri:
                mongodb_uri = cleanup.enter_context(MongoDbContainer("mongo:7.0")).get_connection_url()

        if os.environ.get("SMTP_HOST") and os.environ.get("SMTP_SINK_DIR"):
            smtp_host, smtp_port = os.environ["SMTP_HOST"], int(os.environ.get("SMTP_PORT", "25"))
            maildir = Path(os.environ["SMTP_SINK_DIR"])
        else:  # the project's own sink, in this process
            from aiosmtpd.controller import Controller

            from aimms_deploy.smtp_sink import MaildirHandler

            smtp_host, smtp_port = "127.0.0.1", _free_port()
            maildir = tmp_path_factory.mktemp("mail")
            controller = Controller(MaildirHandler(maildir), hostname=smtp_host, port=smtp_port)
            controller.start()
            cleanup.callback(controller.stop)
        yield Infrastructure(kafka, mongodb_uri, smtp_host, smtp_port, maildir)


@pytest.fixture
async def namespace(infrastructure: Infrastructure) -> AsyncIterator[str]:
    """A topic namespace and database prefix of this test's own; its topics and databases are dropped after
    (a broker keeps files open for every partition: a few hundred runs' topics exhaust its file limit)."""
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    await drop_databases(infrastructure, name)
    await delete_topics(infrastructure, name)


async def delete_topics(infrastructure: Infrastructure, namespace: str) -> None:
    """Delete the topics of a test's namespace."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infrastructure.kafka)
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if topic.startswith(f"{namespace}.")]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


async def drop_databases(infrastructure: Infrastructure, prefix: str) -> None:
    """Drop the databases a test's namespace made."""
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri)
    try:
        for database in await client.list_database_names():
            if database.startswith(prefix):
                await client.drop_database(database)
    finally:
        await client.close()


# Keys and the first administrator of registration, for every test of this session.
SIGNING_KEY = new_signing_key_pem()
ENCRYPTION_KEYS = new_key_spec("test-1")
ADMIN_CLIENT_ID, ADMIN_SECRET = "test-admin", secrets.token_urlsafe(32)
LINK_SIGNING_KEY = secrets.token_urlsafe(32)


def service_settings(settings_cls: type[S], infra: Infrastructure, namespace: str, **overrides: Any) -> S:
    """Settings of one service for this test: real endpoints, its own namespace and database."""
    service = settings_cls.__name__.removesuffix("Settings").lower()
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": infra.kafka,
        "mongodb_uri": infra.mongodb_uri,
        "mongodb_database": f"{namespace}_{service}",
        "topic_namespace": namespace,
        "consumer_retry_base_seconds": 0.05,
        "log_format": "console",
    }
    if settings_cls is RegistrationSettings:
        values |= {
            "token_signing_key": SIGNING_KEY,
            "encryption_keys": ENCRYPTION_KEYS,
            "encryption_key_id": "test-1",
            "bootstrap_admin_client_id": ADMIN_CLIENT_ID,
            "bootstrap_admin_secret": ADMIN_SECRET,
            "public_url": "http://portal.test",
        }
    if settings_cls is SurveysSettings:
        values |= {"encryption_keys": ENCRYPTION_KEYS, "encryption_key_id": "test-1"}
    if settings_cls is MatchingSettings:
        values |= {
            "link_signing_key": LINK_SIGNING_KEY,
            "public_url": "http://matching.test",
            "scheduler_poll_seconds": 0.2,
        }
    if settings_cls is NotificationsSettings:
        values |= {
            "smtp_host": infra.smtp_host,
            "smtp_port": infra.smtp_port,
            "sender": "AIMMS Mentoring <mentoring@aimms.test>",
            "link_signing_key": LINK_SIGNING_KEY,
            "public_url": "http://notifications.test",
            "scheduler_poll_seconds": 0.2,
            "delivery_retry_base_seconds": 0.2,
            "delivery_retry_cap_seconds": 1.0,
        }
    return settings_cls(**(values | overrides))


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run a service app's lifespan and give an HTTP client for it."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            yield client


async def token(registration: httpx.AsyncClient, client_id: str, secret: str, scope: str | None = None) -> str:
    """An access token from registration's token endpoint."""
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    response = await registration.post("/oauth/token", data=form | ({"scope": scope} if scope else {}))
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def verifier_of(registration: httpx.AsyncClient) -> TokenVerifier:
    """Verifies tokens with the in-process registration's JWKS (as other services do over HTTP)."""

    async def load() -> dict[str, Any]:
        return (await registration.get("/.well-known/jwks.json")).json()

    return TokenVerifier(load, issuer="aimms-registration")


def bearer(access_token: str) -> dict[str, str]:
    """The Authorization header for a token."""
    return {"Authorization": f"Bearer {access_token}"}


@dataclass
class Platform:
    """Registration and notifications running in this test, with their settings."""

    namespace: str
    registration_settings: RegistrationSettings
    notifications_settings: NotificationsSettings
    registration_app: FastAPI
    notifications_app: FastAPI
    registration: httpx.AsyncClient
    notifications: httpx.AsyncClient
    admin_token: str
    portal_token: str


@pytest.fixture
async def platform(infrastructure: Infrastructure, namespace: str) -> AsyncIterator[Platform]:
    """Registration and notifications wired through the real broker, store and SMTP sink."""
    reg_settings = service_settings(RegistrationSettings, infrastructure, namespace)
    notif_settings = service_settings(NotificationsSettings, infrastructure, namespace)
    portal = await seed_demo(reg_settings)
    reg_app, notif_app = create_registration(reg_settings), create_notifications(notif_settings)
    async with running(reg_app) as registration, running(notif_app) as notifications:
        notif_app.state.token_verifier = verifier_of(registration)
        admin_token = await token(registration, ADMIN_CLIENT_ID, ADMIN_SECRET)
        portal_token = await token(registration, portal.client_id, portal.client_secret)
        registration.headers.update(bearer(portal_token))  # the demo university's portal, unless a test says otherwise
        yield Platform(
            namespace,
            reg_settings,
            notif_settings,
            reg_app,
            notif_app,
            registration,
            notifications,
            admin_token,
            portal_token,
        )


def interest_of(namespace: str, who: str = "amina") -> dict[str, str]:
    """An expression of interest with an address unique to this test."""
    return {
        "name": f"Dr {who.title()} Test",
        "email": f"{who}.{namespace}@example.org",
        "programme_id": "aimms-mentoring",
    }


def mails_to(infra: Infrastructure, address: str) -> list[EmailMessage]:
    """Messages the SMTP sink received for one address."""
    return read_messages(infra.maildir, to=address)


async def eventually(probe: Callable[[], T | Awaitable[T]], *, timeout: float = 30.0, interval: float = 0.1) -> T:
    """Poll `probe` (plain or async) until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last result: {result!r})")
        await asyncio.sleep(interval)


async def has_status(pending: Any, status: int = 200) -> bool:
    """Whether a request (awaited here) answered `status`: for `eventually`."""
    return (await pending).status_code == status


async def read_topic(infra: Infrastructure, topic: str, *, expect: int, timeout: float = 20.0) -> list[Any]:
    """Read a topic from the beginning until `expect` records arrived (or the deadline passed)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=infra.kafka, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records: list[Any] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expect and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for partition_records in batch.values():
                records.extend(partition_records)
    finally:
        await consumer.stop()
    return records


def metric(app: FastAPI, name: str, **labels: str) -> float:
    """A sample of one of the app's Prometheus metrics (0 when it has none yet)."""
    value = app.state.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


@dataclass
class Scheme:
    """Registration (with notifications) and matching running together."""

    platform: Platform
    matching_app: FastAPI
    matching: httpx.AsyncClient
    northgate_token: str


@pytest.fixture
async def scheme(platform: Platform, infrastructure: Infrastructure) -> AsyncIterator[Scheme]:
    app = create_matching(service_settings(MatchingSettings, infrastructure, platform.namespace))
    async with running(app) as matching:
        app.state.token_verifier = verifier_of(platform.registration)
        matching.headers.update(bearer(platform.portal_token))
        credential = (
            await platform.registration.post(
                "/credentials",
                json={
                    "name": "northgate portal",
                    "institution_id": "northgate",
                    "scopes": ["participants:write", "participants:read", "profiles:read"],
                },
                headers=bearer(platform.admin_token),
            )
        ).json()
        northgate = await token(platform.registration, credential["client_id"], credential["client_secret"])
        yield Scheme(platform, app, matching, northgate)


def programme_body(programme_id: str, name: str, roles: list[str], **settings: Any) -> dict[str, Any]:
    """A programme as an administrator creates it, on an academic seniority scale; any setting overridden."""
    scale = ["Postdoctoral researcher", "Lecturer", "Senior lecturer", "Professor"]
    return {"programme_id": programme_id, "name": name, "roles_offered": roles, "seniority_scale": scale} | settings


async def create_programme(scheme: Scheme, body: dict[str, Any]) -> dict[str, Any]:
    """Create a programme as the scheme's administrator; its settings as registration answers them."""
    admin = bearer(scheme.platform.admin_token)
    created = await scheme.platform.registration.post("/programmes", json=body, headers=admin)
    assert created.status_code == 201, created.text
    return created.json()


async def register(
    scheme: Scheme,
    who: str,
    *,
    role: str,
    seniority: str,
    at: str = "demo-university",
    capacity: int = 2,
    interests: tuple[str, ...] = ("global health",),
    programme: str = "aimms-mentoring",
    confirmed: tuple[str, ...] = ("woman", "ethnic-minority", "academic-medicine"),
    answers: dict[str, str] | None = None,
) -> str:
    """Register someone through her institution's portal; return her participant id."""
    body: dict[str, Any] = {
        "name": who.title(),
        "email": f"{who}.{scheme.platform.namespace}@{at}.ac.uk",
        "programme_id": programme,
        "role": role,
        "job_title": seniority,
        "seniority": seniority,
        "pathway": "clinical",
        "research_interests": list(interests),
        "consents": {"privacy_notice": "1", "code_of_conduct": "1", "confidentiality": "1"},
        "confirmed_eligibility": list(confirmed),
    }
    if role in ("mentor", "sponsor", "ally", "both"):
        body |= {"offers": "grant writing", "mentor_capacity": capacity, "publish_profile": True}
    if answers is not None:
        body["answers"] = answers
    if role in ("mentee", "both"):
        body |= {"seeks": "career advice"}
    headers = bearer(scheme.northgate_token) if at == "northgate" else {}
    response = await scheme.platform.registration.post("/participants", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["participant_id"]
