"""Erasure reaches Kafka: after she is erased, her name and address are on no topic but the compacted
contacts topic, and there the latest record of each of her keys is a tombstone, so compaction drops the
rest (within `max.compaction.lag.ms`, a day in deploy/k8s/base/create-topics.sh).

Registration and notifications run in-process on the real broker and store; she expresses interest
(welcomed), registers (confirmed) and is erased through the portal's API, then every topic is read.
"""

import json

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from aimms_shared.contracts.registration import CONTACTS, interest_contact_id, profile_text_id
from aimms_shared.events import in_namespace

from .conftest import Infrastructure, Platform, eventually, mails_to, read_topic
from .test_registration import participant_body

pytestmark = pytest.mark.integration


async def test_after_erasure_her_name_address_and_profile_text_are_readable_on_no_topic(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    registration, namespace = platform.registration, platform.namespace
    name, email = "Dr Zainab Erasable", f"zainab.{namespace}@demo-university.ac.uk"
    expressed = await registration.post(
        "/interests", json={"name": name, "email": email, "programme_id": "aimms-mentoring"}
    )
    assert expressed.status_code == 201, expressed.text
    await eventually(lambda: mails_to(infrastructure, email), timeout=60)  # the welcome, from her contact
    person = participant_body(namespace, "zainab", name=name, email=email)
    registered = await registration.post("/participants", json=person)
    assert registered.status_code == 201, registered.text
    her = registered.json()["participant_id"]
    interest_id = (await registration.get(f"/participants/{her}/export")).json()["participant"]["interest_id"]
    assert interest_id == expressed.json()["interest_id"]

    assert (await registration.delete(f"/participants/{her}")).status_code == 204

    contacts = in_namespace(CONTACTS.name, namespace)
    her_keys = {her, interest_contact_id(interest_id), profile_text_id(her)}
    words = (name, email, person["job_title"], person["offers"], person["seeks"])

    async def tombstoned() -> bool:
        latest = {r.key.decode(): r.value for r in await read_topic(infrastructure, contacts, expect=10_000, timeout=2)}
        return all(key in latest and latest[key] is None for key in her_keys)

    await eventually(tombstoned, timeout=30)  # the latest of each of her contact keys is a tombstone
    for topic in await _topics_of(infrastructure, namespace):
        if topic == contacts:
            continue
        for record in await read_topic(infrastructure, topic, expect=10_000, timeout=2):
            text = json.dumps(json.loads(record.value)) if record.value else ""
            assert not [w for w in words if w in text], f"{topic} still holds her name, address or profile text"


async def _topics_of(infrastructure: Infrastructure, namespace: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=infrastructure.kafka)
    await admin.start()
    try:
        return sorted(t for t in await admin.list_topics() if t.startswith(f"{namespace}."))
    finally:
        await admin.close()
