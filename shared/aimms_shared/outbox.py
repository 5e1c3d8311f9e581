"""Transactional outbox without transactions.

A use case stores the events it raises *inside* the aggregate document it changes, in the same
single-document write (atomic in MongoDB and FerretDB alike). The store then hands the document to
its process's relay, which publishes each event with an idempotent, acks=all producer and removes it
only after Kafka acknowledged it. A relay that dies after publishing but before removing leaves the
event in place: it is published again, and consumers drop the copy by its `event_id`. A document
nobody published (its writer stopped first) is found by any relay's periodic search once the
writer's grace has passed. Nothing is ever removed unpublished. See docs/outbox.md.
"""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from pymongo import ASCENDING, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection

from aimms_shared.errors import Conflict
from aimms_shared.events import Envelope, Event, Topic, wrap
from aimms_shared.mongo import GroupedWrites, claim_due, utcnow
from aimms_shared.retry import backoff_delay
from aimms_shared.wakeup import Wakeup

T = TypeVar("T")

OUTBOX = "outbox"
OUTBOX_DUE = "outbox_due"
# Documents published at once; their events go out concurrently.
CLAIM_BATCH = 50
# Before each pass the relay lets concurrent writes land, so they are published together.
GATHER_SECONDS = 0.05
# A document handed to its writer's relay stays out of every relay's search this long: the writer's
# relay publishes it without a search or a claim, and were the writer to stop first, any relay takes
# it over afterwards.
HANDOVER_GRACE = timedelta(seconds=5)

OutboxEntry = dict[str, Any]
Publish = Callable[[OutboxEntry], Awaitable[None]]

log = structlog.get_logger(__name__)


def outbox_entry(event: Event, envelope: Envelope) -> OutboxEntry:
    """An event as stored in an outbox: ready-made topic, key, value and headers.

    The value is kept as a JSON string so payload keys never meet the store's key restrictions.
    """
    return {
        "event_id": str(envelope.event_id),
        "event_type": envelope.event_type,
        "topic": event.topic.name,
        "key": event.key(),
        "value": envelope.encode().decode(),
        "headers": envelope.headers(),
    }


def outbox_entries(events: Sequence[Event], institution_id: str | None = None, *, producer: str) -> list[OutboxEntry]:
    """Events a use case raised, each in its envelope (correlated with what caused it), for a store's outbox."""
    return [outbox_entry(e, wrap(e, producer=producer, institution_id=institution_id)) for e in events]


def outbox_tombstone(topic: Topic, key: str) -> OutboxEntry:
    """A tombstone (null value) for a key of a compacted topic: Kafka forgets the key's records."""
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "tombstone",
        "topic": topic.name,
        "key": key,
        "value": None,
        "headers": {},
    }


class ConcurrentUpdate(Conflict):
    """The aggregate changed since it was read: reload it and decide again."""

    code = "concurrent-update"
    title = "Changed by someone else meanwhile"


async def on_latest(attempt: Callable[[], Awaitable[T]], *, what: str, attempts: int = 5) -> T:
    """Optimistic concurrency: `attempt` loads an aggregate, decides, and saves at the version it read; when
    someone saved in between (ConcurrentUpdate), it runs again on the newer state."""
    for _ in range(attempts):
        try:
            return await attempt()
        except ConcurrentUpdate:
            continue
    raise ConcurrentUpdate(f"{what} keeps changing; try again")


class Outbox:
    """How a store writes the events it raises beside its change, and gets them published.

    A store writes a new aggregate with `insert`, and appends events to one with `update` (its
    operators from `push`) or `save`. With the relay of a running service, the written
    document is left out of searches for `handover_grace` and handed to that relay, which publishes at
    once. Without a relay (a script seeding data), documents are due at once, for a running
    service's relay to find.
    """

    def __init__(self, relay: "OutboxRelay | None" = None, *, handover_grace: timedelta = HANDOVER_GRACE) -> None:
        self._relay = relay
        self._handover_grace = handover_grace
        # One per collection (by its client and name; each holds its collection, so the client's id stays its own).
        self._writes: dict[tuple[int, str], GroupedWrites] = {}

    async def insert(
        self, collection: AsyncCollection, document: dict[str, Any], events: Sequence[OutboxEntry]
    ) -> None:
        """Insert a new aggregate document with the events it raised, and have them published
        (raises `DuplicateKeyError` as `insert_one` would)."""
        stored = document | {OUTBOX: list(events), OUTBOX_DUE: self._due()}
        await self._grouped(collection).insert(stored)
        self._written(collection, stored)

    async def append(
        self, collection: AsyncCollection, document_id: str, update: dict[str, Any], events: Sequence[OutboxEntry]
    ) -> None:
        """Apply `update` (without `$push`) to an aggregate document that exists, appending `events`, in a
        write sent together with others that coincide, and have the events published.

        Nothing is read back: the relay is handed these events alone, and clears the outbox only if they are
        all it holds. For a document none of whose events still wait, such as a notification's one closing
        event: an older event still waiting would go out after these, found by the search; where order
        matters, `update` reads the whole outbox back.
        """
        pushed = self.push(events)
        operators = update | {"$push": pushed["$push"], "$set": update.get("$set", {}) | pushed["$set"]}
        await self._grouped(collection).update(document_id, operators)
        self._written(collection, {"_id": document_id, OUTBOX: list(events), OUTBOX_DUE: pushed["$set"][OUTBOX_DUE]})

    def _grouped(self, collection: AsyncCollection) -> GroupedWrites:
        key = (id(collection.database.client), collection.full_name)
        writes = self._writes.get(key)
        if writes is None:
            writes = self._writes[key] = GroupedWrites(collection)
        return writes

    async def update(
        self, collection: AsyncCollection, query: dict[str, Any], update: dict[str, Any], *, upsert: bool = False
    ) -> bool:
        """Apply an update that appended events (`push`) to the one document `query` matches, and have
        them published; False if no document matched."""
        # The whole document: FerretDB 1.24 has no projection on findAndModify.
        after = await collection.find_one_and_update(query, update, upsert=upsert, return_document=ReturnDocument.AFTER)
        if after is None:
            return False
        self._written(collection, after)
        return True

    def push(self, entries: Sequence[OutboxEntry]) -> dict[str, Any]:
        """Update operators appending `entries` to an existing aggregate document's outbox."""
        return {"$push": {OUTBOX: {"$each": list(entries)}}, "$set": {OUTBOX_DUE: self._due()}}

    def _written(self, collection: AsyncCollection, document: dict[str, Any]) -> None:
        # The document as the write left it (its id, outbox and due time): publish now.
        if self._relay is not None:
            self._relay.hand_over(collection, document)

    async def save(
        self,
        collection: AsyncCollection,
        document: dict[str, Any],
        *,
        expected_version: int,
        events: Sequence[OutboxEntry] = (),
    ) -> None:
        """Store a changed aggregate `document` (by its `_id`) and append `events` in one write, only if
        nobody saved since we read it.

        Every aggregate document carries a `version`; the write matches on the version that was read
        and increments it, so of two concurrent decisions on the same state only the first is stored.
        """
        changes = {name: value for name, value in document.items() if name not in ("_id", "version")}
        query = {"_id": document["_id"], "version": expected_version}
        update: dict[str, Any] = self.push(events) if events else {"$set": {}}
        update["$set"] |= changes
        update["$inc"] = {"version": 1}
        saved = await self.update(collection, query, update) if events else await _updated(collection, query, update)
        if not saved:
            raise ConcurrentUpdate(f"{collection.name} {document['_id']} is no longer at version {expected_version}")

    def _due(self) -> datetime:
        due = utcnow() + self._handover_grace if self._relay is not None else utcnow()
        # As the store keeps it (milliseconds), so the relay's write can match the due time it was handed.
        return due.replace(microsecond=due.microsecond // 1000 * 1000)


async def _updated(collection: AsyncCollection, query: dict[str, Any], update: dict[str, Any]) -> bool:
    return (await collection.update_one(query, update)).matched_count == 1


async def ensure_outbox_index(collection: AsyncCollection) -> None:
    """Index the due time so the relay finds pending documents without a scan."""
    await collection.create_index([(OUTBOX_DUE, ASCENDING)])


async def outbox_backlog(collection: AsyncCollection) -> int:
    """Events waiting in a collection's outboxes (summed in the store: it can count)."""
    rows = await (
        await collection.aggregate(
            [{"$match": {OUTBOX_DUE: {"$exists": True}}}, {"$unwind": f"${OUTBOX}"}, {"$count": "n"}]
        )
    ).to_list()
    return rows[0]["n"] if rows else 0


class OutboxRelay:
    """Publishes pending outbox events from a service's aggregate collections, in order."""

    def __init__(
        self,
        collections: Sequence[AsyncCollection],
        publish: Publish,
        *,
        lease: timedelta,
        idle_seconds: float = HANDOVER_GRACE.total_seconds(),
        max_backoff_seconds: float = 15.0,
    ) -> None:
        self._collections = list(collections)
        self._publish = publish
        self._lease = lease
        self._idle_seconds = idle_seconds
        self._max_backoff = max_backoff_seconds
        self._wakeup = Wakeup()
        self._handed: dict[tuple[str, str], tuple[AsyncCollection, dict[str, Any]]] = {}

    def hand_over(self, collection: AsyncCollection, document: dict[str, Any]) -> None:
        """Publish the events of a document its writer stored moments ago (its id, outbox and due time)."""
        self._handed[(collection.name, document["_id"])] = (collection, document)  # the newest write wins
        self._wakeup.set()

    async def run(self) -> None:
        """Relay until cancelled: documents handed over at once, and a search for due ones every
        `idle_seconds` (what a stopped writer or a script left); back off while Kafka or the store is
        unavailable. The search is rare because it is dear (FerretDB reads every document of every outbox
        collection to answer it) and what a running writer stores never waits for it."""
        loop = asyncio.get_running_loop()
        failures = 0
        next_search = 0.0
        while True:
            await asyncio.sleep(GATHER_SECONDS)
            try:
                published = await self.publish_handed()
                if loop.time() >= next_search:
                    next_search = loop.time() + self._idle_seconds
                    published += await self.drain()
            except Exception as exc:  # noqa: BLE001 - any failure is retried, nothing is dropped
                failures += 1
                next_search = 0.0  # what failed was handed back to the search
                delay = backoff_delay(0.25, failures, self._max_backoff)
                log.warning("outbox.relay_failed", error=repr(exc), retry_in_seconds=delay)
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("outbox.relay_recovered", after_failures=failures)
                failures = 0
            if not published and not self._handed:
                await self._wakeup.sleep(max(0.0, next_search - loop.time()))

    async def publish_handed(self) -> int:
        """Publish the documents handed over so far, without searching or claiming; how many events."""
        published = 0
        while self._handed:
            batch = [self._handed.pop(key) for key in list(self._handed)[:CLAIM_BATCH]]
            by_collection: dict[str, tuple[AsyncCollection, list[dict[str, Any]]]] = {}
            for collection, document in batch:
                by_collection.setdefault(collection.name, (collection, []))[1].append(document)
            counts = await asyncio.gather(*(self._publish_batch(c, docs) for c, docs in by_collection.values()))
            published += sum(counts)
        return published

    async def drain(self) -> int:
        """Claim and publish every pending event that is due now; return how many were published."""
        published = 0
        for collection in self._collections:
            full = True
            while full:
                documents = await claim_due(collection, OUTBOX_DUE, self._lease, CLAIM_BATCH)
                published += await self._publish_batch(collection, documents) if documents else 0
                full = len(documents) == CLAIM_BATCH  # a short batch: nothing else was due
        return published

    async def _publish_batch(self, collection: AsyncCollection, documents: list[dict[str, Any]]) -> int:
        """Publish documents side by side, each one's events in order (per-aggregate order is kept), then
        record what went out for all of them in one write; how many events went out."""
        outcomes = await asyncio.gather(
            *(self._publish_entries(collection, d) for d in documents), return_exceptions=True
        )
        done = [(d, sent) for d, sent in zip(documents, outcomes, strict=True) if not isinstance(sent, BaseException)]
        if done:
            await self._record_published(collection, done)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome  # after the others were recorded
        return sum(len(sent) for _, sent in done)

    async def _publish_entries(self, collection: AsyncCollection, document: dict[str, Any]) -> list[OutboxEntry]:
        published: list[OutboxEntry] = []
        try:
            for entry in document.get(OUTBOX, []):
                await self._publish(entry)
                published.append(entry)
        except Exception:
            # Drop what went out and hand the document straight back to the search instead of waiting.
            update: dict[str, Any] = {"$set": {OUTBOX_DUE: utcnow()}}
            if published:
                update["$pullAll"] = {OUTBOX: published}
            await collection.update_one({"_id": document["_id"]}, update)
            raise
        return published

    async def _record_published(
        self, collection: AsyncCollection, done: list[tuple[dict[str, Any], list[OutboxEntry]]]
    ) -> None:
        # Exact entries, not a condition (FerretDB 1.24's $pull matches whole values only), in one write per
        # document that also ends its claim, unless the outbox holds more than was read: a use case appended
        # events since (and so moved the due time), or the relay was handed only the newest (`append`). Then
        # the rest stays, for that write's own hand-over or the search. A crash before this write publishes
        # the entries again; consumers drop the copies.
        def finished(document: dict[str, Any], sent: list[OutboxEntry]) -> UpdateOne:
            update: dict[str, Any] = {"$unset": {OUTBOX_DUE: ""}} | ({"$pullAll": {OUTBOX: sent}} if sent else {})
            read = {"_id": document["_id"], OUTBOX_DUE: document[OUTBOX_DUE]}
            return UpdateOne(read | {OUTBOX: {"$size": len(document.get(OUTBOX, []))}}, update)

        result = await collection.bulk_write([finished(d, sent) for d, sent in done], ordered=False)
        if result.matched_count < len(done):  # some changed meanwhile: remove what went out of each (a no-op if done)
            pulls = [UpdateOne({"_id": d["_id"]}, {"$pullAll": {OUTBOX: sent}}) for d, sent in done if sent]
            if pulls:
                await collection.bulk_write(pulls, ordered=False)
