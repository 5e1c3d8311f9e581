"""A malformed message lands on the dead-letter topic with its reason; the next one is processed."""

import pytest
from aiokafka import AIOKafkaProducer

from aimms_shared.consumer import DLQ_REASON
from aimms_shared.contracts.registration import INTERESTS
from aimms_shared.events import dead_letter, in_namespace, wrap
from tests.factories import interest_events

from .conftest import Infrastructure, Platform, eventually, interest_of, mails_to, read_topic

pytestmark = pytest.mark.integration


async def test_a_malformed_message_is_parked_with_its_reason_while_the_next_is_processed(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    topic = in_namespace(INTERESTS.name, platform.namespace)
    valid = interest_of(platform.namespace, "grace")
    event, contact = interest_events(interest_id="i-after-the-poison", name=valid["name"], email=valid["email"])
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka)
    await producer.start()
    try:  # same key, so both land on one partition in this order
        await producer.send_and_wait(topic, b"{this is not an event", key=b"i-after-the-poison")
        await producer.send_and_wait(topic, wrap(event, producer="registration").encode(), key=b"i-after-the-poison")
        contacts = in_namespace(contact.topic.name, platform.namespace)
        await producer.send_and_wait(
            contacts, wrap(contact, producer="registration").encode(), key=contact.key().encode()
        )
    finally:
        await producer.stop()

    [parked] = await read_topic(infrastructure, dead_letter(topic), expect=1)
    headers = {k: v.decode() for k, v in parked.headers}
    assert parked.value == b"{this is not an event"
    assert headers[DLQ_REASON].startswith("malformed envelope: ")
    assert headers["dlq_source_topic"] == topic
    assert headers["dlq_consumer_group"] == in_namespace(f"notifications.{INTERESTS.name}", platform.namespace)
    [mail] = await eventually(lambda: mails_to(infrastructure, valid["email"]))
    assert mail["Subject"] == "Welcome to AIMMS Mentoring"
