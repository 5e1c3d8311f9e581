"""A message's delivery, free of I/O: where it stands, and what each setback means for it.

Two setbacks delay a message: details it names have not arrived (it looks again with back-off,
until its deadline), and the SMTP server did not take it (a temporary refusal is retried with
back-off, a permanent one or too many attempts fail it). The delivery worker asks these functions
what to do and the store records it. A coordinator may requeue a failed delivery (`retried`).
"""

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from aimms_notifications.domain.compose import details_deadline
from aimms_shared.errors import StateConflict
from aimms_shared.retry import backoff_delay

Status = Literal["pending", "sent", "failed", "cancelled", "skipped"]


@dataclass(frozen=True)
class Patience:
    """How long a programme's messages wait and how often they try (from the service's settings)."""

    retry_base_seconds: float
    retry_cap_seconds: float
    recheck_cap_seconds: float
    max_attempts: int


@dataclass(frozen=True)
class Delivery:
    """One message's delivery: its status, SMTP attempts so far, looks for missing details, until
    when it may wait for them, and whether its per-message details were purged (past retention)."""

    notification_id: str
    message_id: str
    details_deadline: datetime
    status: Status = "pending"
    attempts: int = 0
    detail_checks: int = 0
    details_purged: bool = False


@dataclass(frozen=True)
class LookAgain:
    """Details are still missing: look again at `due` (sooner, if they arrive)."""

    due: datetime
    delay: float
    missing: tuple[str, ...]


@dataclass(frozen=True)
class TryAgain:
    """The SMTP server refused for now: send again at `due`."""

    due: datetime
    delay: float
    reason: str
    attempt: int


@dataclass(frozen=True)
class GiveUp:
    """The message will not be sent; the reason is recorded."""

    reason: str


def details_missing(delivery: Delivery, missing: list[str], now: datetime, patience: Patience) -> LookAgain | GiveUp:
    """Wait for missing details with back-off, never past the deadline; then give up naming them."""
    if now >= delivery.details_deadline:
        deadline = delivery.details_deadline.isoformat()
        return GiveUp(f"details still missing after waiting until {deadline}: {', '.join(missing)}")
    delay = backoff_delay(patience.retry_base_seconds, delivery.detail_checks + 1, patience.recheck_cap_seconds)
    return LookAgain(min(delivery.details_deadline, now + timedelta(seconds=delay)), delay, tuple(missing))


def smtp_refused(
    delivery: Delivery, code: int | None, message: str, now: datetime, patience: Patience
) -> TryAgain | GiveUp:
    """Permanent SMTP errors (5xx) fail at once; anything else is retried with back-off up to the maximum."""
    attempt = delivery.attempts + 1
    if code is not None and 500 <= code < 600:
        return GiveUp(f"rejected by SMTP server ({code}): {message}")
    if attempt >= patience.max_attempts:
        return GiveUp(f"gave up after {attempt} attempts: {message}")
    delay = backoff_delay(patience.retry_base_seconds, attempt, patience.retry_cap_seconds)
    return TryAgain(now + timedelta(seconds=delay), delay, message, attempt)


def retried(delivery: Delivery, now: datetime, details_wait_seconds: float) -> Delivery:
    """A coordinator's retry: a failed delivery, pending again with fresh patience (no attempts, no looks
    for details, a new deadline for them).

    Only a failed delivery may be retried: SMTP never accepted it, so a retry cannot send a second copy
    (a sent one would, a pending one is still being tried, a cancelled or skipped one must not go). One
    whose per-message details were purged cannot be composed any more.
    """
    if delivery.status != "failed":
        raise StateConflict(
            "status",
            "failed-only",
            f"only a failed delivery can be retried; notification {delivery.notification_id} is {delivery.status}",
        )
    if delivery.details_purged:
        raise StateConflict(
            "notification_id",
            "details-kept",
            f"the details notification {delivery.notification_id} was written from were purged after the "
            "retention period; it can no longer be composed",
        )
    return dataclasses.replace(
        delivery,
        status="pending",
        attempts=0,
        detail_checks=0,
        details_deadline=details_deadline(now, details_wait_seconds),
    )
