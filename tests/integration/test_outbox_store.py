"""Aggregates and their events are stored in one write, guarded by an optimistic version."""

import asyncio

import pytest
from pymongo import AsyncMongoClient

from aimms_shared.contracts.notifications import NotificationSent
from aimms_shared.events import wrap
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import OUTBOX, OUTBOX_DUE, ConcurrentUpdate, Outbox, outbox_entry

from .conftest import Infrastructure

pytestmark = pytest.mark.integration


def sent_event(notification_id: str) -> dict:
    event = NotificationSent(notification_id=notification_id, template="welcome", source_event_id="e", sent_at=utcnow())
    return outbox_entry(event, wrap(event, producer="test"))


async def test_a_change_and_its_events_are_saved_together_and_stale_writers_are_refused(
    infrastructure: Infrastructure, namespace: str
) -> None:
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    aggregates = client[namespace]["aggregates"]
    await aggregates.insert_one({"_id": "a-1", "version": 1, "status": "pending", OUTBOX: []})
    try:
        await Outbox().save(
            aggregates, {"_id": "a-1", "status": "sent"}, expected_version=1, events=[sent_event("a-1")]
        )
        saved = await aggregates.find_one({"_id": "a-1"})
        assert (saved["status"], saved["version"], len(saved[OUTBOX])) == ("sent", 2, 1)
        assert OUTBOX_DUE in saved

        with pytest.raises(ConcurrentUpdate):  # a writer that read version 1 decides too late
            await Outbox().save(
                aggregates, {"_id": "a-1", "status": "failed"}, expected_version=1, events=[sent_event("a-1")]
            )
        unchanged = await aggregates.find_one({"_id": "a-1"})
        assert (unchanged["status"], unchanged["version"], len(unchanged[OUTBOX])) == ("sent", 2, 1)
    finally:
        await client.close()


async def test_of_concurrent_conditional_writes_to_one_document_exactly_one_wins(
    infrastructure: Infrastructure, namespace: str
) -> None:
    # The services rely on MongoDB's single-document atomicity (optimistic versions, held places); the local
    # store gives it through its write gate (deploy/local/ferretdb/gate.go), one per database.
    client: AsyncMongoClient = AsyncMongoClient(infrastructure.mongodb_uri, tz_aware=True)
    databases = [f"{namespace}_one", f"{namespace}_other"]
    collections = [client[name]["aggregates"] for name in databases]
    try:
        for collection in collections:
            await collection.insert_one({"_id": "a-1", "version": 1})
        results = await asyncio.gather(
            *(
                collection.update_one({"_id": "a-1", "version": 1}, {"$inc": {"version": 1}, "$set": {"by": i}})
                for i in range(20)
                for collection in collections
            )
        )
        assert sum(r.modified_count for r in results) == len(collections)  # one winner in each database
        assert [(await c.find_one({"_id": "a-1"}))["version"] for c in collections] == [2, 2]
    finally:
        for name in databases:
            await client.drop_database(name)
        await client.close()
