"""Document-store helpers shared by stores: leases on due documents.

Only features FerretDB 1.24 supports are used (no transactions, change streams or TTL indexes).
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the store returns naive UTC; compare with `as_utc`)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A datetime read back from the store, made timezone-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def claim_due(collection: AsyncCollection, field: str, lease: timedelta) -> dict[str, Any] | None:
    """Atomically take the most overdue document whose `field` time has passed.

    The claim pushes `field` forward by the lease, so a worker that dies mid-task releases
    the document by simply letting the lease run out; no lock table is needed.
    """
    now = utcnow()
    return await collection.find_one_and_update(
        {field: {"$lte": now}},
        {"$set": {field: now + lease}},
        sort=[(field, ASCENDING)],
        return_document=ReturnDocument.AFTER,
    )
