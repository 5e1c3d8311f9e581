"""Every event the notifications service consumes, in one table."""

from aimms_notifications import domain, use_cases
from aimms_notifications.store import NotificationStore
from aimms_notifications.templates import Templates
from aimms_shared.consumer import Subscriptions
from aimms_shared.contracts.registration import InterestExpressed
from aimms_shared.events import Envelope


def subscriptions(
    store: NotificationStore, templates: Templates, deliveries: use_cases.DeliveryWorker, *, message_id_domain: str
) -> Subscriptions:
    """Notifications' subscriptions: each event queues its messages, then delivery is nudged."""
    table = Subscriptions()

    @table.on(InterestExpressed)
    async def send_welcome(event: InterestExpressed, envelope: Envelope) -> None:
        if await use_cases.queue(
            store, templates, domain.welcome(event, envelope), message_id_domain=message_id_domain
        ):
            deliveries.nudge()

    return table
