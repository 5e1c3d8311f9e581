"""Notifications use cases: queue a message for an event; deliver queued messages."""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import structlog

from aimms_notifications import domain
from aimms_notifications.mailer import Mailer, SmtpRejection
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import NotificationStore
from aimms_notifications.templates import Templates
from aimms_shared.contracts.notifications import NotificationFailed, NotificationSent
from aimms_shared.events import wrap
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import outbox_entry
from aimms_shared.retry import backoff_delay
from aimms_shared.wakeup import Wakeup

PRODUCER = "notifications"
# How often the worker looks for due notifications when nothing woke it (retries come due this way).
POLL_SECONDS = 1.0
# Notifications claimed at once and sent concurrently (one SMTP connection each).
DELIVERY_BATCH = 10

log = structlog.get_logger(__name__)


async def queue(
    store: NotificationStore, templates: Templates, notification: domain.Notification, *, message_id_domain: str
) -> bool:
    """Render and record a notification for delivery; False if this event already queued it."""
    message = templates.render(notification.template, notification.context)
    return await store.add(notification, message, f"<{notification.notification_id}@{message_id_domain}>")


class DeliveryWorker:
    """Sends due notifications; SMTP outages are retried with back-off, rejections recorded."""

    def __init__(
        self,
        store: NotificationStore,
        mailer: Mailer,
        settings: NotificationsSettings,
        *,
        on_events: Callable[[], None],
    ) -> None:
        self._store = store
        self._on_events = on_events
        self._mailer = mailer
        self._settings = settings
        self._wakeup = Wakeup()

    def nudge(self) -> None:
        """Send now rather than at the next poll."""
        self._wakeup.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            try:
                delivered = await self.deliver_due()
            except Exception as exc:  # noqa: BLE001 - store outage: wait and go on
                log.warning("delivery.loop_failed", error=repr(exc))
                delivered = 0
            if not delivered:
                await self._wakeup.sleep(POLL_SECONDS)

    async def deliver_due(self) -> int:
        """Attempt every notification that is due; return how many attempts were made."""
        attempts = 0
        lease = timedelta(seconds=self._settings.lease_seconds)
        while due := await self._store.claim_due(lease, DELIVERY_BATCH):
            await asyncio.gather(*(self._attempt(doc) for doc in due))
            attempts += len(due)
        return attempts

    async def _attempt(self, doc: dict[str, Any]) -> None:
        notification_id = doc["_id"]
        message = self._mailer.build(
            to_email=doc["recipient_email"],
            to_name=doc["recipient_name"],
            subject=doc["subject"],
            text=doc["text"],
            html=doc["html"],
            message_id=doc["message_id"],
        )
        with structlog.contextvars.bound_contextvars(notification_id=notification_id, template=doc["template"]):
            try:
                await self._mailer.send(message)
            except SmtpRejection as exc:
                attempts = doc.get("attempts", 0) + 1
                outcome = domain.judge_smtp_error(exc.code, exc.message, attempts, self._settings.delivery_max_attempts)
                if outcome.kind == "retry":
                    delay = backoff_delay(
                        self._settings.delivery_retry_base_seconds, attempts, self._settings.delivery_retry_cap_seconds
                    )
                    log.warning("delivery.retry", error=outcome.reason, attempt=attempts, retry_in_seconds=delay)
                    await self._store.mark_retry(notification_id, outcome.reason, utcnow() + timedelta(seconds=delay))
                    return
                event = NotificationFailed(
                    notification_id=notification_id,
                    template=doc["template"],
                    source_event_id=doc["source_event_id"],
                    reason=outcome.reason,
                )
                await self._store.mark_failed(
                    notification_id, outcome.reason, [outbox_entry(event, wrap(event, producer=PRODUCER))]
                )
                self._on_events()
                log.error("delivery.failed", error=outcome.reason)
                return
            sent = NotificationSent(
                notification_id=notification_id,
                template=doc["template"],
                source_event_id=doc["source_event_id"],
                sent_at=utcnow(),
            )
            await self._store.mark_sent(notification_id, [outbox_entry(sent, wrap(sent, producer=PRODUCER))])
            self._on_events()
            log.info("delivery.sent")
