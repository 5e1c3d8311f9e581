"""Notifications' HTTP API: the delivery log and retries, coordinators' digests, reminder preferences and opt-out
links."""

from datetime import datetime
from typing import Annotated, Any

from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from aimms_notifications import use_cases
from aimms_notifications.domain import digest
from aimms_notifications.links import OptOutLinks
from aimms_notifications.settings import NotificationsSettings
from aimms_notifications.store import NotificationStore
from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.errors import RuleBroken
from aimms_shared.http import api_router, from_state, page, problem_responses
from aimms_shared.ratelimit import emailed_link_limit

router = api_router("deliveries")


Store = Annotated[NotificationStore, from_state("store")]
Links = Annotated[OptOutLinks, from_state("links")]
Settings = Annotated[NotificationsSettings, from_state("settings")]


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
    details_purged: bool = False


def _delivery_out(doc: dict[str, Any]) -> DeliveryOut:
    return DeliveryOut(
        notification_id=doc["_id"],
        template=doc["template"],
        source_event_id=doc["source_event_id"],
        programme_id=doc.get("programme_id"),
        recipient_id=doc.get("recipient_id"),
        status=doc["status"],
        attempts=doc.get("attempts", 0),
        created_at=doc["created_at"],
        sent_at=doc.get("sent_at"),
        last_error=doc.get("last_error"),
        waiting_for=doc.get("waiting_for", []),
        details_purged="purged_at" in doc,
    )


@router.get("/deliveries", response_model=list[DeliveryOut])
async def delivery_log(
    store: Store,
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
    return [_delivery_out(d) for d in docs]


@router.post("/deliveries/{notification_id}/retry", response_model=DeliveryOut, responses=problem_responses(404, 409))
async def retry_delivery(
    notification_id: str, store: Store, settings: Settings, caller: Principal = require(ADMIN)
) -> DeliveryOut:
    """Send a failed message again: pending once more, it goes out at the delivery worker's next search.

    Only a failed delivery can be retried (SMTP never accepted it, so no one receives it twice), and
    only while its details are kept (409 otherwise).
    """
    doc = await use_cases.retry_delivery(store, notification_id, details_wait_seconds=settings.details_wait_seconds)
    return _delivery_out(doc)


# -- the coordinators' daily digest


class DigestIn(BaseModel):
    """Who receives a programme's daily digest, and when."""

    model_config = ConfigDict(extra="forbid")

    recipients: list[EmailStr] = Field(max_length=digest.MAX_DIGEST_RECIPIENTS)
    enabled: bool = True
    hour_utc: int = Field(default=7, ge=0, le=23, description="Hour of the day (UTC) the digest goes out.")


class DigestOut(BaseModel):
    """A programme's digest settings and schedule; `opted_out`: recipients who refused it by its link."""

    programme_id: str
    recipients: list[str]
    enabled: bool
    hour_utc: int
    next_due_at: datetime | None = None
    last_digest: str | None = Field(default=None, description="The day (UTC) of the last digest queued.")
    opted_out: list[str] = []


async def _digest_out(store: NotificationStore, links: OptOutLinks, doc: dict[str, Any]) -> DigestOut:
    keys = {links.subscriber_for_address(r): r for r in doc["recipients"]}
    refused = await store.opted_out(keys)
    return DigestOut(
        programme_id=doc["_id"],
        recipients=doc["recipients"],
        enabled=doc["enabled"],
        hour_utc=doc["hour_utc"],
        next_due_at=doc.get("digest_due"),
        last_digest=doc.get("last_digest"),
        opted_out=sorted(keys[k] for k in refused),
    )


@router.put("/programmes/{programme_id}/digest", response_model=DigestOut, tags=["digests"])
async def configure_digest(
    programme_id: str, body: DigestIn, store: Store, links: Links, caller: Principal = require(ADMIN)
) -> DigestOut:
    """Set who receives the programme's daily digest of proposals awaiting answers and failed deliveries."""
    config = digest.DigestConfig(programme_id, tuple(str(r) for r in body.recipients), body.enabled, body.hour_utc)
    return await _digest_out(store, links, await use_cases.configure_digest(store, config))


@router.get(
    "/programmes/{programme_id}/digest", response_model=DigestOut, tags=["digests"], responses=problem_responses(404)
)
async def get_digest(programme_id: str, store: Store, links: Links, caller: Principal = require(ADMIN)) -> DigestOut:
    """The programme's digest settings, when the next is due and who opted out of it."""
    return await _digest_out(store, links, await use_cases.digest_config(store, programme_id))


# -- reminders: participants may refuse reminders (never the procedure's own messages)


class PreferenceIn(BaseModel):
    """Whether she receives reminders (proposal and survey reminders)."""

    model_config = ConfigDict(extra="forbid")

    reminders: bool


class PreferenceOut(BaseModel):
    """Her preference, and who last changed it (`link`: she did, by an email's opt-out link)."""

    participant_id: str
    reminders: bool
    changed_at: datetime | None = None
    changed_by: str | None = None


def _preference_out(participant_id: str, doc: dict[str, Any]) -> PreferenceOut:
    return PreferenceOut(
        participant_id=participant_id,
        reminders=doc["reminders"],
        changed_at=doc.get("changed_at"),
        changed_by=doc.get("changed_by"),
    )


@router.get("/participants/{participant_id}/preferences", response_model=PreferenceOut, tags=["preferences"])
async def get_preferences(participant_id: str, store: Store, caller: Principal = require(ADMIN)) -> PreferenceOut:
    """Whether she receives reminders (the default) or opted out."""
    doc = await use_cases.reminders_of(store, use_cases.subscriber_of(participant_id))
    return _preference_out(participant_id, doc)


@router.put("/participants/{participant_id}/preferences", response_model=PreferenceOut, tags=["preferences"])
async def set_preferences(
    participant_id: str, body: PreferenceIn, store: Store, caller: Principal = require(ADMIN)
) -> PreferenceOut:
    """Turn her reminders off or back on; messages the procedure needs are always sent."""
    subscriber = use_cases.subscriber_of(participant_id)
    doc = await use_cases.set_reminders(store, subscriber, reminders=body.reminders, by=f"admin:{caller.client_id}")
    return _preference_out(participant_id, doc)


# -- the opt-out link in every optional email

_WHAT = "reminders and daily digests"


@router.get(
    "/opt-out/{token}", response_class=HTMLResponse, tags=["opt-out links"], dependencies=[emailed_link_limit()]
)
async def opt_outpage(token: str, links: Links) -> HTMLResponse:
    """The page an email's opt-out link opens: one button, so a mail scanner following links changes nothing."""
    links.read(token)  # a link not valid is refused with a page in words
    body = (
        f"<p>You will still receive every message the mentoring procedure needs (proposals, "
        f"introductions, questionnaires); only {_WHAT} stop.</p>"
        '<form method="post"><button>Stop reminders</button></form>'
    )
    return page(f"Stop {_WHAT}", body)


@router.post(
    "/opt-out/{token}", response_class=HTMLResponse, tags=["opt-out links"], dependencies=[emailed_link_limit()]
)
async def opt_out(token: str, store: Store, links: Links) -> HTMLResponse:
    """Opt out of reminders and digests: the page's button, or a mail client's one-click POST (RFC 8058)."""
    subscriber = links.read(token)
    await use_cases.set_reminders(store, subscriber, reminders=False, by="link")
    return page("Done", f"<p>You will receive no more {_WHAT}. Your coordinator can turn them back on.</p>")
