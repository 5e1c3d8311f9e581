"""Links to her programme's page: single-use, short-lived, asked for by email address.

She types her address; each active registration under it gets a link by email. The link's secret
is random and only its hash is stored, so the store alone never opens anyone's page. Opening the
link uses it up and gives her an access token for herself alone (scope `self`).
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aimms_registration.domain.participants import Participant
from aimms_shared.contracts.registration import ParticipantLinkIssued
from aimms_shared.errors import LinkUnusable

LIFETIME = timedelta(hours=24)
# At most one link per registration this often: typing an address again and again sends nothing new.
RESEND_AFTER = timedelta(minutes=2)


class PageLinkUnusable(LinkUnusable):
    code = "page-link-unusable"
    advice = (
        "This link to your programme's page cannot be used: it was already opened, or has expired. "
        "Ask for a new one with your email address."
    )


@dataclass(frozen=True)
class PageLink:
    """A link as the store keeps it: the hash of its secret, whose page it opens, until when."""

    link_id: str
    participant_id: str
    programme_id: str
    institution_id: str
    issued_at: datetime
    expires_at: datetime


def link_id(secret: str) -> str:
    """What the store knows a link by: the SHA-256 of its secret (a random secret needs no salt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def may_send(participant: Participant, last_issued_at: datetime | None, now: datetime) -> bool:
    """Whether she gets a link now: active, and none sent in the last RESEND_AFTER."""
    return participant.status == "active" and (last_issued_at is None or now - last_issued_at >= RESEND_AFTER)


def issue(participant: Participant, pages_url: str, now: datetime) -> tuple[PageLink, ParticipantLinkIssued]:
    """A new link to her page, and the event that has it emailed."""
    secret = secrets.token_urlsafe(32)
    link = PageLink(
        link_id=link_id(secret),
        participant_id=participant.participant_id,
        programme_id=participant.programme_id,
        institution_id=participant.institution_id,
        issued_at=now,
        expires_at=now + LIFETIME,
    )
    event = ParticipantLinkIssued(
        participant_id=participant.participant_id,
        programme_id=participant.programme_id,
        institution_id=participant.institution_id,
        url=f"{pages_url.rstrip('/')}/me/links/{secret}",
        expires_at=link.expires_at,
    )
    return link, event
