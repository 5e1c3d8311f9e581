"""The idempotent consumer on FastStream's in-memory broker: dedupe, retries, dead letters."""

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace

from faststream.kafka import KafkaBroker, TestKafkaBroker

from aimms_shared.consumer import DLQ_REASON, EventConsumer, Send, Subscriptions
from aimms_shared.contracts.registration import INTERESTS, InterestExpressed
from aimms_shared.events import Envelope, dead_letter, wrap
from aimms_shared.metrics import Metrics
from tests.factories import interest_expressed

EVENT = interest_expressed()


@dataclass
class MemoryLedger:
    """In-memory stand-in for the processed-event collection."""

    entries: set[str] = field(default_factory=set)

    async def seen(self, handler: str, event_id: str) -> bool:
        return f"{handler}:{event_id}" in self.entries

    async def record(self, handler: str, event_id: str) -> None:
        self.entries.add(f"{handler}:{event_id}")


@dataclass
class Harness:
    broker: KafkaBroker
    handled: list[Envelope]
    parked: list[tuple[bytes, dict[str, str]]]
    failures_before_success: int = 0


def harness(*, failures_before_success: int = 0, max_attempts: int = 3) -> Harness:
    broker = KafkaBroker()
    h = Harness(broker, [], [], failures_before_success)

    async def send(topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]) -> None:
        assert topic == dead_letter(INTERESTS.name)
        h.parked.append((value, headers))

    table = Subscriptions()

    @table.on(InterestExpressed)
    async def remember(event: InterestExpressed, envelope: Envelope) -> None:
        if h.failures_before_success > 0:
            h.failures_before_success -= 1
            raise RuntimeError("template exploded")
        h.handled.append(envelope)

    consumer_of(table, broker, send, max_attempts).bind()
    return h


def consumer_of(
    table: Subscriptions, broker: KafkaBroker, send: Send, max_attempts: int, ledger: MemoryLedger | None = None
) -> EventConsumer:
    return EventConsumer(
        group_id="unit",
        subscriptions=table,
        namespace="",
        ledger=ledger or MemoryLedger(),
        broker=broker,
        send=send,
        metrics=Metrics("unit"),
        max_attempts=max_attempts,
        retry_base_seconds=0,
    )


async def test_each_event_is_handled_once_however_often_it_is_delivered() -> None:
    h = harness()
    envelope = wrap(EVENT, producer="registration")
    async with TestKafkaBroker(h.broker) as broker:
        for _ in range(3):
            await broker.publish(envelope.encode(), INTERESTS.name, key=b"i-1")

    assert [e.event_id for e in h.handled] == [envelope.event_id]
    assert h.parked == []


async def test_an_idempotent_handler_runs_for_every_copy_and_the_ledger_is_left_alone() -> None:
    table, ledger, runs = Subscriptions(), MemoryLedger(), []

    @table.on(InterestExpressed, idempotent=True)
    async def keyed_by_event(event: InterestExpressed, envelope: Envelope) -> None:
        runs.append(envelope.event_id)

    broker = KafkaBroker()
    consumer_of(table, broker, send=_no_dead_letters, max_attempts=1, ledger=ledger).bind()
    envelope = wrap(EVENT, producer="registration")
    async with TestKafkaBroker(broker) as test_broker:
        for _ in range(2):
            await test_broker.publish(envelope.encode(), INTERESTS.name, key=b"i-1")

    assert runs == [envelope.event_id] * 2
    assert ledger.entries == set()


async def _no_dead_letters(topic: str, key: bytes | None, value: bytes | None, headers: dict[str, str]) -> None:
    raise AssertionError(f"nothing should be parked: {headers}")


async def test_a_malformed_message_is_parked_with_its_reason_and_the_next_one_is_handled() -> None:
    h = harness()
    envelope = wrap(EVENT, producer="registration")
    async with TestKafkaBroker(h.broker) as broker:
        await broker.publish(b'{"event_type": "InterestExpressed"}', INTERESTS.name, key=b"bad")
        await broker.publish(envelope.encode(), INTERESTS.name, key=b"i-1")

    assert len(h.parked) == 1
    body, headers = h.parked[0]
    assert body == b'{"event_type": "InterestExpressed"}'
    assert headers[DLQ_REASON].startswith("malformed envelope:")
    assert "event_id" in headers[DLQ_REASON]
    assert headers["dlq_source_topic"] == INTERESTS.name
    assert [e.event_id for e in h.handled] == [envelope.event_id]


async def test_a_tombstone_is_skipped_not_parked() -> None:
    h = harness()
    async with TestKafkaBroker(h.broker) as broker:
        await broker.publish(None, INTERESTS.name, key=b"i-1")
        await broker.publish(wrap(EVENT, producer="registration").encode(), INTERESTS.name, key=b"i-1")

    assert h.parked == [] and len(h.handled) == 1


async def test_an_invalid_payload_is_parked_without_calling_the_handler() -> None:
    h = harness()
    envelope = wrap(EVENT, producer="registration").model_copy(update={"payload": {"interest_id": "i-1"}})
    async with TestKafkaBroker(h.broker) as broker:
        await broker.publish(envelope.encode(), INTERESTS.name, key=b"i-1")

    assert h.handled == []
    assert h.parked[0][1][DLQ_REASON].startswith("invalid payload:")


async def test_a_handler_that_fails_briefly_is_retried_until_it_succeeds() -> None:
    h = harness(failures_before_success=2, max_attempts=3)
    async with TestKafkaBroker(h.broker) as broker:
        await broker.publish(wrap(EVENT, producer="registration").encode(), INTERESTS.name, key=b"i-1")

    assert len(h.handled) == 1
    assert h.parked == []


async def test_a_handler_that_keeps_failing_is_parked_after_bounded_retries() -> None:
    h = harness(failures_before_success=99, max_attempts=3)
    async with TestKafkaBroker(h.broker) as broker:
        await broker.publish(wrap(EVENT, producer="registration").encode(), INTERESTS.name, key=b"i-1")

    assert h.handled == []
    assert h.failures_before_success == 96
    assert "failed 3 times" in h.parked[0][1][DLQ_REASON]
    assert "template exploded" in h.parked[0][1][DLQ_REASON]


async def test_events_the_service_does_not_handle_are_skipped() -> None:
    h = harness()
    other = wrap(EVENT, producer="registration").model_copy(update={"event_type": "SomethingElseHappened"})
    async with TestKafkaBroker(h.broker) as broker:
        await broker.publish(other.encode(), INTERESTS.name, key=b"i-1")

    assert h.handled == [] and h.parked == []


async def test_a_batch_keeps_each_keys_order_and_runs_the_keys_side_by_side() -> None:
    # Key a's first event waits until key b's, on the same partition, has been handled: with a
    # partition's records one after another this would never finish. Key a's second waits its turn.
    handled: list[str] = []
    other_key_done = asyncio.Event()
    table = Subscriptions()

    @table.on(InterestExpressed)
    async def remember(event: InterestExpressed, envelope: Envelope) -> None:
        if event.interest_id == "a-first":
            await asyncio.wait_for(other_key_done.wait(), timeout=5)
        handled.append(event.interest_id)
        if event.interest_id == "b-only":
            other_key_done.set()

    async def never(*_: object) -> None:
        raise AssertionError("nothing should be parked")

    consumer = consumer_of(table, KafkaBroker(), never, max_attempts=1)

    def record(key: bytes, interest_id: str) -> SimpleNamespace:
        value = wrap(interest_expressed(interest_id=interest_id), producer="registration").encode()
        return SimpleNamespace(topic=INTERESTS.name, partition=0, key=key, value=value, headers=())

    await consumer.consume_batch([record(b"a", "a-first"), record(b"b", "b-only"), record(b"a", "a-second")])

    assert handled == ["b-only", "a-first", "a-second"]
