"""The outbox relay: killed after publishing but before recording, the event is published again
and the email is still sent exactly once; a document handed over is published without a search,
and one whose writer stopped first is found by the search once the writer's grace has passed, also
when a later write handed over only the events it appended."""

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from aimms_notifications.app import create_app as create_notifications
from aimms_notifications.settings import NotificationsSettings
from aimms_registration import use_cases
from aimms_registration.app import create_app as create_registration
from aimms_registration.demo import seed as seed_demo
from aimms_registration.domain.interests import InterestSubmission
from aimms_registration.settings import RegistrationSettings
from aimms_registration.store import INTERESTS as INTERESTS_COLLECTION
from aimms_registration.store import RegistrationStore
from aimms_shared.contracts.registration import INTERESTS
from aimms_shared.crypto import FieldCipher, parse_keys
from aimms_shared.events import in_namespace
from aimms_shared.outbox import OUTBOX, OUTBOX_DUE, Outbox, OutboxEntry, OutboxRelay

from .conftest import (
    Infrastructure,
    eventually,
    interest_of,
    mails_to,
    metric,
    read_topic,
    running,
    service_settings,
)

pytestmark = pytest.mark.integration


class RelayKilled(BaseException):
    """Stands for the process dying: nothing after it runs, no `except Exception` catches it."""


async def test_a_relay_killed_after_publishing_publishes_again_and_the_email_is_sent_once(
    infrastructure: Infrastructure, namespace: str
) -> None:
    lease = 1.0
    reg_settings = service_settings(RegistrationSettings, infrastructure, namespace, lease_seconds=lease)
    await seed_demo(reg_settings)
    topic = in_namespace(INTERESTS.name, namespace)
    mongo: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    interests = mongo[reg_settings.mongodb_database][INTERESTS_COLLECTION]
    submission = InterestSubmission(**interest_of(namespace), institution_id="demo-university")

    # An interest is stored with its event in the outbox, as the HTTP route does.
    cipher = FieldCipher(parse_keys(reg_settings.encryption_keys.get_secret_value()), reg_settings.encryption_key_id)
    interest_id, _ = await use_cases.express_interest(
        RegistrationStore(mongo[reg_settings.mongodb_database], cipher), submission
    )

    # A relay publishes it, Kafka acknowledges, and the process dies before removing it.
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka, enable_idempotence=True, acks="all")
    await producer.start()

    async def publish_then_die(entry: OutboxEntry) -> None:
        headers = [(k, v.encode()) for k, v in entry["headers"].items()]
        await producer.send_and_wait(topic, entry["value"].encode(), key=entry["key"].encode(), headers=headers)
        raise RelayKilled

    with pytest.raises(RelayKilled):
        await OutboxRelay([interests], publish_then_die, lease=timedelta(seconds=lease)).drain()
    await producer.stop()

    stored = await interests.find_one({"_id": interest_id})
    # InterestExpressed and her contact: both stay in the outbox until their removal is recorded.
    assert len(stored[OUTBOX]) == 2, "the events must stay in the outbox until their removal is recorded"
    [first_copy] = await read_topic(infrastructure, topic, expect=1)

    # The service restarts: its relay takes over once the dead relay's lease expires.
    notifications = create_notifications(service_settings(NotificationsSettings, infrastructure, namespace))
    async with running(create_registration(reg_settings)), running(notifications):
        await eventually(lambda: _outbox_empty(interests, interest_id), timeout=lease + 15)
        copies = await read_topic(infrastructure, topic, expect=2)
        [mail] = await eventually(lambda: mails_to(infrastructure, submission.email))

        # Both copies are the same event; both were handled, and the second queued nothing: the welcome's id
        # is derived from the event's.
        assert [json.loads(c.value)["event_id"] for c in copies] == [json.loads(first_copy.value)["event_id"]] * 2
        handled = {"topic": INTERESTS.name, "event_type": "InterestExpressed", "outcome": "processed"}
        await eventually(lambda: metric(notifications, "aimms_events_consumed_total", **handled) == 2)
        assert len(mails_to(infrastructure, submission.email)) == 1
        assert mail["Subject"] == "Welcome to AIMMS Mentoring"
    await mongo.close()


async def _outbox_empty(interests, interest_id: str) -> bool:  # noqa: ANN001
    doc = await interests.find_one({"_id": interest_id})
    return doc[OUTBOX] == [] and OUTBOX_DUE not in doc


class Aggregates:
    """A collection of test aggregates, relays over it that note what they publish, and a short grace."""

    def __init__(self, collection: AsyncCollection) -> None:
        self.collection = collection
        self.published: list[str] = []

    async def _publish(self, entry: OutboxEntry) -> None:
        self.published.append(entry["key"])

    def relay(self) -> OutboxRelay:
        return OutboxRelay([self.collection], self._publish, lease=timedelta(seconds=30))

    async def published_by_search(self, key: str) -> bool:
        await self.relay().drain()
        return key in self.published


# Documents handed to a relay stay out of searches this long; short, so a stopped writer's are found soon.
GRACE = timedelta(seconds=1)


def entry(key: str) -> OutboxEntry:
    return {"event_id": key, "event_type": "Test", "topic": "t", "key": key, "value": "{}", "headers": {}}


@pytest.fixture
async def aggregates(infrastructure: Infrastructure, namespace: str) -> AsyncIterator[Aggregates]:
    mongo: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    try:
        yield Aggregates(mongo[namespace]["aggregates"])
    finally:
        await mongo.drop_database(namespace)
        await mongo.close()


async def test_a_handed_over_document_is_published_at_once_and_a_stopped_writers_after_its_grace(
    aggregates: Aggregates,
) -> None:
    # The writer's relay publishes what it is handed; no relay's search takes it meanwhile.
    writers = aggregates.relay()
    await Outbox(writers, handover_grace=GRACE).insert(aggregates.collection, {"_id": "a"}, [entry("a")])
    assert await aggregates.relay().drain() == 0
    assert await writers.publish_handed() == 1
    assert aggregates.published == ["a"]
    assert await aggregates.collection.find_one({"_id": "a"}) == {"_id": "a", OUTBOX: []}

    # A writer whose relay stopped before publishing: another relay's search finds it after the grace.
    await Outbox(aggregates.relay(), handover_grace=GRACE).insert(aggregates.collection, {"_id": "b"}, [entry("b")])
    assert await aggregates.relay().drain() == 0
    await eventually(lambda: aggregates.published_by_search("b"), timeout=10)
    assert aggregates.published == ["a", "b"]


async def test_events_appended_without_reading_back_leave_older_ones_to_the_search(aggregates: Aggregates) -> None:
    # An event its writer's relay never published (it stopped), then one appended by another writer.
    await Outbox(aggregates.relay(), handover_grace=GRACE).insert(
        aggregates.collection, {"_id": "c", "status": "new"}, [entry("older")]
    )
    writers = aggregates.relay()
    await Outbox(writers, handover_grace=GRACE).append(
        aggregates.collection, "c", {"$set": {"status": "sent"}}, [entry("newer")]
    )

    assert await writers.publish_handed() == 1
    assert aggregates.published == ["newer"]  # it was handed only what it appended
    kept = await aggregates.collection.find_one({"_id": "c"})
    assert kept["status"] == "sent" and kept[OUTBOX] == [entry("older")] and OUTBOX_DUE in kept

    await eventually(lambda: aggregates.published_by_search("older"), timeout=10)
    assert aggregates.published == ["newer", "older"]
    assert await aggregates.collection.find_one({"_id": "c"}) == {"_id": "c", "status": "sent", OUTBOX: []}
