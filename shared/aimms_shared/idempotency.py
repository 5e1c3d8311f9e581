"""Idempotency keys on POST requests: a portal retrying after a timeout creates nothing twice.

The first request with a key reserves it, runs, and stores its response; a repeat with the same
key and the same body gets that response again; the same key with another body is refused. A
request that fails releases its key, so a corrected retry can proceed.

A crash can fall between a request's effect and the storing of its response. So the reservation
holds the id of what the request creates (`subject_id`), and every try of the key gets that same id:
a try after the crash finds its own record already made and answers with it, not with a conflict.
"""

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from aimms_shared.errors import Conflict, DomainError
from aimms_shared.mongo import as_utc, utcnow

HEADER = "Idempotency-Key"
# A reservation older than this belongs to a request that died mid-way: it may be taken over.
ABANDONED_AFTER = timedelta(seconds=60)


class IdempotencyKeyReused(DomainError):
    """The key was used before for a different request."""

    status = 422
    code = "idempotency-key-reused"
    title = "Idempotency key reused with a different request"


class RequestInProgress(Conflict):
    """The first request with this key has not finished."""

    code = "request-in-progress"
    title = "A request with this idempotency key is still in progress"


# Given the id its new record takes (the same on every try of one key), returns (status, body, subject id).
Handler = Callable[[str], Awaitable[tuple[int, dict[str, Any], str | None]]]


class IdempotencyKeys:
    """Stored responses of POST requests, by (caller, key)."""

    def __init__(self, collection: AsyncCollection, retention: timedelta = timedelta(days=1)) -> None:
        self._collection = collection
        self._retention = retention

    async def ensure_indexes(self) -> None:
        """Index what pruning and erasure look up."""
        await self._collection.create_index([("created_at", ASCENDING)])
        await self._collection.create_index([("subject_id", ASCENDING)])

    async def run(self, caller: str, key: str | None, request_body: Any, handler: Handler) -> JSONResponse:
        """Run `handler` once per (caller, key); it returns (status, body, id of the record created)."""
        if key is None:
            status, body, _ = await handler(str(uuid.uuid4()))
            return JSONResponse(body, status_code=status)
        record_id = f"{caller}:{key}"
        fingerprint = hashlib.sha256(json.dumps(request_body, sort_keys=True, default=str).encode()).hexdigest()
        reserved = await self._reserve(record_id, fingerprint)
        if reserved["state"] == "done":
            return JSONResponse(
                reserved["body"], status_code=reserved["status"], headers={"Idempotent-Replayed": "true"}
            )
        try:
            status, body, subject_id = await handler(reserved["subject_id"])
        except BaseException:
            # Released, not deleted: a retry may have another body (a corrected request) but keeps the subject
            # id, in case the failure came after the effect (a connection lost as the write was acknowledged).
            await self._collection.update_one({"_id": record_id, "state": "pending"}, {"$set": {"state": "released"}})
            raise
        await self._collection.update_one(
            {"_id": record_id},
            {"$set": {"state": "done", "status": status, "body": body, "subject_id": subject_id}},
        )
        return JSONResponse(body, status_code=status)

    async def forget_subject(self, subject_id: str) -> None:
        """Erasure: drop stored responses about a person."""
        await self._collection.delete_many({"subject_id": subject_id})

    async def prune(self) -> int:
        """Forget keys older than the retention."""
        result = await self._collection.delete_many({"created_at": {"$lt": utcnow() - self._retention}})
        return result.deleted_count

    async def _reserve(self, record_id: str, fingerprint: str) -> dict[str, Any]:
        """The key's record, pending for this try (or done: the response to replay)."""
        record = {
            "_id": record_id,
            "fingerprint": fingerprint,
            "state": "pending",
            "created_at": utcnow(),
            "subject_id": str(uuid.uuid4()),
        }
        try:
            await self._collection.insert_one(record)
            return record
        except DuplicateKeyError:
            existing = await self._collection.find_one({"_id": record_id})
        if existing is None:  # pruned meanwhile: try once more
            return await self._reserve(record_id, fingerprint)
        if existing["state"] != "released" and existing["fingerprint"] != fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key was used for a different request body")
        if existing["state"] == "done":
            return existing
        abandoned = utcnow() - as_utc(existing["created_at"]) > ABANDONED_AFTER
        if existing["state"] == "pending" and not abandoned:
            raise RequestInProgress("the first request with this Idempotency-Key has not finished; retry shortly")
        # Taken over, keeping its subject id, only if nobody else took it over meanwhile.
        taken = {"fingerprint": fingerprint, "state": "pending", "created_at": utcnow()}
        query = {"_id": record_id, "state": existing["state"], "created_at": existing["created_at"]}
        if (await self._collection.update_one(query, {"$set": taken})).modified_count == 0:
            raise RequestInProgress("the first request with this Idempotency-Key has not finished; retry shortly")
        return existing | taken
