"""Aggregates and their events are stored in one write, guarded by an optimistic version."""

import pytest
from pymongo import AsyncMongoClient

from aimms_shared.contracts.notifications import NotificationSent
from aimms_shared.events import wrap
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import OUTBOX, OUTBOX_DUE, ConcurrentUpdate, outbox_entry, save_aggregate

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
        await save_aggregate(
            aggregates, "a-1", expected_version=1, changes={"status": "sent"}, events=[sent_event("a-1")]
        )
        saved = await aggregates.find_one({"_id": "a-1"})
        assert (saved["status"], saved["version"], len(saved[OUTBOX])) == ("sent", 2, 1)
        assert OUTBOX_DUE in saved

        with pytest.raises(ConcurrentUpdate):  # a writer that read version 1 decides too late
            await save_aggregate(
                aggregates, "a-1", expected_version=1, changes={"status": "failed"}, events=[sent_event("a-1")]
            )
        unchanged = await aggregates.find_one({"_id": "a-1"})
        assert (unchanged["status"], unchanged["version"], len(unchanged[OUTBOX])) == ("sent", 2, 1)
    finally:
        await client.close()
