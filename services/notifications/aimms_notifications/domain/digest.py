"""The coordinators' daily digest: who gets it, when, and what it lists. No I/O."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aimms_notifications.domain.messages import DIGEST, SIDES, Notification, to_coordinators
from aimms_shared.contracts.matching import (
    Side,
)
from aimms_shared.errors import RuleBroken

# A digest lists at most this many rows of each kind, and says how many more there are.
DIGEST_ROWS = 200
MAX_DIGEST_RECIPIENTS = 20
_ADDRESS = re.compile(r"[^\s<>()\[\]@,;:\"']+@[^\s<>()\[\],;:\"']+")


@dataclass(frozen=True)
class DigestConfig:
    """Who receives a programme's daily digest, and at which hour (UTC)."""

    programme_id: str
    recipients: tuple[str, ...]
    enabled: bool
    hour_utc: int


@dataclass(frozen=True)
class OpenProposal:
    """A proposal not yet accepted by both, declined, lapsed or ended (the digest's read model)."""

    pair_id: str
    programme_id: str
    mentee_id: str
    mentor_id: str
    proposed_at: datetime
    reply_by: datetime
    answered: tuple[Side, ...] = ()


@dataclass(frozen=True)
class FailedDelivery:
    """A message given up on, as the digest reports it."""

    template: str
    recipient_id: str | None
    failed_at: datetime
    reason: str


def check_digest(config: DigestConfig) -> DigestConfig:
    """A digest's recipients, normalised; RuleBroken when it could never be sent."""
    recipients = tuple(dict.fromkeys(r.strip().lower() for r in config.recipients))
    if config.enabled and not recipients:
        raise RuleBroken("recipients", "at-least-one", "an enabled digest needs at least one recipient")
    if len(recipients) > MAX_DIGEST_RECIPIENTS:
        raise RuleBroken("recipients", "at-most", f"a digest goes to at most {MAX_DIGEST_RECIPIENTS} recipients")
    if not 0 <= config.hour_utc <= 23:
        raise RuleBroken("hour_utc", "hour-of-day", "hour_utc is an hour of the day, 0 to 23")
    return DigestConfig(config.programme_id, recipients, config.enabled, config.hour_utc)


def digest_slot(now: datetime, hour_utc: int) -> datetime:
    """The latest `hour_utc`:00 UTC at or before `now`: the day a digest built now belongs to."""
    today = now.astimezone(UTC).replace(hour=hour_utc, minute=0, second=0, microsecond=0)
    return today if today <= now else today - timedelta(days=1)


def next_digest_at(now: datetime, hour_utc: int) -> datetime:
    """When the next day's digest is due, after the one for `now`'s day."""
    return digest_slot(now, hour_utc) + timedelta(days=1)


def digest_source(programme_id: str, slot: datetime) -> str:
    """The idempotency key of a programme's digest for one day (stands in for a source event id)."""
    return f"digest:{programme_id}:{slot.date().isoformat()}"


def redact_addresses(text: str) -> str:
    """An error text fit for a coordinators' email: addresses replaced, at most 200 characters."""
    redacted = _ADDRESS.sub("[address]", text)
    return redacted if len(redacted) <= 200 else redacted[:199] + "…"


def digest(
    config: DigestConfig,
    *,
    programme_name: str,
    slot: datetime,
    built_at: datetime,
    proposals: list[OpenProposal],
    failures: list[FailedDelivery],
) -> list[Notification]:
    """The day's digest for each recipient: proposals awaiting answers and failed deliveries.

    Ids and times only (names are added when it is sent, from the contacts read model); the
    notification id is keyed by (programme, day, recipient), so a day's digest is queued once.
    """
    if not config.enabled:
        return []
    source = digest_source(config.programme_id, slot)
    by_deadline = sorted(proposals, key=lambda p: (p.reply_by, p.pair_id))
    latest_first = sorted(failures, key=lambda f: f.failed_at, reverse=True)
    context = {
        "programme_name": programme_name,
        "digest_date": slot,
        "built_at": built_at,
        "since": built_at - timedelta(days=1),
        "awaiting_total": len(proposals),
        "failed_total": len(failures),
        "awaiting": [
            {
                "pair_id": p.pair_id,
                "mentee_id": p.mentee_id,
                "mentor_id": p.mentor_id,
                "proposed_at": p.proposed_at,
                "reply_by": p.reply_by,
                "overdue": p.reply_by <= built_at,
                "waiting_for": [side for side in SIDES if side not in p.answered],
            }
            for p in by_deadline[:DIGEST_ROWS]
        ],
        "failed": [
            {
                "template": f.template,
                "recipient_id": f.recipient_id,
                "failed_at": f.failed_at,
                "reason": redact_addresses(f.reason),
            }
            for f in latest_first[:DIGEST_ROWS]
        ],
    }
    return to_coordinators(source, DIGEST, config.programme_id, config.recipients, **context)
