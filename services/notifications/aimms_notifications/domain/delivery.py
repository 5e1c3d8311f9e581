"""What an SMTP answer means for a message: sent, try again later, or give up. No I/O."""

from dataclasses import dataclass


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
