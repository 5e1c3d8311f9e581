"""Kafka stopped while interests keep arriving: every one is accepted, and none is lost once it is back."""

import asyncio

import pytest

from aimms_deploy.local_stack import LocalStack

from .conftest import Infrastructure, Platform, eventually, interest_of, mails_to

pytestmark = pytest.mark.integration


@pytest.fixture
def local_kafka(infrastructure: Infrastructure) -> LocalStack:
    """The local stack, when the Kafka under test is the one it runs (so the test may stop it)."""
    stack = LocalStack()
    [kafka] = stack.status(["kafka"])
    if kafka.state != "running" or kafka.endpoint != infrastructure.kafka:
        pytest.skip(f"Kafka at {infrastructure.kafka} is not run by `aimms local`, so this test cannot stop it")
    return stack


async def test_interests_keep_arriving_while_kafka_is_down_and_none_is_lost(
    platform: Platform, infrastructure: Infrastructure, local_kafka: LocalStack
) -> None:
    people = [interest_of(platform.namespace, f"person{i}") for i in range(5)]
    await platform.registration.post("/interests", json=people[0])
    await eventually(lambda: mails_to(infrastructure, people[0]["email"]))

    await asyncio.to_thread(local_kafka.stop, ["kafka"])
    try:
        responses = [await platform.registration.post("/interests", json=person) for person in people[1:]]
        readiness = await platform.registration.get("/readyz")
    finally:
        await asyncio.to_thread(local_kafka.start, ["kafka"])

    assert [r.status_code for r in responses] == [201] * 4, "registration must accept interests without Kafka"
    assert readiness.status_code == 503
    assert readiness.json()["checks"]["kafka"].startswith("unavailable")
    for person in people:
        await eventually(lambda person=person: mails_to(infrastructure, person["email"]), timeout=120)
    await asyncio.sleep(2)  # room for any duplicate to show up
    assert [len(mails_to(infrastructure, p["email"])) for p in people] == [1] * 5
