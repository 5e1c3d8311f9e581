"""The notifications store: the only code that talks to notifications' database."""

from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_notifications.domain import Notification
from aimms_notifications.templates import RenderedMessage
from aimms_shared.mongo import claim_due, utcnow
from aimms_shared.outbox import OutboxEntry, outbox_push

NOTIFICATIONS = "notifications"
SEND_DUE = "send_due"


class NotificationStore:
    """Notifications and their delivery state; one document per (event, recipient, template)."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._notifications = db[NOTIFICATIONS]

    async def ensure_indexes(self) -> None:
        """Index what the delivery worker and the delivery log look up."""
        await self._notifications.create_index([(SEND_DUE, ASCENDING)])
        await self._notifications.create_index([("source_event_id", ASCENDING)])

    async def add(self, notification: Notification, message: RenderedMessage, message_id: str) -> bool:
        """Record a notification to send; False if it was already recorded (a redelivery)."""
        now = utcnow()
        doc = {
            "_id": notification.notification_id,
            "template": notification.template,
            "source_event_id": notification.source_event_id,
            "recipient_email": notification.recipient_email,
            "recipient_name": notification.recipient_name,
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "message_id": message_id,
            "status": "pending",
            "attempts": 0,
            "created_at": now,
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

    async def by_source_event(self, source_event_id: str) -> list[dict[str, Any]]:
        """Every notification an event caused."""
        return await self._notifications.find({"source_event_id": source_event_id}).to_list()

    async def mark_sent(self, notification_id: str, events: list[OutboxEntry]) -> None:
        """Delivered: no longer due, with NotificationSent in the same write."""
        update = outbox_push(events)
        update["$set"] |= {"status": "sent", "sent_at": utcnow()}
        update["$unset"] = {SEND_DUE: ""}
        update["$inc"] = {"attempts": 1}
        await self._notifications.update_one({"_id": notification_id}, update)

    async def mark_retry(self, notification_id: str, error: str, due: datetime) -> None:
        """A temporary failure: try again at `due`."""
        await self._notifications.update_one(
            {"_id": notification_id}, {"$set": {SEND_DUE: due, "last_error": error}, "$inc": {"attempts": 1}}
        )

    async def mark_failed(self, notification_id: str, error: str, events: list[OutboxEntry]) -> None:
        """Given up: recorded as failed, with NotificationFailed in the same write."""
        update = outbox_push(events)
        update["$set"] |= {"status": "failed", "last_error": error, "failed_at": utcnow()}
        update["$unset"] = {SEND_DUE: ""}
        update["$inc"] = {"attempts": 1}
        await self._notifications.update_one({"_id": notification_id}, update)
