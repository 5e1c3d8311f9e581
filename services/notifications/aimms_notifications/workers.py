"""Notifications' background loops: the delivery worker sends queued messages once their details are
known; the scheduler queues the coordinators' digests and purges per-message details past retention."""

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from jinja2 import TemplateError

from aimms_notifications.domain import compose, delivery, digest, messages
from aimms_notifications.links import OptOutLinks
from aimms_notifications.mailer import Mailer, SmtpRejection
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import SEND_DUE, NotificationStore, as_delivery, as_notification
from aimms_notifications.templates import Templates
from aimms_notifications.use_cases import PRODUCER, queue, subscriber_of
from aimms_shared.contracts.notifications import NotificationFailed, NotificationSent
from aimms_shared.durations import parse
from aimms_shared.mongo import as_utc, utcnow
from aimms_shared.outbox import outbox_entries
from aimms_shared.wakeup import Wakeup

# How often the worker searches for due notifications nothing woke it for: claims that ran out, and what
# another replica put off. In FerretDB every search reads the whole collection.
POLL_SECONDS = 5.0
# Notifications sent at once (one SMTP connection each), and claimed at once by a search.
DELIVERY_CONCURRENCY = 25
# Details published beside the event that causes a message (a welcome's contact, on another topic) mostly arrive
# within a fraction of a second: a message missing them is looked at again after these pauses, still under its
# claim, before it is put to wait (a wait is two writes, and waking it a search for due notifications).
DETAILS_GRACE_SECONDS = (0.1, 0.25, 0.5)

log = structlog.get_logger(__name__)


class Scheduler:
    """Queues each programme's daily digest once, and purges per-message details past the retention.

    A due digest is claimed under a lease (one replica wins); its notifications are keyed by
    (programme, day, recipient), so a crash between queuing and recording queues nothing twice.
    """

    def __init__(
        self,
        store: NotificationStore,
        settings: NotificationsSettings,
        *,
        on_queued: Callable[[list[dict[str, Any]]], None],
    ) -> None:
        self._store = store
        self._settings = settings
        self._on_queued = on_queued
        self._lease = timedelta(seconds=settings.lease_seconds)
        self._retention = parse(settings.delivery_log_retention)
        # Purge at most this often: a tenth of the retention, between one poll and an hour.
        retention_seconds = (self._retention.after(utcnow()) - utcnow()).total_seconds()
        self._purge_every = min(3600.0, max(settings.scheduler_poll_seconds, retention_seconds / 10))
        self._next_purge = 0.0

    async def run_due(self) -> int:
        """Queue due digests and purge when it is time; how many digests were handled (0: nothing due)."""
        handled = 0
        while due := await self._store.claim_due_digests(self._lease, limit=10):
            for doc in due:
                await self.send_digest(doc)
            handled += len(due)
        loop = asyncio.get_running_loop()
        if loop.time() >= self._next_purge:
            self._next_purge = loop.time() + self._purge_every
            await self.purge()
        return handled

    async def send_digest(self, doc: dict[str, Any]) -> int:
        """Queue the day's digest of one claimed programme and schedule the next; how many were queued."""
        started = asyncio.get_running_loop().time()
        programme_id = doc["_id"]
        now = utcnow()
        slot = digest.digest_slot(now, doc["hour_utc"])
        day = slot.date().isoformat()
        queued = 0
        with structlog.contextvars.bound_contextvars(programme_id=programme_id, digest_day=day):
            if doc.get("last_digest") != day and doc.get("enabled"):
                config = digest.DigestConfig(programme_id, tuple(doc["recipients"]), True, doc["hour_utc"])
                notes = digest.digest(
                    config,
                    programme_name=await self._store.programme_name(programme_id) or programme_id,
                    slot=slot,
                    built_at=now,
                    proposals=await self._store.open_proposals(programme_id),
                    failures=await self._store.failed_since(programme_id, now - timedelta(days=1)),
                )
                added = await queue(
                    self._store,
                    notes,
                    message_id_domain=self._settings.message_id_domain,
                    details_wait_seconds=self._settings.details_wait_seconds,
                    lease=self._lease,
                )
                self._on_queued(added)
                queued = len(added)
            next_due = digest.next_digest_at(now, doc["hour_utc"])
            await self._store.digest_queued(programme_id, as_utc(doc["digest_due"]), day, next_due)
            took = asyncio.get_running_loop().time() - started
            log.info("digest.queued", recipients=queued, build_ms=round(took * 1000, 1))
        return queued

    async def purge(self) -> int:
        """Drop per-message details of finished notifications older than the retention; how many."""
        now = utcnow()
        cutoff = now - (self._retention.after(now) - now)
        purged = await self._store.purge_details(cutoff)
        if purged:
            log.info("delivery_log.purged", notifications=purged, created_before=cutoff.isoformat())
        return purged


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
        links: OptOutLinks,
    ) -> None:
        self._store = store
        self._links = links
        self._mailer = mailer
        self._templates = templates
        self._settings = settings
        self._patience = delivery.Patience(
            retry_base_seconds=settings.delivery_retry_base_seconds,
            retry_cap_seconds=settings.delivery_retry_cap_seconds,
            recheck_cap_seconds=settings.details_recheck_cap_seconds,
            max_attempts=settings.delivery_max_attempts,
        )
        self._wakeup = Wakeup()
        self._sending = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        self._in_flight: set[asyncio.Task[None]] = set()
        # Messages missing details that are looked at again shortly (`_grace`): how often so far; those awaiting
        # their next look, with what they miss and the timer; and by each detail they miss.
        self._looks: dict[str, int] = {}
        self._graced: dict[str, tuple[dict[str, Any], list[str], asyncio.TimerHandle]] = {}
        self._graced_for: dict[str, set[str]] = {}

    def nudge(self) -> None:
        """Look for due notifications now rather than at the next poll (e.g. details a message waited for came)."""
        self._wakeup.set()

    def _search_at(self, due: datetime) -> None:
        # What this process puts off, it takes up at its time (just after: the search compares with the clock).
        asyncio.get_running_loop().call_later((due - utcnow()).total_seconds() + 0.05, self._wakeup.set)

    def hand(self, queued: list[dict[str, Any]]) -> None:
        """Send notifications this process just queued, claimed for the worker (`queue`): no search, no claim.

        Each starts at once, up to DELIVERY_CONCURRENCY at a time. Were the process to stop first, their
        claim runs out and a search finds them.
        """
        for doc in queued:
            task = asyncio.create_task(self._attempt_handed(doc))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def run(self) -> None:
        """Search for due notifications when nudged or every POLL_SECONDS (retries, waits that ended, claims
        that ran out), until cancelled; what is handed over is attempted as it comes."""
        try:
            while True:
                try:
                    await self.deliver_due()
                except Exception as exc:  # noqa: BLE001 - store outage: wait and go on
                    log.warning("delivery.loop_failed", error=repr(exc))
                await self._wakeup.sleep(POLL_SECONDS)
        finally:
            for task in self._in_flight:
                task.cancel()
            self._mailer.close()

    async def deliver_due(self) -> int:
        """Claim and attempt every notification that is due; return how many attempts were made."""
        attempts = 0
        lease = timedelta(seconds=self._settings.lease_seconds)
        full = True
        while full:
            due = await self._store.claim_due(lease, DELIVERY_CONCURRENCY)
            await asyncio.gather(*(self._attempt_limited(doc) for doc in due))
            attempts += len(due)
            full = len(due) == DELIVERY_CONCURRENCY  # a short batch: nothing else was due
        return attempts

    async def _attempt_handed(self, doc: dict[str, Any]) -> None:
        try:
            await self._attempt_limited(doc)
        except Exception as exc:  # noqa: BLE001 - e.g. a store outage: the claim runs out and a search retries it
            log.warning("delivery.attempt_failed", notification_id=doc["_id"], error=repr(exc))

    async def _attempt_limited(self, doc: dict[str, Any]) -> None:
        async with self._sending:
            await self._attempt(doc)

    async def _attempt(self, doc: dict[str, Any]) -> None:
        note = as_notification(doc)
        with structlog.contextvars.bound_contextvars(notification_id=note.notification_id, template=note.template):
            known = await self._store.known(compose.named_participants(note), note.programme_id)
            subscriber = self._subscriber(note) if messages.is_optional(note.template) else None
            if subscriber is not None and await self._store.opted_out([subscriber]):
                known = dataclasses.replace(known, recipient_opted_out=True)
            decision = compose.compose(note, known)
            if isinstance(decision, compose.Waiting) and self._grace(doc, decision.missing):
                return
            self._looks.pop(note.notification_id, None)
            if isinstance(decision, compose.Cancelled):
                await self._store.mark_cancelled(note.notification_id, decision.reason)
                log.info("delivery.cancelled", reason=decision.reason)
                return
            if isinstance(decision, compose.Skipped):
                await self._store.mark_skipped(note.notification_id, decision.reason)
                log.info("delivery.skipped", reason=decision.reason)
                return
            if isinstance(decision, compose.Waiting):
                await self._wait(doc, decision.missing)
                return
            opt_out_url = self._links.url(subscriber) if subscriber is not None else None
            context = decision.context | ({"opt_out_url": opt_out_url} if opt_out_url else {})
            try:
                message = self._templates.render(
                    note.template,
                    context,
                    programme_id=note.programme_id,
                    institution_id=decision.institution_id,
                )
            except TemplateError as exc:
                await self._fail(note, f"template {note.template} could not be rendered: {type(exc).__name__}: {exc}")
                return
            await self._send(note, doc, decision, message, opt_out_url)

    def _subscriber(self, note: messages.Notification) -> str:
        if note.recipient_id is not None:
            return subscriber_of(note.recipient_id)
        assert note.recipient_email is not None
        return self._links.subscriber_for_address(note.recipient_email)

    def arrived(self, detail: str) -> None:
        """Details (`participant:<id>`, ...) arrived: messages of this process looking again for them look now."""
        for notification_id in list(self._graced_for.get(detail, ())):
            self._look_again(notification_id)

    def _grace(self, doc: dict[str, Any], missing: list[str]) -> bool:
        """Look at a message missing details again shortly (or when they arrive here), rather than put it to
        wait, if it never waited and its claim outlasts the pauses; whether it will be."""
        notification_id = doc["_id"]
        looks = self._looks.get(notification_id, 0)
        if looks >= len(DETAILS_GRACE_SECONDS) or doc.get("detail_checks", 0) > 0:
            return False
        claimed_for = (as_utc(doc[SEND_DUE]) - utcnow()).total_seconds()
        if claimed_for < sum(DETAILS_GRACE_SECONDS[looks:]) + 5:  # the claim could run out meanwhile
            return False
        self._looks[notification_id] = looks + 1
        timer = asyncio.get_running_loop().call_later(DETAILS_GRACE_SECONDS[looks], self._look_again, notification_id)
        self._graced[notification_id] = (doc, missing, timer)
        for detail in missing:
            self._graced_for.setdefault(detail, set()).add(notification_id)
        return True

    def _look_again(self, notification_id: str) -> None:
        """Attempt a graced message again, once: its timer and its entries go."""
        entry = self._graced.pop(notification_id, None)
        if entry is None:
            return
        doc, missing, timer = entry
        timer.cancel()
        for detail in missing:
            waiting = self._graced_for.get(detail, set())
            waiting.discard(notification_id)
            if not waiting:
                self._graced_for.pop(detail, None)
        self.hand([doc])

    async def _wait(self, doc: dict[str, Any], missing: list[str]) -> None:
        decision = delivery.details_missing(as_delivery(doc), missing, utcnow(), self._patience)
        if isinstance(decision, delivery.GiveUp):
            await self._fail(as_notification(doc), decision.reason)
            return
        await self._store.mark_waiting(doc["_id"], list(decision.missing), decision.due)
        self._search_at(decision.due)
        log.info("delivery.waiting_for_details", missing=missing, recheck_in_seconds=decision.delay)

    async def _send(
        self,
        note: messages.Notification,
        doc: dict[str, Any],
        ready: compose.Ready,
        message: Any,
        opt_out_url: str | None,
    ) -> None:
        try:
            outgoing = self._mailer.build(
                to_email=ready.to_email,
                to_name=ready.to_name,
                subject=message.subject,
                text=message.text,
                html=message.html,
                message_id=doc["message_id"],
                unsubscribe_url=opt_out_url,
            )
            await self._mailer.send(outgoing)
        except SmtpRejection as exc:
            decision = delivery.smtp_refused(as_delivery(doc), exc.code, exc.message, utcnow(), self._patience)
            if isinstance(decision, delivery.GiveUp):
                await self._fail(note, decision.reason)
                return
            log.warning(
                "delivery.retry", error=decision.reason, attempt=decision.attempt, retry_in_seconds=decision.delay
            )
            await self._store.mark_retry(note.notification_id, decision.reason, decision.due)
            self._search_at(decision.due)
            return
        sent = NotificationSent(
            notification_id=note.notification_id,
            template=note.template,
            source_event_id=note.source_event_id,
            sent_at=utcnow(),
        )
        await self._store.mark_sent(note.notification_id, outbox_entries([sent], producer=PRODUCER))
        log.info("delivery.sent")

    async def _fail(self, note: messages.Notification, reason: str) -> None:
        event = NotificationFailed(
            notification_id=note.notification_id,
            template=note.template,
            source_event_id=note.source_event_id,
            reason=reason,
        )
        await self._store.mark_failed(note.notification_id, reason, outbox_entries([event], producer=PRODUCER))
        log.error("delivery.failed", error=reason)
