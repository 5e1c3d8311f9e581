"""Notifications' HTTP API: the delivery log, by event, by participant or by programme."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from aimms_notifications.store import NotificationStore
from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.errors import RuleBroken

router = APIRouter(tags=["deliveries"])


def get_store(request: Request) -> NotificationStore:
    """The store built in the composition root."""
    return request.app.state.store


class DeliveryOut(BaseModel):
    """A notification's delivery state; no message body and no address."""

    notification_id: str
    template: str
    source_event_id: str
    programme_id: str | None = None
    recipient_id: str | None = None
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None
    waiting_for: list[str] = []


@router.get("/deliveries", response_model=list[DeliveryOut])
async def delivery_log(
    store: Annotated[NotificationStore, Depends(get_store)],
    source_event_id: str | None = None,
    participant_id: str | None = None,
    programme_id: str | None = None,
    caller: Principal = require(ADMIN),
) -> list[DeliveryOut]:
    """What was sent, when, and its status: for one event, one participant or one programme (newest first)."""
    if not (source_event_id or participant_id or programme_id):
        raise RuleBroken("source_event_id", "one-filter", "name a source_event_id, participant_id or programme_id")
    docs = await store.delivery_log(
        source_event_id=source_event_id, participant_id=participant_id, programme_id=programme_id
    )
    return [
        DeliveryOut(
            notification_id=d["_id"],
            template=d["template"],
            source_event_id=d["source_event_id"],
            programme_id=d.get("programme_id"),
            recipient_id=d.get("recipient_id"),
            status=d["status"],
            attempts=d.get("attempts", 0),
            created_at=d["created_at"],
            sent_at=d.get("sent_at"),
            last_error=d.get("last_error"),
            waiting_for=d.get("waiting_for", []),
        )
        for d in docs
    ]
