"""The notifications store: the only code that talks to notifications' database.

Collections: `notifications` (one document per message, its delivery state and its outbox),
and the read models messages are written from: `contacts` (the latest ParticipantContact per
participant, or a marker that she was erased or withdrew), `programmes`, `institutions` and
`proposals` (open proposals, for the coordinators' digest); `digests` (who receives a
programme's digest, and when it is next due), `preferences` (who refused optional mail) and `waits`
(which notifications wait for which details).
No message body is stored: a message is rendered when it is sent, and the per-message details it
is rendered from are purged after the retention period (`purge_details`).
"""

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_notifications.domain.compose import Contact, Known, Programme
from aimms_notifications.domain.delivery import Delivery
from aimms_notifications.domain.digest import DigestConfig, FailedDelivery, OpenProposal
from aimms_notifications.domain.messages import Notification
from aimms_shared.cache import RecentReads
from aimms_shared.mongo import GroupedWrites, as_utc, claim_due, from_document, utcnow
from aimms_shared.outbox import Outbox, OutboxEntry

NOTIFICATIONS = "notifications"
CONTACTS = "contacts"
PROGRAMMES = "programmes"
INSTITUTIONS = "institutions"
PROPOSALS = "proposals"
DIGESTS = "digests"
PREFERENCES = "preferences"
# Which notifications wait for which details (`participant:<id>` -> their ids): their arrival finds them by `_id`,
# where a query on `waiting_for` reads every notification in FerretDB, once per contact, programme or institution.
WAITS = "waits"
SEND_DUE = "send_due"
DIGEST_DUE = "digest_due"
PENDING, SENT, FAILED, CANCELLED, SKIPPED = "pending", "sent", "failed", "cancelled", "skipped"
FINISHED = [SENT, FAILED, CANCELLED, SKIPPED]
# What a notification keeps only for the retention period: what it is rendered from, its
# address (the welcome's) and error texts (which may quote an address).
PER_MESSAGE_DETAILS = ("context", "recipient_email", "recipient_name", "last_error", "waiting_for")
_NOTIFICATION_FIELDS = tuple(Notification.__dataclass_fields__)
LOG_LIMIT = 500


def pending_doc(
    notification: Notification, message_id: str, details_deadline: datetime, now: datetime, lease: timedelta
) -> dict[str, Any]:
    """A new notification as stored: pending, claimed by its creator for `lease`, empty fields left out."""
    return {k: v for k, v in asdict(notification).items() if v is not None and k != "notification_id"} | {
        "_id": notification.notification_id,
        "message_id": message_id,
        "status": PENDING,
        "attempts": 0,
        "created_at": now,
        "details_deadline": details_deadline,
        SEND_DUE: now + lease,
    }


def requeued(retried: Delivery, now: datetime) -> dict[str, Any]:
    """What a coordinator's retry sets on a failed notification: pending, due at once, fresh patience."""
    return {
        "status": PENDING,
        SEND_DUE: now,
        "attempts": retried.attempts,
        "detail_checks": retried.detail_checks,
        "details_deadline": retried.details_deadline,
        "retried_at": now,
    }


def as_notification(doc: dict[str, Any]) -> Notification:
    """The notification a stored document records."""
    return Notification(**{"notification_id": doc["_id"]} | {k: doc[k] for k in _NOTIFICATION_FIELDS[1:] if k in doc})


def as_delivery(doc: dict[str, Any]) -> Delivery:
    """Where the delivery of the notification a stored document records stands."""
    return Delivery(
        notification_id=doc["_id"],
        message_id=doc["message_id"],
        details_deadline=as_utc(doc["details_deadline"]),
        status=doc["status"],
        attempts=doc.get("attempts", 0),
        detail_checks=doc.get("detail_checks", 0),
        details_purged="purged_at" in doc,
    )


class NotificationStore:
    """Notifications and their delivery state; one document per (event, recipient, template)."""

    def __init__(self, db: AsyncDatabase, outbox: Outbox | None = None) -> None:
        self._outbox = outbox or Outbox()
        # Every message reads its programme; another replica's update of it shows within REFERENCE_SECONDS.
        self._recent_programmes = RecentReads[Programme]()
        self._recent_institutions = RecentReads[str]()  # their names, likewise read for most messages
        self._notifications = db[NOTIFICATIONS]
        self._inserts = GroupedWrites(self._notifications)  # an event's burst of messages, one write
        self._contacts = db[CONTACTS]
        self._programmes = db[PROGRAMMES]
        self._institutions = db[INSTITUTIONS]
        self._proposals = db[PROPOSALS]
        self._digests = db[DIGESTS]
        self._preferences = db[PREFERENCES]
        self._waits = db[WAITS]

    async def ensure_indexes(self) -> None:
        """Index what the delivery worker, erasure, the delivery log, the digest and the purge look up."""
        await self._notifications.create_index([(SEND_DUE, ASCENDING)])
        await self._notifications.create_index([("created_at", ASCENDING)])
        await self._proposals.create_index([("programme_id", ASCENDING)])
        await self._proposals.create_index([("mentee_id", ASCENDING)])
        await self._proposals.create_index([("mentor_id", ASCENDING)])
        await self._digests.create_index([(DIGEST_DUE, ASCENDING)])
        await self._notifications.create_index([("source_event_id", ASCENDING)])
        await self._notifications.create_index([("recipient_id", ASCENDING), ("created_at", DESCENDING)])
        await self._notifications.create_index([("programme_id", ASCENDING), ("created_at", DESCENDING)])
        await self._notifications.create_index([("waiting_for", ASCENDING)])

    # -- notifications

    async def add(
        self, notification: Notification, *, message_id: str, details_deadline: datetime, lease: timedelta
    ) -> dict[str, Any] | None:
        """Record a notification to send, already claimed by the caller for `lease`; the stored document,
        or None if it was already recorded (a redelivery)."""
        doc = pending_doc(notification, message_id, details_deadline, utcnow(), lease)
        try:
            await self._inserts.insert(doc)
        except DuplicateKeyError:
            return None
        return doc

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
        """Delivered: no longer due, with NotificationSent in the same write (sent together with the other
        deliveries of the moment)."""
        update = {
            "$set": {"status": SENT, "sent_at": utcnow()},
            "$unset": {SEND_DUE: "", "waiting_for": "", "waiting_due": ""},
            "$inc": {"attempts": 1},
        }
        await self._outbox.append(self._notifications, notification_id, update, events)

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
        for key in missing:  # first, so details arriving once it waits find it
            for _ in range(2):  # two first waits for one key may both insert: the second then adds to the first's
                with contextlib.suppress(DuplicateKeyError):
                    await self._waits.update_one(
                        {"_id": key}, {"$addToSet": {"notification_ids": notification_id}}, upsert=True
                    )
                    break
        await self._notifications.update_one(
            {"_id": notification_id, "status": PENDING},
            {"$set": {SEND_DUE: due, "waiting_due": due, "waiting_for": missing}, "$inc": {"detail_checks": 1}},
        )

    async def mark_failed(self, notification_id: str, error: str, events: list[OutboxEntry]) -> None:
        """Given up: recorded as failed, with NotificationFailed in the same write."""
        update = self._outbox.push(events)
        update["$set"] |= {"status": FAILED, "last_error": error, "failed_at": utcnow()}
        update["$unset"] = {SEND_DUE: ""}
        update["$inc"] = {"attempts": 1}
        await self._outbox.update(self._notifications, {"_id": notification_id, "status": PENDING}, update)

    async def requeue_failed(self, retried: Delivery, now: datetime) -> bool:
        """A failed notification a coordinator retries, pending again as `retried` and due at `now`; False if
        it is no longer failed (retried by someone else meanwhile) or its details were purged.

        `last_error` stays, as history, until the next attempt replaces it; `retried_at` records the retry.
        """
        result = await self._notifications.update_one(
            {"_id": retried.notification_id, "status": FAILED, "purged_at": {"$exists": False}},
            {"$set": requeued(retried, now), "$unset": {"failed_at": "", "waiting_for": "", "waiting_due": ""}},
        )
        return result.matched_count == 1

    async def mark_skipped(self, notification_id: str, reason: str) -> None:
        """An optional message the recipient refused: recorded as skipped, never sent."""
        await self._notifications.update_one(
            {"_id": notification_id, "status": PENDING},
            {
                "$set": {"status": SKIPPED, "skipped_at": utcnow(), "last_error": reason},
                "$unset": {SEND_DUE: "", "waiting_for": "", "waiting_due": ""},
            },
        )

    async def failed_since(self, programme_id: str, since: datetime) -> list[FailedDelivery]:
        """Messages of a programme given up on since `since`."""
        docs = self._notifications.find({"programme_id": programme_id, "status": FAILED, "failed_at": {"$gte": since}})
        return [
            FailedDelivery(d["template"], d.get("recipient_id"), d["failed_at"], d.get("last_error", ""))
            async for d in docs
        ]

    async def purge_details(self, created_before: datetime) -> int:
        """Drop the per-message details of finished notifications created before a time; how many."""
        result = await self._notifications.update_many(
            {"created_at": {"$lt": created_before}, "status": {"$in": FINISHED}, "purged_at": {"$exists": False}},
            {"$set": {"purged_at": utcnow()}, "$unset": dict.fromkeys(PER_MESSAGE_DETAILS, "")},
        )
        return result.modified_count

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
        # Nothing waits for it, mostly: a read tells at the cost of a lookup by `_id`, where even a delete that
        # finds nothing is a write, and FerretDB (through the local gate) runs one write of a database at a time.
        if await self._waits.find_one({"_id": key}, {"_id": 1}) is None:
            return 0
        waits = await self._waits.find_one_and_delete({"_id": key})
        if waits is None:  # woken meanwhile by another copy of the details
            return 0
        woken = 0
        now = utcnow()
        for notification_id in waits["notification_ids"]:
            doc = await self._notifications.find_one(
                {"_id": notification_id, "waiting_for": key, "status": PENDING}, {SEND_DUE: 1, "waiting_due": 1}
            )
            if doc is not None and doc.get(SEND_DUE) is not None and doc.get(SEND_DUE) == doc.get("waiting_due"):
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
        self._recent_programmes.forget(programme.programme_id)

    async def _programme(self, programme_id: str) -> Programme | None:
        doc = await self._programmes.find_one({"_id": programme_id})
        # A document stored before a field existed lacks it: the field's default stands in.
        return from_document(Programme, doc, "programme_id") if doc else None

    async def record_institution(self, institution_id: str, name: str) -> None:
        """Keep an institution's name."""
        await self._institutions.update_one({"_id": institution_id}, {"$set": {"name": name}}, upsert=True)
        self._recent_institutions.forget(institution_id)

    async def _institution_name(self, institution_id: str) -> str | None:
        doc = await self._institutions.find_one({"_id": institution_id})
        return doc["name"] if doc else None

    async def programme_name(self, programme_id: str) -> str | None:
        """A programme's name, if known."""
        doc = await self._programmes.find_one({"_id": programme_id}, {"name": 1})
        return doc["name"] if doc else None

    # -- open proposals, for the digest

    async def open_proposal(self, proposal: OpenProposal) -> None:
        """Record a proposal as open, unless it was already closed (a late copy is refused)."""
        fields = {k: v for k, v in asdict(proposal).items() if k not in ("pair_id", "answered")}
        with contextlib.suppress(DuplicateKeyError):  # closed already
            await self._proposals.update_one(
                {"_id": proposal.pair_id, "closed": {"$ne": True}},
                {"$set": fields, "$setOnInsert": {"answered": list(proposal.answered)}},
                upsert=True,
            )

    async def proposal_answered(self, pair_id: str, sides: list[str]) -> None:
        """These sides of an open proposal have answered."""
        await self._proposals.update_one(
            {"_id": pair_id, "closed": {"$ne": True}}, {"$addToSet": {"answered": {"$each": sides}}}
        )

    async def close_proposal(self, pair_id: str) -> None:
        """Accepted by both, declined, lapsed or ended: keep only the fact that it closed."""
        await self._proposals.replace_one(
            {"_id": pair_id}, {"_id": pair_id, "closed": True, "closed_at": utcnow()}, upsert=True
        )

    async def close_proposals_of(self, participant_id: str) -> int:
        """She was erased: close her open proposals, keeping no ids of hers; how many."""
        result = await self._proposals.update_many(
            {"$or": [{"mentee_id": participant_id}, {"mentor_id": participant_id}], "closed": {"$ne": True}},
            {
                "$set": {"closed": True, "closed_at": utcnow()},
                "$unset": {"mentee_id": "", "mentor_id": "", "programme_id": "", "answered": ""},
            },
        )
        return result.modified_count

    async def open_proposals(self, programme_id: str) -> list[OpenProposal]:
        """A programme's proposals still awaiting an answer."""
        fields = OpenProposal.__dataclass_fields__
        return [
            OpenProposal(
                **{"pair_id": d["_id"]} | {k: d[k] for k in fields if k not in ("pair_id", "answered")},
                answered=tuple(d.get("answered", [])),
            )
            async for d in self._proposals.find({"programme_id": programme_id, "closed": {"$ne": True}})
        ]

    # -- digests

    async def save_digest(self, config: DigestConfig, due: datetime | None) -> dict[str, Any]:
        """Store who receives a programme's digest and when it is next due (None: disabled)."""
        fields = {"recipients": list(config.recipients), "enabled": config.enabled, "hour_utc": config.hour_utc}
        update: dict[str, Any] = {"$set": fields | {"updated_at": utcnow()}}
        if due is None:
            update["$unset"] = {DIGEST_DUE: ""}
        else:
            update["$set"][DIGEST_DUE] = due
        return await self._digests.find_one_and_update(
            {"_id": config.programme_id}, update, upsert=True, return_document=ReturnDocument.AFTER
        )

    async def digest_config(self, programme_id: str) -> dict[str, Any] | None:
        """A programme's digest settings, when and for which day it was last sent."""
        return await self._digests.find_one({"_id": programme_id})

    async def claim_due_digests(self, lease: timedelta, limit: int) -> list[dict[str, Any]]:
        """Take up to `limit` digests whose time has come (one replica wins each)."""
        return await claim_due(self._digests, DIGEST_DUE, lease, limit)

    async def digest_queued(self, programme_id: str, claimed_due: datetime, day: str, next_due: datetime) -> bool:
        """Record the day's digest as queued and schedule the next; False if the settings changed meanwhile."""
        result = await self._digests.update_one(
            {"_id": programme_id, DIGEST_DUE: claimed_due},
            {"$set": {DIGEST_DUE: next_due, "last_digest": day, "last_digest_at": utcnow()}},
        )
        return result.modified_count == 1

    # -- preferences

    async def set_preference(self, subscriber: str, *, reminders: bool, by: str) -> dict[str, Any]:
        """Whether a subscriber receives optional messages (reminders, digests); who changed it."""
        return await self._preferences.find_one_and_update(
            {"_id": subscriber},
            {"$set": {"reminders": reminders, "changed_at": utcnow(), "changed_by": by}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )

    async def preference(self, subscriber: str) -> dict[str, Any] | None:
        """A subscriber's preference, if she ever set one."""
        return await self._preferences.find_one({"_id": subscriber})

    async def forget_preference(self, subscriber: str) -> None:
        """Erasure: drop her preference with the rest."""
        await self._preferences.delete_one({"_id": subscriber})

    async def opted_out(self, subscribers: Iterable[str]) -> set[str]:
        """Which of these subscribers refused optional messages."""
        docs = self._preferences.find({"_id": {"$in": sorted(set(subscribers))}, "reminders": False}, {"_id": 1})
        return {d["_id"] async for d in docs}

    async def known(self, participant_ids: Iterable[str], programme_id: str) -> Known:
        """What the read models hold about these participants, their institutions and the programme."""
        contacts: dict[str, Contact] = {}
        erased, withdrawn = set(), set()
        for doc in await _by_ids(self._contacts, participant_ids):
            if doc.get("erased"):
                erased.add(doc["_id"])
                continue
            if doc.get("withdrawn"):
                withdrawn.add(doc["_id"])
            if "email" in doc:
                contacts[doc["_id"]] = Contact(**{k: doc[k] for k in Contact.__dataclass_fields__})
        programme = await self._recent_programmes.get(programme_id, lambda: self._programme(programme_id))
        institutions = {}
        for institution_id in sorted({c.institution_id for c in contacts.values()}):
            name = await self._recent_institutions.get(institution_id, partial(self._institution_name, institution_id))
            if name is not None:
                institutions[institution_id] = name
        return Known(contacts, frozenset(erased), frozenset(withdrawn), programme, institutions)


async def _by_ids(collection: AsyncCollection, ids: Iterable[str]) -> list[dict[str, Any]]:
    """The documents with these ids, each looked up by its `_id` (FerretDB answers `$in` by reading the whole
    collection, and a message names one to a few); no round trip for none."""
    found = await asyncio.gather(*(collection.find_one({"_id": i}) for i in sorted(set(ids))))
    return [doc for doc in found if doc is not None]


def _cancel(reason: str) -> dict[str, Any]:
    return {
        "$set": {"status": CANCELLED, "cancelled_at": utcnow(), "last_error": reason},
        "$unset": {SEND_DUE: "", "waiting_for": "", "waiting_due": ""},
    }
