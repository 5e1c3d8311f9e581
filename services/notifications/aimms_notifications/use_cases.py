"""Notifications use cases: queue messages for an event, retry a failed one, keep the read models and opt-outs,
configure digests.

The background loops that deliver queued messages, queue the digests and purge old details are in workers.py."""

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import structlog

from aimms_notifications.domain import compose, delivery, digest, messages
from aimms_notifications.links import PARTICIPANT
from aimms_notifications.store import NotificationStore, as_delivery
from aimms_shared.contracts.matching import (
    MatchAccepted,
    MatchDeclined,
    MatchEnded,
    MatchProposalReminder,
    MatchProposed,
    MentoringStarted,
)
from aimms_shared.contracts.registration import interest_contact_id
from aimms_shared.errors import DomainError, Missing, StateConflict
from aimms_shared.events import Envelope
from aimms_shared.mapping import carried_over
from aimms_shared.mongo import utcnow

PRODUCER = "notifications"

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


async def retry_delivery(
    store: NotificationStore, notification_id: str, *, details_wait_seconds: float
) -> dict[str, Any]:
    """A coordinator retries a failed delivery: it is pending again, due now, for the delivery worker's next
    search; the notification as stored. Missing if unknown; StateConflict unless failed with its details kept."""
    doc = await store.get(notification_id)
    if doc is None:
        raise Missing("notification_id", "known-notification", f"no notification {notification_id}")
    now = utcnow()
    requeued = delivery.retried(as_delivery(doc), now, details_wait_seconds)
    if not await store.requeue_failed(requeued, now):
        raise StateConflict(
            "status",
            "failed-only",
            f"notification {notification_id} changed meanwhile (retried by someone else, or its details purged)",
        )
    log.info("delivery.retried", notification_id=notification_id, template=doc["template"])
    stored = await store.get(notification_id)
    if stored is None:  # never deleted; kept for the type checker
        raise Missing("notification_id", "known-notification", f"no notification {notification_id}")
    return stored


async def record_contact(store: NotificationStore, contact: compose.Contact, as_of: datetime) -> int:
    """Keep her latest details and wake the messages that waited for them; how many woke."""
    if not await store.record_contact(contact, as_of):
        return 0
    return await store.wake_waiting(f"participant:{contact.participant_id}")


async def erase(store: NotificationStore, participant_id: str, interest_id: str | None = None) -> int:
    """Erasure: forget her details (and those she gave when she expressed interest) and cancel what was still
    to be sent to her; how many were cancelled."""
    if interest_id is not None:
        await store.erase_contact(interest_contact_id(interest_id))
        await store.cancel_pending_to(interest_contact_id(interest_id), "recipient erased")
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
    cancelled = await store.cancel_pending_to(participant_id, "recipient withdrew")
    # An introduction to her circle that waited for her details now goes out without her.
    await store.wake_waiting(f"participant:{participant_id}")
    return cancelled


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
    await store.open_proposal(carried_over(digest.OpenProposal, event, proposed_at=envelope.occurred_at))


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


class NoCoordinators(DomainError):
    """A programme's coordinators must be reachable before its concerns can reach them."""

    status = 409
    code = "no-coordinators"
    title = "Nobody to tell"


async def coordinators_of(store: NotificationStore, programme_id: str, *, required: bool) -> tuple[str, ...]:
    """Who hears at once of a concern, or of a mentee no place fits: the programme's coordinators, as its
    digest names them.

    Whatever their digest settings. With nobody named, a `required` alert is retried and then parked
    on the dead-letter topic with this reason (nothing is lost: replayed once someone is named).
    """
    config = await store.digest_config(programme_id)
    recipients = tuple(config["recipients"]) if config else ()
    if not recipients and required:
        raise NoCoordinators(f"no coordinators named for {programme_id}: set them with PUT /programmes/{{id}}/digest")
    return recipients


async def digest_config(store: NotificationStore, programme_id: str) -> dict[str, Any]:
    """A programme's digest settings; Missing when none were set."""
    doc = await store.digest_config(programme_id)
    if doc is None:
        raise Missing("programme_id", "digest-configured", f"no digest is configured for {programme_id}")
    return doc
