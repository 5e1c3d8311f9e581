"""Back-off and polling, shared by the relay, consumers, delivery workers and schedulers."""

import asyncio
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)


def backoff_delay(base: float, attempt: int, cap: float = 30.0) -> float:
    """Exponential back-off for the n-th consecutive failure (1-based): base, 2×base, 4×base… capped."""
    return min(cap, base * 2 ** (max(attempt, 1) - 1))


async def poll_due(name: str, run_due: Callable[[], Awaitable[int]], poll_seconds: float) -> None:
    """Until cancelled, do whatever is due (`run_due` returns how much it did), pausing when nothing is.

    Work is claimed under a lease, so a failure here (an outage) is logged and waited out; whatever it
    held becomes due again when its lease runs out.
    """
    while True:
        try:
            if await run_due():
                continue
        except Exception as exc:  # noqa: BLE001 - an outage is waited out; the lease keeps work safe
            log.warning(f"{name}.scheduler_failed", error=repr(exc))
        await asyncio.sleep(poll_seconds)
