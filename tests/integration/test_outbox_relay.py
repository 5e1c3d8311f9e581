"""The outbox relay: killed after publishing but before recording, the event is published again
and the email is still sent exactly once."""

import json
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaProducer
from pymongo import AsyncMongoClient

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
from aimms_shared.outbox import OUTBOX, OUTBOX_DUE, OutboxEntry, OutboxRelay

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
        RegistrationStore(mongo[reg_settings.mongodb_database], cipher), submission, on_events=lambda: None
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
    assert len(stored[OUTBOX]) == 1, "the event must stay in the outbox until its removal is recorded"
    [first_copy] = await read_topic(infrastructure, topic, expect=1)

    # The service restarts: its relay takes over once the dead relay's lease expires.
    notifications = create_notifications(service_settings(NotificationsSettings, infrastructure, namespace))
    async with running(create_registration(reg_settings)), running(notifications):
        await eventually(lambda: _outbox_empty(interests, interest_id), timeout=lease + 15)
        copies = await read_topic(infrastructure, topic, expect=2)
        [mail] = await eventually(lambda: mails_to(infrastructure, submission.email))

        # Both copies are the same event; the consumer had dropped the second by its id.
        assert [json.loads(c.value)["event_id"] for c in copies] == [json.loads(first_copy.value)["event_id"]] * 2
        duplicate = {"topic": INTERESTS.name, "event_type": "InterestExpressed", "outcome": "duplicate"}
        await eventually(lambda: metric(notifications, "aimms_events_consumed_total", **duplicate) == 1)
        assert len(mails_to(infrastructure, submission.email)) == 1
        assert mail["Subject"] == "Welcome to AIMMS Mentoring"
    await mongo.close()


async def _outbox_empty(interests, interest_id: str) -> bool:  # noqa: ANN001
    doc = await interests.find_one({"_id": interest_id})
    return doc[OUTBOX] == [] and OUTBOX_DUE not in doc
