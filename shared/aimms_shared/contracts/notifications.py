"""Events the notifications service produces. They never carry a message body."""

from datetime import datetime
from typing import ClassVar

from aimms_shared.events import Event, Topic, contract

DELIVERIES = Topic("notifications.deliveries")


@contract
class NotificationSent(Event):
    """The SMTP server accepted a message."""

    event_type: ClassVar[str] = "NotificationSent"
    topic: ClassVar[Topic] = DELIVERIES
    key_field: ClassVar[str] = "notification_id"

    notification_id: str
    template: str
    source_event_id: str
    sent_at: datetime


@contract
class NotificationFailed(Event):
    """A message could not be delivered and is no longer tried (a coordinator may send it again)."""

    event_type: ClassVar[str] = "NotificationFailed"
    topic: ClassVar[Topic] = DELIVERIES
    key_field: ClassVar[str] = "notification_id"

    notification_id: str
    template: str
    source_event_id: str
    reason: str
