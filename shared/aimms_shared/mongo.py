"""Document-store helpers shared by stores: leases on due documents, writes sent together.

Only features FerretDB 1.24 supports are used (no transactions, change streams or TTL indexes).
"""

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pymongo import InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

# Writes sent by one bulk_write at most.
WRITE_BATCH = 100

T = TypeVar("T")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (the store returns naive UTC; compare with `as_utc`)."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """A datetime read back from the store, made timezone-aware."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def from_document(target: type[T], doc: dict[str, Any], id_field: str | None = None, **overrides: Any) -> T:
    """A frozen dataclass from a stored (or embedded) document: `_id` as `id_field`, like-named keys (lists
    as tuples, datetimes as aware UTC), plus `overrides` for the fields stored in another form."""
    names = {f.name for f in dataclasses.fields(target)} - overrides.keys()  # type: ignore[arg-type]
    values = {name: _as_read(doc[name]) for name in names if name in doc}
    return target(**values | ({id_field: doc["_id"]} if id_field else {}), **overrides)


def _as_read(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(value)
    return as_utc(value) if isinstance(value, datetime) else value


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


class GroupedWrites:
    """Single-document writes to one collection, each awaited by its caller, sent together when they coincide.

    While one write is on its way, the writes issued meanwhile wait and then go as one unordered
    `bulk_write`: a lone write goes at once, and under load the batches grow. Every write is a
    transaction of its own in FerretDB's SQLite; twenty inserts in one command cost it a quarter of
    twenty single inserts, twenty updates two thirds. Each caller's write stands or falls alone: it
    gets `DuplicateKeyError` (or another `WriteError`) for its own write only. A bulk write reports
    no per-write result, so an update that matched nothing goes unnoticed: group only updates whose
    document is known to exist.
    """

    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection
        self._waiting: list[tuple[InsertOne[Any] | UpdateOne, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert(self, document: dict[str, Any]) -> None:
        """Insert `document` (with its `_id`); raises as `insert_one` would."""
        await self._write(InsertOne(document))

    async def update(self, document_id: Any, update: dict[str, Any]) -> None:
        """Apply `update` to the document `document_id`, which exists."""
        await self._write(UpdateOne({"_id": document_id}, update))

    async def _write(self, operation: InsertOne[Any] | UpdateOne) -> None:
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((operation, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_waiting())
        await written

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:WRITE_BATCH], self._waiting[WRITE_BATCH:]
            try:
                await self._collection.bulk_write([operation for operation, _ in batch], ordered=False)
            except BulkWriteError as exc:
                failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
                for index, (_, written) in enumerate(batch):
                    _settle(written, _write_error(failed[index]) if index in failed else None)
            except Exception as exc:  # noqa: BLE001 - each caller gets it, as a single write would raise it
                for _, written in batch:
                    _settle(written, exc)
            except BaseException as exc:  # cancelled: nobody is left waiting for an answer
                for _, written in batch + self._waiting:
                    _settle(written, exc)
                self._waiting = []
                raise
            else:
                for _, written in batch:
                    _settle(written, None)


def _write_error(error: dict[str, Any]) -> WriteError:
    kind = DuplicateKeyError if error.get("code") == 11000 else WriteError
    return kind(error.get("errmsg", "write failed"), error.get("code"), error)


def _settle(written: asyncio.Future[None], error: BaseException | None) -> None:
    if written.done():  # its caller was cancelled
        return
    if error is None:
        written.set_result(None)
    else:
        written.set_exception(error)
