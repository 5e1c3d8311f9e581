"""Document-store helpers shared by stores: leases on due documents.

Only features FerretDB 1.24 supports are used (no transactions, change streams or TTL indexes).
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the store returns naive UTC; compare with `as_utc`)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A datetime read back from the store, made timezone-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def claim_due(collection: AsyncCollection, field: str, lease: timedelta, limit: int) -> list[dict[str, Any]]:
    """Atomically take up to `limit` documents whose `field` time has passed.

    A claim pushes `field` forward by the lease, so a worker that dies mid-task releases the
    document by simply letting the lease run out; no lock table is needed. One query finds the
    candidates (FerretDB answers range queries by scanning, so it is done once per batch), then each
    is claimed only if its due time is still the one we saw: a competing worker's claim wins.
    """
    now = utcnow()
    candidates = await collection.find({field: {"$lte": now}}, {field: 1}).limit(limit).to_list()

    async def claim(candidate: dict[str, Any]) -> dict[str, Any] | None:
        return await collection.find_one_and_update(
            {"_id": candidate["_id"], field: candidate[field]},
            {"$set": {field: now + lease}},
            return_document=ReturnDocument.AFTER,
        )

    # Side by side: each is one short write, and waiting for them one after another is what costs.
    return [document for document in await asyncio.gather(*map(claim, candidates)) if document is not None]
