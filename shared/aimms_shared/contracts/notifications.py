"""Events the notifications service produces. They never carry a message body."""

from datetime import datetime

from aimms_shared.events import Event, Topic, contract

DELIVERIES = Topic("notifications.deliveries")


@contract
class NotificationSent(Event, topic=DELIVERIES, key="notification_id"):
    """The SMTP server accepted a message."""

    notification_id: str
    template: str
    source_event_id: str
    sent_at: datetime


@contract
class NotificationFailed(Event, topic=DELIVERIES, key="notification_id"):
    """A message could not be delivered and is no longer tried (a coordinator may send it again)."""

    notification_id: str
    template: str
    source_event_id: str
    reason: str
