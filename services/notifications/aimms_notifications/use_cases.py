"""Notifications use cases: queue messages for an event, keep the read models, deliver queued messages,
send the coordinators' digests, keep opt-outs and purge per-message details after the retention period."""

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog
from jinja2 import TemplateError

from aimms_notifications.domain import compose, delivery, digest, messages
from aimms_notifications.links import PARTICIPANT, OptOutLinks
from aimms_notifications.mailer import Mailer, SmtpRejection
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import NotificationStore, as_notification
from aimms_notifications.templates import Templates
from aimms_shared.contracts.matching import (
    MatchAccepted,
    MatchDeclined,
    MatchEnded,
    MatchProposalReminder,
    MatchProposed,
    MentoringStarted,
)
from aimms_shared.contracts.notifications import NotificationFailed, NotificationSent
from aimms_shared.durations import parse
from aimms_shared.errors import Missing
from aimms_shared.events import Envelope
from aimms_shared.mongo import as_utc, utcnow
from aimms_shared.outbox import outbox_entries
from aimms_shared.retry import backoff_delay
from aimms_shared.wakeup import Wakeup

PRODUCER = "notifications"
# How often the worker searches for due notifications nothing woke it for: claims that ran out, and what
# another replica put off. In FerretDB every search reads the whole collection.
POLL_SECONDS = 5.0
# Notifications sent at once (one SMTP connection each), and claimed at once by a search.
DELIVERY_CONCURRENCY = 25

log = structlog.get_logger(__name__)


async def queue(
    store: NotificationStore,
    notifications: Sequence[messages.Notification],
    *,
    message_id_domain: str,
    details_wait_seconds: float,
    lease: timedelta,
) -> list[dict[str, Any]]:
    """Record notifications for delivery, claimed for `lease` by the caller, who hands them to the delivery
    worker; the new ones (a redelivered event adds none)."""
    deadline = compose.details_deadline(utcnow(), details_wait_seconds)
    # Side by side, so the store records an event's messages (a digest's, a pair's) in one write.
    docs = await asyncio.gather(
        *(
            store.add(
                note, message_id=f"<{note.notification_id}@{message_id_domain}>", details_deadline=deadline, lease=lease
            )
            for note in notifications
        )
    )
    return [doc for doc in docs if doc is not None]


async def record_contact(store: NotificationStore, contact: compose.Contact, as_of: datetime) -> int:
    """Keep her latest details and wake the messages that waited for them; how many woke."""
    if not await store.record_contact(contact, as_of):
        return 0
    return await store.wake_waiting(f"participant:{contact.participant_id}")


async def erase(store: NotificationStore, participant_id: str) -> int:
    """Erasure: forget her details and cancel what was still to be sent to her; how many were cancelled."""
    await store.erase_contact(participant_id)
    await store.close_proposals_of(participant_id)
    await store.forget_preference(subscriber_of(participant_id))
    cancelled = await store.cancel_pending_to(participant_id, "recipient erased")
    # Messages to her partner that waited for her details can now go out without them.
    await store.wake_waiting(f"participant:{participant_id}")
    return cancelled


async def withdraw(store: NotificationStore, participant_id: str) -> int:
    """She left the programme: nothing more goes to her; how many pending messages were cancelled."""
    await store.mark_withdrawn(participant_id)
    return await store.cancel_pending_to(participant_id, "recipient withdrew")


async def record_programme(store: NotificationStore, programme: compose.Programme, as_of: datetime) -> int:
    """Keep a programme's name, wording and durations; wake messages that waited for it."""
    await store.record_programme(programme, as_of)
    return await store.wake_waiting(f"programme:{programme.programme_id}")


async def record_institution(store: NotificationStore, institution_id: str, name: str) -> int:
    """Keep an institution's name; wake messages that waited for it."""
    await store.record_institution(institution_id, name)
    return await store.wake_waiting(f"institution:{institution_id}")


# -- open proposals (the digest's read model): MatchProposed opens one, answers mark sides, the rest close it


async def proposal_opened(store: NotificationStore, event: MatchProposed, envelope: Envelope) -> None:
    """A proposal awaits both sides' answers."""
    await store.open_proposal(
        digest.OpenProposal(
            pair_id=event.pair_id,
            programme_id=event.programme_id,
            mentee_id=event.mentee_id,
            mentor_id=event.mentor_id,
            proposed_at=envelope.occurred_at,
            reply_by=event.reply_by,
        )
    )


async def proposal_reminded(store: NotificationStore, event: MatchProposalReminder, envelope: Envelope) -> None:
    """A reminder names the sides still silent: the others have answered."""
    await store.proposal_answered(event.pair_id, [s for s in messages.SIDES if s not in event.awaiting])


async def proposal_accepted(store: NotificationStore, event: MatchAccepted, envelope: Envelope) -> None:
    """One side accepted; the proposal stays open until both have."""
    await store.proposal_answered(event.pair_id, [event.side])


async def proposal_closed(
    store: NotificationStore, event: MatchDeclined | MentoringStarted | MatchEnded, envelope: Envelope
) -> None:
    """Declined, lapsed, started or ended: no longer awaiting anyone."""
    await store.close_proposal(event.pair_id)


# -- opt-out of optional messages


def subscriber_of(participant_id: str) -> str:
    """The preference key of a participant."""
    return f"{PARTICIPANT}:{participant_id}"


async def set_reminders(store: NotificationStore, subscriber: str, *, reminders: bool, by: str) -> dict[str, Any]:
    """Whether a participant (or a digest's recipient) receives reminders and digests."""
    preference = await store.set_preference(subscriber, reminders=reminders, by=by)
    log.info("preference.changed", reminders=reminders, changed_by=by)
    return preference


async def reminders_of(store: NotificationStore, subscriber: str) -> dict[str, Any]:
    """A subscriber's preference; receiving them is the default."""
    return await store.preference(subscriber) or {"_id": subscriber, "reminders": True}


# -- the coordinators' digest


async def configure_digest(store: NotificationStore, config: digest.DigestConfig) -> dict[str, Any]:
    """Set who receives a programme's digest and at which hour; it is due at the next hour not yet served.

    A digest enabled (or moved) after its hour sends that day's at once, unless it went out already.
    """
    config = digest.check_digest(config)
    due = None
    if config.enabled:
        now = utcnow()
        slot = digest.digest_slot(now, config.hour_utc)
        current = await store.digest_config(config.programme_id)
        served = current is not None and current.get("last_digest") == slot.date().isoformat()
        due = digest.next_digest_at(now, config.hour_utc) if served else now
    return await store.save_digest(config, due)


async def digest_config(store: NotificationStore, programme_id: str) -> dict[str, Any]:
    """A programme's digest settings; Missing when none were set."""
    doc = await store.digest_config(programme_id)
    if doc is None:
        raise Missing("programme_id", "digest-configured", f"no digest is configured for {programme_id}")
    return doc


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
        self._wakeup = Wakeup()
        self._sending = asyncio.Semaphore(DELIVERY_CONCURRENCY)
        self._in_flight: set[asyncio.Task[None]] = set()

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
        due = min(deadline, now + timedelta(seconds=delay))
        await self._store.mark_waiting(note.notification_id, missing, due)
        self._search_at(due)
        log.info("delivery.waiting_for_details", missing=missing, recheck_in_seconds=delay)

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
            attempts = doc.get("attempts", 0) + 1
            outcome = delivery.judge_smtp_error(exc.code, exc.message, attempts, self._settings.delivery_max_attempts)
            if outcome.kind == "retry":
                delay = backoff_delay(
                    self._settings.delivery_retry_base_seconds, attempts, self._settings.delivery_retry_cap_seconds
                )
                log.warning("delivery.retry", error=outcome.reason, attempt=attempts, retry_in_seconds=delay)
                due = utcnow() + timedelta(seconds=delay)
                await self._store.mark_retry(note.notification_id, outcome.reason, due)
                self._search_at(due)
                return
            await self._fail(note, outcome.reason)
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
