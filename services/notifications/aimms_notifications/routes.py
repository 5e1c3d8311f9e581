"""Notifications' HTTP API: the delivery record of what an event caused to be sent."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from aimms_notifications.store import NotificationStore
from aimms_shared.auth import ADMIN, Principal, require

router = APIRouter(tags=["deliveries"])


def get_store(request: Request) -> NotificationStore:
    """The store built in the composition root."""
    return request.app.state.store


class DeliveryOut(BaseModel):
    """A notification's delivery state; no message body."""

    notification_id: str
    template: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None


@router.get("/deliveries", response_model=list[DeliveryOut])
async def deliveries_of_event(
    source_event_id: str, store: Annotated[NotificationStore, Depends(get_store)], caller: Principal = require(ADMIN)
) -> list[DeliveryOut]:
    """What one event caused to be sent, and whether it was delivered."""
    return [
        DeliveryOut(
            notification_id=d["_id"],
            template=d["template"],
            status=d["status"],
            attempts=d.get("attempts", 0),
            created_at=d["created_at"],
            sent_at=d.get("sent_at"),
            last_error=d.get("last_error"),
        )
        for d in await store.by_source_event(source_event_id)
    ]
