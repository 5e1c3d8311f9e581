"""Notifications use cases: queue messages for an event, keep the read models, deliver queued messages."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from jinja2 import TemplateError

from aimms_notifications import domain
from aimms_notifications.mailer import Mailer, SmtpRejection
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import NotificationStore, as_notification
from aimms_notifications.templates import Templates
from aimms_shared.contracts.notifications import NotificationFailed, NotificationSent
from aimms_shared.events import wrap
from aimms_shared.mongo import as_utc, utcnow
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
    store: NotificationStore,
    notifications: Sequence[domain.Notification],
    *,
    message_id_domain: str,
    details_wait_seconds: float,
) -> int:
    """Record notifications for delivery; how many were new (a redelivered event adds none)."""
    added = 0
    for note in notifications:
        added += await store.add(
            note,
            message_id=f"<{note.notification_id}@{message_id_domain}>",
            details_deadline=domain.details_deadline(utcnow(), details_wait_seconds),
        )
    return added


async def record_contact(store: NotificationStore, contact: domain.Contact, as_of: datetime) -> int:
    """Keep her latest details and wake the messages that waited for them; how many woke."""
    if not await store.record_contact(contact, as_of):
        return 0
    return await store.wake_waiting(f"participant:{contact.participant_id}")


async def erase(store: NotificationStore, participant_id: str) -> int:
    """Erasure: forget her details and cancel what was still to be sent to her; how many were cancelled."""
    await store.erase_contact(participant_id)
    cancelled = await store.cancel_pending_to(participant_id, "recipient erased")
    # Messages to her partner that waited for her details can now go out without them.
    await store.wake_waiting(f"participant:{participant_id}")
    return cancelled


async def withdraw(store: NotificationStore, participant_id: str) -> int:
    """She left the programme: nothing more goes to her; how many pending messages were cancelled."""
    await store.mark_withdrawn(participant_id)
    return await store.cancel_pending_to(participant_id, "recipient withdrew")


async def record_programme(store: NotificationStore, programme: domain.Programme, as_of: datetime) -> int:
    """Keep a programme's name and durations; wake messages that waited for it."""
    await store.record_programme(programme, as_of)
    return await store.wake_waiting(f"programme:{programme.programme_id}")


async def record_institution(store: NotificationStore, institution_id: str, name: str) -> int:
    """Keep an institution's name; wake messages that waited for it."""
    await store.record_institution(institution_id, name)
    return await store.wake_waiting(f"institution:{institution_id}")


class DeliveryWorker:
    """Sends due notifications once their details are known.

    Missing details are waited for up to the notification's deadline (re-checked with back-off,
    and at once when they arrive), then it fails with the reason; SMTP outages are retried with
    back-off and rejections recorded; a template that cannot be rendered fails with the error.
    """

    def __init__(
        self,
        store: NotificationStore,
        mailer: Mailer,
        templates: Templates,
        settings: NotificationsSettings,
        *,
        on_events: Callable[[], None],
    ) -> None:
        self._store = store
        self._on_events = on_events
        self._mailer = mailer
        self._templates = templates
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
        note = as_notification(doc)
        with structlog.contextvars.bound_contextvars(notification_id=note.notification_id, template=note.template):
            parties = [p for p in (note.recipient_id, note.partner_id) if p is not None]
            decision = domain.compose(note, await self._store.known(parties, note.programme_id))
            if isinstance(decision, domain.Cancelled):
                await self._store.mark_cancelled(note.notification_id, decision.reason)
                log.info("delivery.cancelled", reason=decision.reason)
                return
            if isinstance(decision, domain.Waiting):
                await self._wait(doc, decision.missing)
                return
            try:
                message = self._templates.render(
                    note.template,
                    decision.context,
                    programme_id=note.programme_id,
                    institution_id=decision.institution_id,
                )
            except TemplateError as exc:
                await self._fail(note, f"template {note.template} could not be rendered: {type(exc).__name__}: {exc}")
                return
            await self._send(note, doc, decision, message)

    async def _wait(self, doc: dict[str, Any], missing: list[str]) -> None:
        note = as_notification(doc)
        now = utcnow()
        deadline = as_utc(doc["details_deadline"])
        if now >= deadline:
            await self._fail(
                note, f"details still missing after waiting until {deadline.isoformat()}: {', '.join(missing)}"
            )
            return
        checks = doc.get("detail_checks", 0) + 1
        delay = backoff_delay(
            self._settings.delivery_retry_base_seconds, checks, self._settings.details_recheck_cap_seconds
        )
        await self._store.mark_waiting(note.notification_id, missing, min(deadline, now + timedelta(seconds=delay)))
        log.info("delivery.waiting_for_details", missing=missing, recheck_in_seconds=delay)

    async def _send(self, note: domain.Notification, doc: dict[str, Any], ready: domain.Ready, message: Any) -> None:
        mime = self._mailer.build(
            to_email=ready.to_email,
            to_name=ready.to_name,
            subject=message.subject,
            text=message.text,
            html=message.html,
            message_id=doc["message_id"],
        )
        try:
            await self._mailer.send(mime)
        except SmtpRejection as exc:
            attempts = doc.get("attempts", 0) + 1
            outcome = domain.judge_smtp_error(exc.code, exc.message, attempts, self._settings.delivery_max_attempts)
            if outcome.kind == "retry":
                delay = backoff_delay(
                    self._settings.delivery_retry_base_seconds, attempts, self._settings.delivery_retry_cap_seconds
                )
                log.warning("delivery.retry", error=outcome.reason, attempt=attempts, retry_in_seconds=delay)
                await self._store.mark_retry(note.notification_id, outcome.reason, utcnow() + timedelta(seconds=delay))
                return
            await self._fail(note, outcome.reason)
            return
        sent = NotificationSent(
            notification_id=note.notification_id,
            template=note.template,
            source_event_id=note.source_event_id,
            sent_at=utcnow(),
        )
        await self._store.mark_sent(note.notification_id, [outbox_entry(sent, wrap(sent, producer=PRODUCER))])
        self._on_events()
        log.info("delivery.sent")

    async def _fail(self, note: domain.Notification, reason: str) -> None:
        event = NotificationFailed(
            notification_id=note.notification_id,
            template=note.template,
            source_event_id=note.source_event_id,
            reason=reason,
        )
        await self._store.mark_failed(
            note.notification_id, reason, [outbox_entry(event, wrap(event, producer=PRODUCER))]
        )
        self._on_events()
        log.error("delivery.failed", error=reason)
