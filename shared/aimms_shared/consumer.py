"""Idempotent, at-least-once event consumption with a dead-letter topic.

Offsets are committed only after the effect is stored. A processed-event ledger makes a
redelivered event a no-op. A message that cannot be decoded, or whose handler keeps failing
after bounded retries, is parked on `<topic>.dlq` with the reason and the consumer moves on.
An unavailable store or broker is not the message's fault: that is retried until it recovers,
so nothing is parked (or lost) because of an outage. See docs/idempotency.md.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple, Protocol, TypeVar

import structlog
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka import Topic as KafkaTopic
from faststream.kafka.annotations import KafkaMessage
from pydantic import ValidationError
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, DuplicateKeyError

import aimms_shared.contracts  # noqa: F401 - registers every contract, so any event can be decoded
from aimms_shared import context
from aimms_shared.events import Envelope, Event, Topic, UnknownEvent, dead_letter, decode, in_namespace, payload
from aimms_shared.metrics import Metrics
from aimms_shared.mongo import utcnow
from aimms_shared.retry import backoff_delay

# Records fetched at most per poll; a poll returns what is there already and waits only when idle.
BATCH_RECORDS = 100
IDLE_POLL_MS = 50

Handler = Callable[[Event, Envelope], Awaitable[None]]
# Sends one record (topic, key, value, headers) and waits for Kafka's acknowledgement.
Send = Callable[[str, bytes | None, bytes | None, dict[str, str]], Awaitable[None]]
T = TypeVar("T")

log = structlog.get_logger(__name__)


class TemporaryFailure(Exception):
    """A dependency is unavailable (SMTP, a store): retry until it is back, never park."""


# Failures of infrastructure rather than of the message: retried without limit.
OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionFailure,
    KafkaConnectionError,
    KafkaTimeoutError,
    TemporaryFailure,
)

DLQ_REASON = "dlq_reason"


class Route(NamedTuple):
    """Who handles an event type: the handler, its name in the ledger, and whether it needs the ledger."""

    name: str
    handler: Handler
    idempotent: bool


class Subscriptions:
    """The table of every event a service consumes and the handler for each."""

    def __init__(self) -> None:
        self._routes: dict[str, dict[str, Route]] = {}
        self.layouts: dict[str, Topic] = {}  # each subscribed topic's partitions and policy

    def on(self, *event_classes: type[Event], idempotent: bool = False) -> Callable[[Handler], Handler]:
        """Decorator: `handler(event, envelope)` handles each of `event_classes`.

        `idempotent=True` says that running the handler again for the same event changes nothing (its writes
        are keyed by the event, or only set what the event says), so the processed-event ledger is skipped:
        two round trips fewer per event.
        """

        def register(handler: Handler) -> Handler:
            for event_cls in event_classes:
                self.layouts[event_cls.topic.name] = event_cls.topic
                by_type = self._routes.setdefault(event_cls.topic.name, {})
                if event_cls.event_type in by_type:
                    raise ValueError(f"{event_cls.event_type} already has a handler")
                by_type[event_cls.event_type] = Route(handler.__name__, handler, idempotent)
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        """Topics the service subscribes to."""
        return sorted(self._routes)

    def route(self, topic: str, event_type: str) -> Route | None:
        """Who handles an event type on a topic, or None if the service ignores it."""
        return self._routes.get(topic, {}).get(event_type)

    def describe(self, topic: str) -> str:
        """A line for the AsyncAPI document: which events of the topic are handled."""
        return "Handles " + ", ".join(sorted(self._routes.get(topic, {})))


class Ledger(Protocol):
    """Remembers which handler processed which event."""

    async def seen(self, handler: str, event_id: str) -> bool: ...

    async def record(self, handler: str, event_id: str) -> None: ...


class ProcessedEvents:
    """Ledger of handled event ids; the service prunes it itself (no TTL indexes on FerretDB)."""

    def __init__(self, collection: AsyncCollection, retention: timedelta) -> None:
        self._collection = collection
        self._retention = retention

    async def ensure_indexes(self) -> None:
        """Index the time of processing for pruning; `_id` is already unique."""
        await self._collection.create_index([("processed_at", ASCENDING)])

    async def seen(self, handler: str, event_id: str) -> bool:
        """Whether `handler` already handled the event."""
        return await self._collection.find_one({"_id": f"{handler}:{event_id}"}, {"_id": 1}) is not None

    async def record(self, handler: str, event_id: str) -> None:
        """Remember that `handler` handled the event (a second record is harmless)."""
        with contextlib.suppress(DuplicateKeyError):
            await self._collection.insert_one({"_id": f"{handler}:{event_id}", "processed_at": utcnow()})

    async def prune(self) -> int:
        """Forget entries older than the retention; a redelivery is far younger than that."""
        result = await self._collection.delete_many({"processed_at": {"$lt": utcnow() - self._retention}})
        return result.deleted_count


class EventConsumer:
    """Runs a service's subscriptions on a FastStream Kafka broker, one consumer group per topic.

    A group per topic rather than per service: a service has one consumer per topic, and in a shared
    group every one of them joining (or missing a heartbeat while a rebalance runs) stopped all the
    others for a rebalance, which redelivered uncommitted events and held them up for seconds.
    Replicas of a service still share each topic's partitions in its group.
    """

    def __init__(
        self,
        *,
        group_id: str,
        subscriptions: Subscriptions,
        namespace: str,
        ledger: Ledger,
        broker: KafkaBroker,
        send: Send,
        metrics: Metrics,
        max_attempts: int,
        retry_base_seconds: float,
    ) -> None:
        self._group_id = group_id
        self._subscriptions = subscriptions
        self._namespace = namespace
        self._ledger = ledger
        self._broker = broker
        self._send = send
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._retry_base = retry_base_seconds

    def bind(self) -> None:
        """Declare one subscriber per topic, taking records in batches; offsets are committed by hand
        once every record of a batch reached its outcome."""
        for topic in self._subscriptions.topics:
            subscriber = self._broker.subscriber(
                # Provisioned by the runtime (aimms_shared.topics) with their layout: FastStream
                # would otherwise create a missing topic itself, with one partition.
                KafkaTopic(in_namespace(topic, self._namespace), declare=False),
                group_id=self.group_for(topic),
                auto_offset_reset="earliest",
                ack_policy=AckPolicy.MANUAL,
                batch=True,
                max_records=BATCH_RECORDS,
                batch_timeout_ms=IDLE_POLL_MS,
                title=f"{self._group_id}:{topic}",
                description=self._subscriptions.describe(topic),
            )

            async def on_batch(msg: KafkaMessage) -> None:
                await self.consume_batch(msg.raw_message)
                await msg.ack()

            subscriber(on_batch)

    def group_for(self, topic: str) -> str:
        """The consumer group of this service's consumer of one (un-namespaced) topic."""
        return f"{self._group_id}.{topic}"

    def _unprefixed(self, topic: str) -> str:
        return topic.removeprefix(f"{self._namespace}.") if self._namespace else topic

    async def consume_batch(self, records: Sequence[Any]) -> None:
        """Process a batch: each key's records one after another, in order, and the keys side by side.

        A key is an aggregate, whose events must keep their order; Kafka promises no more than that
        between keys either, and a burst of welcomes on one partition then goes out together."""
        keys: dict[tuple[str, int, bytes | None], list[Any]] = {}
        for record in records:
            keys.setdefault((record.topic, record.partition, record.key), []).append(record)

        async def in_order(batch: list[Any]) -> None:
            for record in batch:
                await self.consume(record)

        outcomes = await asyncio.gather(*(in_order(b) for b in keys.values()), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # after every key finished; the batch stays uncommitted

    async def consume(self, record: Any) -> None:
        """Process one record to a final outcome: handled, duplicate, ignored or dead-lettered."""
        topic = self._unprefixed(record.topic)
        if not record.value:
            # A tombstone on a compacted topic: Kafka forgets the key. The erasure it stands for also
            # arrives as an event (ParticipantErased), which is what services act on.
            self._metrics.events_consumed.labels(topic, "tombstone", "ignored").inc()
            return
        try:
            envelope = decode(record.value)
        except ValidationError as exc:
            await self._dead_letter(record, f"malformed envelope: {_summary(exc)}", "unknown")
            return
        with structlog.contextvars.bound_contextvars(
            event_id=str(envelope.event_id), event_type=envelope.event_type, correlation_id=envelope.correlation_id
        ):
            route = self._subscriptions.route(topic, envelope.event_type)
            if route is None:
                self._metrics.events_consumed.labels(topic, envelope.event_type, "ignored").inc()
                return
            try:
                event = payload(envelope)
            except (UnknownEvent, ValidationError) as exc:
                reason = str(exc) if isinstance(exc, UnknownEvent) else f"invalid payload: {_summary(exc)}"
                await self._dead_letter(record, reason, envelope.event_type)
                return
            event_id = str(envelope.event_id)
            if not route.idempotent and await self._retry_outages(lambda: self._ledger.seen(route.name, event_id)):
                log.info("event.duplicate_ignored", handler=route.name)
                self._metrics.events_consumed.labels(topic, envelope.event_type, "duplicate").inc()
                return
            error = await self._run(route.handler, event, envelope, topic)
            if error is not None:
                await self._dead_letter(
                    record, f"handler {route.name} failed {self._max_attempts} times: {error!r}", envelope.event_type
                )
                return
            if not route.idempotent:
                await self._retry_outages(lambda: self._ledger.record(route.name, event_id))
            self._metrics.events_consumed.labels(topic, envelope.event_type, "processed").inc()
            log.info("event.handled", handler=route.name)

    async def _run(self, handler: Handler, event: Event, envelope: Envelope, topic: str) -> Exception | None:
        """Call the handler with bounded retries; outages are waited out. Returns the last error."""
        correlation = context.correlation_id.set(envelope.correlation_id)
        causation = context.causation_id.set(str(envelope.event_id))
        try:
            attempt = 0
            outages = 0
            while True:
                try:
                    await handler(event, envelope)
                    return None
                except OUTAGES as exc:
                    outages += 1
                    self._metrics.events_failed.labels(topic, envelope.event_type).inc()
                    delay = backoff_delay(self._retry_base, outages)
                    log.warning("event.dependency_unavailable", error=repr(exc), retry_in_seconds=delay)
                    await asyncio.sleep(delay)
                except Exception as exc:  # noqa: BLE001 - bounded, then parked with the reason
                    attempt += 1
                    self._metrics.events_failed.labels(topic, envelope.event_type).inc()
                    if attempt >= self._max_attempts:
                        return exc
                    delay = backoff_delay(self._retry_base, attempt)
                    log.warning("event.handler_failed", error=repr(exc), attempt=attempt, retry_in_seconds=delay)
                    await asyncio.sleep(delay)
        finally:
            context.causation_id.reset(causation)
            context.correlation_id.reset(correlation)

    async def _retry_outages(self, operation: Callable[[], Awaitable[T]]) -> T:
        outages = 0
        while True:
            try:
                return await operation()
            except OUTAGES as exc:
                outages += 1
                delay = backoff_delay(self._retry_base, outages)
                log.warning("event.dependency_unavailable", error=repr(exc), retry_in_seconds=delay)
                await asyncio.sleep(delay)

    async def _dead_letter(self, record: Any, reason: str, event_type: str) -> None:
        headers = {
            **{key: value.decode(errors="replace") for key, value in record.headers or ()},
            DLQ_REASON: reason[:2000],
            "dlq_source_topic": record.topic,
            "dlq_source_partition": str(record.partition),
            "dlq_source_offset": str(record.offset),
            "dlq_consumer_group": self.group_for(self._unprefixed(record.topic)),
            "dlq_failed_at": utcnow().isoformat(),
        }
        await self._retry_outages(lambda: self._send(dead_letter(record.topic), record.key, record.value, headers))
        self._metrics.events_consumed.labels(record.topic, event_type, "dead_lettered").inc()
        log.error("event.dead_lettered", reason=reason, topic=record.topic, offset=record.offset)


def _summary(exc: ValidationError) -> str:
    """A validation error in one line: field locations and messages, no input values (personal data)."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())
