"""The notifications store: the only code that talks to notifications' database.

Collections: `notifications` (one document per message, its delivery state and its outbox),
and the read models messages are written from: `contacts` (the latest ParticipantContact per
participant, or a marker that she was erased or withdrew), `programmes` and `institutions`.
No message body is stored: a message is rendered when it is sent.
"""

import contextlib
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_notifications.domain import Contact, Known, Notification, Programme
from aimms_shared.mongo import claim_due, utcnow
from aimms_shared.outbox import OutboxEntry, outbox_push

NOTIFICATIONS = "notifications"
CONTACTS = "contacts"
PROGRAMMES = "programmes"
INSTITUTIONS = "institutions"
SEND_DUE = "send_due"
PENDING, SENT, FAILED, CANCELLED = "pending", "sent", "failed", "cancelled"
_NOTIFICATION_FIELDS = tuple(Notification.__dataclass_fields__)
LOG_LIMIT = 500


def as_notification(doc: dict[str, Any]) -> Notification:
    """The notification a stored document records."""
    return Notification(**{"notification_id": doc["_id"]} | {k: doc[k] for k in _NOTIFICATION_FIELDS[1:] if k in doc})


class NotificationStore:
    """Notifications and their delivery state; one document per (event, recipient, template)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._notifications = db[NOTIFICATIONS]
        self._contacts = db[CONTACTS]
        self._programmes = db[PROGRAMMES]
        self._institutions = db[INSTITUTIONS]

    async def ensure_indexes(self) -> None:
        """Index what the delivery worker, erasure and the delivery log look up."""
        await self._notifications.create_index([(SEND_DUE, ASCENDING)])
        await self._notifications.create_index([("source_event_id", ASCENDING)])
        await self._notifications.create_index([("recipient_id", ASCENDING), ("created_at", DESCENDING)])
        await self._notifications.create_index([("programme_id", ASCENDING), ("created_at", DESCENDING)])
        await self._notifications.create_index([("waiting_for", ASCENDING)])

    # -- notifications

    async def add(self, notification: Notification, *, message_id: str, details_deadline: datetime) -> bool:
        """Record a notification to send; False if it was already recorded (a redelivery)."""
        now = utcnow()
        doc = {k: v for k, v in asdict(notification).items() if v is not None and k != "notification_id"} | {
            "_id": notification.notification_id,
            "message_id": message_id,
            "status": PENDING,
            "attempts": 0,
            "created_at": now,
            "details_deadline": details_deadline,
            SEND_DUE: now,
        }
        try:
            await self._notifications.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def claim_due(self, lease: timedelta, limit: int) -> list[dict[str, Any]]:
        """Take up to `limit` pending notifications whose send time has come."""
        return await claim_due(self._notifications, SEND_DUE, lease, limit)

    async def get(self, notification_id: str) -> dict[str, Any] | None:
        """One notification's record."""
        return await self._notifications.find_one({"_id": notification_id})

    async def delivery_log(
        self, *, source_event_id: str | None, participant_id: str | None, programme_id: str | None
    ) -> list[dict[str, Any]]:
        """Notifications matching every filter given, newest first (at most LOG_LIMIT)."""
        query = {
            k: v
            for k, v in {
                "source_event_id": source_event_id,
                "recipient_id": participant_id,
                "programme_id": programme_id,
            }.items()
            if v is not None
        }
        return await self._notifications.find(query).sort("created_at", DESCENDING).limit(LOG_LIMIT).to_list()

    async def mark_sent(self, notification_id: str, events: list[OutboxEntry]) -> None:
        """Delivered: no longer due, with NotificationSent in the same write."""
        update = outbox_push(events)
        update["$set"] |= {"status": SENT, "sent_at": utcnow()}
        update["$unset"] = {SEND_DUE: "", "waiting_for": "", "waiting_due": ""}
        update["$inc"] = {"attempts": 1}
        await self._notifications.update_one({"_id": notification_id}, update)

    async def mark_retry(self, notification_id: str, error: str, due: datetime) -> None:
        """A temporary failure: try again at `due`."""
        await self._notifications.update_one(
            {"_id": notification_id, "status": PENDING},
            {
                "$set": {SEND_DUE: due, "last_error": error},
                "$unset": {"waiting_for": "", "waiting_due": ""},
                "$inc": {"attempts": 1},
            },
        )

    async def mark_waiting(self, notification_id: str, missing: list[str], due: datetime) -> None:
        """Details are missing: look again at `due`, or sooner when they arrive (`wake_waiting`)."""
        await self._notifications.update_one(
            {"_id": notification_id, "status": PENDING},
            {"$set": {SEND_DUE: due, "waiting_due": due, "waiting_for": missing}, "$inc": {"detail_checks": 1}},
        )

    async def mark_failed(self, notification_id: str, error: str, events: list[OutboxEntry]) -> None:
        """Given up: recorded as failed, with NotificationFailed in the same write."""
        update = outbox_push(events)
        update["$set"] |= {"status": FAILED, "last_error": error, "failed_at": utcnow()}
        update["$unset"] = {SEND_DUE: ""}
        update["$inc"] = {"attempts": 1}
        await self._notifications.update_one({"_id": notification_id, "status": PENDING}, update)

    async def mark_cancelled(self, notification_id: str, reason: str) -> None:
        """Not to be sent (recipient erased or withdrawn)."""
        await self._notifications.update_one({"_id": notification_id, "status": PENDING}, _cancel(reason))

    async def cancel_pending_to(self, participant_id: str, reason: str) -> int:
        """Cancel every message still waiting to go to a participant; how many were cancelled."""
        result = await self._notifications.update_many(
            {"recipient_id": participant_id, "status": PENDING}, _cancel(reason)
        )
        return result.modified_count

    async def wake_waiting(self, key: str) -> int:
        """Make notifications waiting for `key` (e.g. `participant:<id>`) due now; how many woke.

        Only a notification still resting at the due time its wait set is woken: one a worker has
        claimed meanwhile carries the lease's due time instead and must not be taken twice.
        """
        woken = 0
        now = utcnow()
        async for doc in self._notifications.find(
            {"waiting_for": key, "status": PENDING}, {SEND_DUE: 1, "waiting_due": 1}
        ):
            if doc.get(SEND_DUE) is not None and doc.get(SEND_DUE) == doc.get("waiting_due"):
                result = await self._notifications.update_one(
                    {"_id": doc["_id"], SEND_DUE: doc[SEND_DUE]}, {"$set": {SEND_DUE: now}}
                )
                woken += result.modified_count
        return woken

    # -- read models

    async def record_contact(self, contact: Contact, as_of: datetime) -> bool:
        """Keep the latest contact details; never over an erasure or newer details. True if stored."""
        with contextlib.suppress(DuplicateKeyError):  # erased, or newer details already held
            result = await self._contacts.update_one(
                {
                    "_id": contact.participant_id,
                    "erased": {"$ne": True},
                    "$or": [{"as_of": {"$exists": False}}, {"as_of": {"$lte": as_of}}],
                },
                {"$set": asdict(contact) | {"as_of": as_of}},
                upsert=True,
            )
            return result.upserted_id is not None or result.matched_count > 0
        return False

    async def erase_contact(self, participant_id: str) -> None:
        """Forget her details; keep only the fact of erasure, so a late copy of them is refused."""
        await self._contacts.replace_one(
            {"_id": participant_id}, {"_id": participant_id, "erased": True, "erased_at": utcnow()}, upsert=True
        )

    async def mark_withdrawn(self, participant_id: str) -> None:
        """She left the programme: nothing more is sent to her."""
        await self._contacts.update_one(
            {"_id": participant_id}, {"$set": {"withdrawn": True, "withdrawn_at": utcnow()}}, upsert=True
        )

    async def contact(self, participant_id: str) -> dict[str, Any] | None:
        """The contact record of a participant (details, or the erasure marker)."""
        return await self._contacts.find_one({"_id": participant_id})

    async def record_programme(self, programme: Programme, as_of: datetime) -> None:
        """Keep the latest settings of a programme that messages mention."""
        with contextlib.suppress(DuplicateKeyError):
            await self._programmes.update_one(
                {"_id": programme.programme_id, "$or": [{"as_of": {"$exists": False}}, {"as_of": {"$lte": as_of}}]},
                {"$set": asdict(programme) | {"as_of": as_of}},
                upsert=True,
            )

    async def record_institution(self, institution_id: str, name: str) -> None:
        """Keep an institution's name."""
        await self._institutions.update_one({"_id": institution_id}, {"$set": {"name": name}}, upsert=True)

    async def known(self, participant_ids: Iterable[str], programme_id: str) -> Known:
        """What the read models hold about these participants, their institutions and the programme."""
        contacts: dict[str, Contact] = {}
        erased, withdrawn = set(), set()
        async for doc in self._contacts.find({"_id": {"$in": sorted(set(participant_ids))}}):
            if doc.get("erased"):
                erased.add(doc["_id"])
                continue
            if doc.get("withdrawn"):
                withdrawn.add(doc["_id"])
            if "email" in doc:
                contacts[doc["_id"]] = Contact(**{k: doc[k] for k in Contact.__dataclass_fields__})
        programme_doc = await self._programmes.find_one({"_id": programme_id})
        programme = (
            Programme(**{k: programme_doc[k] for k in Programme.__dataclass_fields__}) if programme_doc else None
        )
        institution_ids = sorted({c.institution_id for c in contacts.values()})
        institutions = {
            doc["_id"]: doc["name"] async for doc in self._institutions.find({"_id": {"$in": institution_ids}})
        }
        return Known(contacts, frozenset(erased), frozenset(withdrawn), programme, institutions)


def _cancel(reason: str) -> dict[str, Any]:
    return {
        "$set": {"status": CANCELLED, "cancelled_at": utcnow(), "last_error": reason},
        "$unset": {SEND_DUE: "", "waiting_for": "", "waiting_due": ""},
    }
