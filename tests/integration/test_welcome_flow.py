"""The first real flow: interest expressed over HTTP → Kafka → the welcome email, exactly once."""

import json

import pytest
from aiokafka import AIOKafkaProducer

from aimms_shared.contracts.registration import INTERESTS
from aimms_shared.events import in_namespace

from .conftest import Infrastructure, Platform, bearer, eventually, interest_of, mails_to, metric, read_topic

pytestmark = pytest.mark.integration


async def test_an_expression_of_interest_reaches_her_inbox_as_the_welcome_email(
    platform: Platform, infrastructure: Infrastructure
) -> None:
    interest = interest_of(platform.namespace)

    response = await platform.registration.post("/interests", json=interest)

    assert response.status_code == 201, response.text
    interest_id = response.json()["interest_id"]
    [mail] = await eventually(lambda: mails_to(infrastructure, interest["email"]))
    assert mail["Subject"] == "Welcome to AIMMS Mentoring"
    assert mail["From"] == "AIMMS Mentoring <mentoring@aimms.test>"
    text = mail.get_body(("plain",)).get_content()
    assert "Dear Dr Amina Test" in text and "PRIVACY NOTICE" in text and "top three" in text
    assert mail.get_body(("html",)) is not None

    [record] = await read_topic(infrastructure, in_namespace(INTERESTS.name, platform.namespace), expect=1)
    envelope = json.loads(record.value)
    assert record.key == interest_id.encode()
    assert envelope["event_type"] == "InterestExpressed"
    assert envelope["payload"]["interest_id"] == interest_id
    assert dict(record.headers)["event_id"].decode() == envelope["event_id"]

    as_admin = bearer(platform.admin_token)
    query = {"source_event_id": envelope["event_id"]}
    deliveries = (await platform.notifications.get("/deliveries", params=query, headers=as_admin)).json()
    assert [(d["template"], d["status"]) for d in deliveries] == [("welcome", "sent")]
    assert mail["Message-ID"] == f"<{deliveries[0]['notification_id']}@aimms.local>"


async def test_a_redelivered_event_sends_nothing_more(platform: Platform, infrastructure: Infrastructure) -> None:
    interest = interest_of(platform.namespace)
    await platform.registration.post("/interests", json=interest)
    await eventually(lambda: mails_to(infrastructure, interest["email"]))
    topic = in_namespace(INTERESTS.name, platform.namespace)
    [record] = await read_topic(infrastructure, topic, expect=1)

    labels = {"topic": INTERESTS.name, "event_type": "InterestExpressed", "outcome": "processed"}
    before = metric(platform.notifications_app, "aimms_events_consumed_total", **labels)
    producer = AIOKafkaProducer(bootstrap_servers=infrastructure.kafka)
    await producer.start()
    try:  # the same message again, as Kafka redelivers after a consumer crash
        await producer.send_and_wait(topic, record.value, key=record.key, headers=list(record.headers))
    finally:
        await producer.stop()

    # Handled again, and it queues nothing: the welcome's id is derived from the event's.
    await eventually(lambda: metric(platform.notifications_app, "aimms_events_consumed_total", **labels) == before + 1)
    assert len(mails_to(infrastructure, interest["email"])) == 1


async def test_expressing_interest_twice_welcomes_her_once(platform: Platform, infrastructure: Infrastructure) -> None:
    interest = interest_of(platform.namespace)
    first = await platform.registration.post("/interests", json=interest)
    again = await platform.registration.post("/interests", json=interest | {"email": interest["email"].upper()})

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == {"interest_id": first.json()["interest_id"], "status": "already-received"}
    await eventually(lambda: mails_to(infrastructure, interest["email"]))
    await read_topic(infrastructure, in_namespace(INTERESTS.name, platform.namespace), expect=2, timeout=3)
    assert len(mails_to(infrastructure, interest["email"])) == 1


@pytest.mark.parametrize(
    ("change", "status", "problem_type"),
    [
        ({"email": "not-an-address"}, 422, "/problems/validation"),
        ({"name": ""}, 422, "/problems/validation"),
        ({"institution_id": "northgate"}, 422, "/problems/rule-broken"),  # another institution's portal
        ({"programme_id": "no-such-programme"}, 404, "/problems/not-found"),
        ({"surprise": "field"}, 422, "/problems/validation"),
    ],
)
async def test_bad_input_gets_a_problem_saying_what_was_wrong(
    platform: Platform, change: dict[str, str], status: int, problem_type: str
) -> None:
    response = await platform.registration.post("/interests", json=interest_of(platform.namespace) | change)

    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == problem_type
    assert response.json()["detail"]
