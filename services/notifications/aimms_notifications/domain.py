"""What to send for which event, and how delivery outcomes are judged. No I/O here."""

import uuid
from dataclasses import dataclass, field
from typing import Any

from aimms_shared.contracts.registration import InterestExpressed
from aimms_shared.events import Envelope

# Fixed namespace: the same (event, recipient, template) always gives the same notification id.
NOTIFICATION_NAMESPACE = uuid.UUID("6f1c7a52-3f0e-4e0b-9a54-5b1f6f3f2a10")

WELCOME = "welcome"


@dataclass(frozen=True)
class Notification:
    """One message to one person, caused by one event."""

    notification_id: str
    template: str
    source_event_id: str
    recipient_email: str
    recipient_name: str
    context: dict[str, Any] = field(default_factory=dict)


def notification_id(source_event_id: str, recipient_email: str, template: str) -> str:
    """The idempotency key: a redelivered event maps to the notification already recorded."""
    return str(uuid.uuid5(NOTIFICATION_NAMESPACE, f"{source_event_id}|{recipient_email.lower()}|{template}"))


def welcome(event: InterestExpressed, envelope: Envelope) -> Notification:
    """The welcome pack owed to someone who expressed interest."""
    return Notification(
        notification_id=notification_id(str(envelope.event_id), event.email, WELCOME),
        template=WELCOME,
        source_event_id=str(envelope.event_id),
        recipient_email=event.email,
        recipient_name=event.name,
        context={
            "name": event.name,
            "programme_name": event.programme_name,
            "institution_name": event.institution_name,
            "registration_url": event.registration_url,
        },
    )


@dataclass(frozen=True)
class DeliveryOutcome:
    """What to do after an attempt: done, try again later, or give up."""

    kind: str  # "sent" | "retry" | "failed"
    reason: str = ""


def judge_smtp_error(code: int | None, message: str, attempts: int, max_attempts: int) -> DeliveryOutcome:
    """Permanent SMTP errors (5xx) fail at once; anything else is retried up to `max_attempts`."""
    if code is not None and 500 <= code < 600:
        return DeliveryOutcome("failed", f"rejected by SMTP server ({code}): {message}")
    if attempts >= max_attempts:
        return DeliveryOutcome("failed", f"gave up after {attempts} attempts: {message}")
    return DeliveryOutcome("retry", message)
