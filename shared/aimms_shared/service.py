"""The running shape every service shares: connections, relay, consumers, health and metrics.

A service's composition root calls `create_service_app` with its settings, its routers, the
collections that hold outboxes, and a `setup` coroutine that builds its stores and returns its
subscriptions. Nothing connects before the app's lifespan starts.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

import structlog
from aiokafka import AIOKafkaProducer
from fastapi import APIRouter, FastAPI, Request, Response
from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from aimms_shared.auth import KeyLoader, TokenVerifier, document_scopes, remote_jwks
from aimms_shared.consumer import EventConsumer, ProcessedEvents, Subscriptions
from aimms_shared.events import Event, envelope_schema, in_namespace
from aimms_shared.http import RequestContextMiddleware, install_problem_handlers
from aimms_shared.logging import configure_logging
from aimms_shared.metrics import Metrics
from aimms_shared.outbox import Outbox, OutboxEntry, OutboxRelay, ensure_outbox_index, outbox_backlog
from aimms_shared.settings import ServiceSettings
from aimms_shared.topics import ensure_topics

log = structlog.get_logger(__name__)

PROCESSED_EVENTS = "processed_events"
PRUNE_INTERVAL_SECONDS = 3600


class Runtime:
    """Connections and background work of one running service instance."""

    def __init__(
        self, service: str, settings: ServiceSettings, metrics: Metrics, outbox_collections: Sequence[str]
    ) -> None:
        self.service = service
        self.settings = settings
        self.metrics = metrics
        self.mongo: AsyncMongoClient = AsyncMongoClient(
            settings.mongodb_uri, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        self.db: AsyncDatabase = self.mongo[settings.mongodb_database]
        # Idempotent producer, acks from all in-sync replicas: a retried send never duplicates.
        # FastStream runs the subscriptions; one idempotent producer (acks from all in-sync
        # replicas) publishes everything the service sends, so a retried send never duplicates.
        self.broker = KafkaBroker(settings.kafka_bootstrap_servers, client_id=service, logger=None)
        self.producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, client_id=service, enable_idempotence=True, acks="all"
        )
        self.outbox_collections = [self.db[name] for name in outbox_collections]
        self.relay = OutboxRelay(self.outbox_collections, self.publish, lease=timedelta(seconds=settings.lease_seconds))
        self.outbox = Outbox(self.relay)  # what stores write their events with
        self.ledger = ProcessedEvents(
            self.db[PROCESSED_EVENTS], timedelta(hours=settings.processed_event_retention_hours)
        )
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: list[Callable[[], Awaitable[None]]] = [self.relay.run, self._prune_ledger]

    def run_in_background(self, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` for the life of the service (call during setup)."""
        self._background.append(loop)

    def topic(self, name: str) -> str:
        """The Kafka topic for a contract's topic name, in this deployment's namespace."""
        return in_namespace(name, self.settings.topic_namespace)

    async def send(self, topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]) -> None:
        """Send one record and wait for Kafka's acknowledgement (a None value is a tombstone)."""
        await self.producer.send_and_wait(
            topic, value, key=key, headers=[(name, text.encode()) for name, text in headers.items()]
        )

    async def publish(self, entry: OutboxEntry) -> None:
        """Publish one outbox entry to its topic in this deployment's namespace."""
        value = entry["value"].encode() if entry["value"] is not None else None
        await self.send(self.topic(entry["topic"]), entry["key"].encode(), value, entry["headers"])
        self.metrics.events_published.labels(entry["topic"], entry["event_type"]).inc()

    async def start(self, subscriptions: Subscriptions, produces: Sequence[type[Event]] = ()) -> None:
        """Prepare topics and indexes, start consuming and the background loops."""
        layouts = subscriptions.layouts | {event_cls.topic.name: event_cls.topic for event_cls in produces}
        await ensure_topics(
            self.settings.kafka_bootstrap_servers, [(self.topic(name), layout) for name, layout in layouts.items()]
        )
        for collection in self.outbox_collections:
            await ensure_outbox_index(collection)
        await self.ledger.ensure_indexes()
        EventConsumer(
            group_id=self.topic(self.service),
            subscriptions=subscriptions,
            namespace=self.settings.topic_namespace,
            ledger=self.ledger,
            broker=self.broker,
            send=self.send,
            metrics=self.metrics,
            max_attempts=self.settings.consumer_max_attempts,
            retry_base_seconds=self.settings.consumer_retry_base_seconds,
        ).bind()
        await self.producer.start()
        await self.broker.start()
        self._tasks = [asyncio.create_task(loop(), name=f"{self.service}:{loop.__name__}") for loop in self._background]
        log.info("service.started", service=self.service, topics=subscriptions.topics)

    async def stop(self) -> None:
        """Stop background loops, the broker and the store client."""
        pending = set(self._tasks)
        while pending:
            # Cancel again until they end: a client library may turn a cancellation into an error.
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1)
        await self.broker.stop()
        await self.producer.stop()
        await self.mongo.close()

    async def ready(self) -> dict[str, str]:
        """Check both dependencies; each answers 'ok' or what is wrong."""
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(self.db.command("ping"), 3)
            checks["mongodb"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["mongodb"] = f"unavailable: {type(exc).__name__}"
        try:
            checks["kafka"] = "ok" if await asyncio.wait_for(self.broker.ping(timeout=3), 4) else "unavailable"
        except Exception as exc:  # noqa: BLE001
            checks["kafka"] = f"unavailable: {type(exc).__name__}"
        return checks

    async def _prune_ledger(self) -> None:
        while True:
            try:
                pruned = await self.ledger.prune()
            except Exception as exc:  # noqa: BLE001 - pruning again next hour is good enough
                log.warning("ledger.prune_failed", error=repr(exc))
            else:
                if pruned:
                    log.info("ledger.pruned", entries=pruned)
            await asyncio.sleep(PRUNE_INTERVAL_SECONDS)


Setup = Callable[[FastAPI, Runtime], Awaitable[Subscriptions]]


def create_service_app(
    service: str,
    settings: ServiceSettings,
    *,
    routers: Sequence[APIRouter],
    setup: Setup,
    outbox_collections: Sequence[str] = (),
    produces: Sequence[type[Event]] = (),
    description: str = "",
    token_verifier: TokenVerifier | None = None,
) -> FastAPI:
    """Build a service's FastAPI app: lifespan, routers, errors, health, metrics, AsyncAPI."""
    configure_logging(settings.log_format, settings.log_level)
    metrics = Metrics(service)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(service, settings, metrics, outbox_collections)
        app.state.runtime = runtime
        subscriptions = await setup(app, runtime)
        for event_cls in produces:  # documented in AsyncAPI; the relay publishes them
            runtime.broker.publisher(
                runtime.topic(event_cls.topic.name),
                schema=envelope_schema(event_cls),
                title=f"{event_cls.topic.name}:{event_cls.event_type}",
            )
        await runtime.start(subscriptions, produces)
        try:
            yield
        finally:
            await runtime.stop()
            log.info("service.stopped", service=service)

    app = FastAPI(title=f"AIMMS {service}", description=description, lifespan=lifespan)
    app.state.metrics = metrics
    app.state.token_verifier = token_verifier or TokenVerifier(_jwks_from(settings), issuer=settings.auth_issuer)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    install_problem_handlers(app)
    app.include_router(_operations_router(service))
    for router in routers:
        app.include_router(router)
    document_scopes(app)
    return app


def _jwks_from(settings: ServiceSettings) -> KeyLoader:
    if settings.auth_jwks_url:
        return remote_jwks(settings.auth_jwks_url)

    async def unconfigured() -> dict[str, Any]:
        raise KeyError("no AUTH_JWKS_URL configured: this service accepts no tokens")

    return unconfigured


def runtime_of(request: Request) -> Runtime:
    """The running service's connections (FastAPI dependency)."""
    return request.app.state.runtime


def _operations_router(service: str) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers."""
        return {"status": "ok", "service": service}

    @router.get("/readyz")
    async def readyz(request: Request, response: Response) -> dict[str, Any]:
        """Ready: Kafka and the store both answer."""
        checks = await runtime_of(request).ready()
        ok = all(v == "ok" for v in checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ok" if ok else "unavailable", "checks": checks}

    @router.get("/metrics", include_in_schema=False)
    async def prometheus(request: Request) -> Response:
        """Prometheus metrics; the outbox backlog is counted at scrape time."""
        runtime = runtime_of(request)
        backlog = 0
        for collection in runtime.outbox_collections:
            backlog += await outbox_backlog(collection)
        runtime.metrics.outbox_backlog.set(backlog)
        return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @router.get("/asyncapi.json")
    async def asyncapi(request: Request) -> Any:
        """The service's event catalogue (AsyncAPI 3.0), generated by FastStream from the code."""
        spec = AsyncAPI(runtime_of(request).broker, title=f"AIMMS {service} events", version="1")
        return spec.to_specification().to_jsonable()

    return router
