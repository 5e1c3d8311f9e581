"""Rate limits for the routes anyone may call (tokens, emailed links, the scheme's own page).

A token bucket per caller (her network address: behind the gateway or the portal, the one they name
in X-Forwarded-For, which uvicorn reads from trusted proxies only) and route: `burst` requests at once, refilled at
`per_minute`. Beyond it the request is refused with 429 and Retry-After, as problem+json. Buckets
live in each replica's memory, so N replicas allow up to N times the rate: a bound against floods
and guessing, not an exact quota.
"""

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from fastapi import Depends, Request

from aimms_shared.errors import DomainError

MAX_CALLERS = 10_000  # buckets kept per limit; the least recently seen caller is forgotten first


class RateLimited(DomainError):
    """Too many requests from one caller: try again after Retry-After seconds."""

    status = 429
    code = "rate-limited"
    title = "Too many requests"

    def __init__(self, seconds: int) -> None:
        super().__init__(f"too many requests: try again in {seconds} s")
        self.retry_after = seconds


class RateLimiter:
    """Token buckets keyed by caller, pure apart from the clock it is given."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = per_minute / 60
        self._burst = burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # caller -> (tokens, at)

    def take(self, caller: str) -> int | None:
        """None when the caller may go on; otherwise the whole seconds until she may."""
        now = self._clock()
        tokens, at = self._buckets.pop(caller, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        if len(self._buckets) >= MAX_CALLERS:
            self._buckets.popitem(last=False)
        if tokens >= 1:
            self._buckets[caller] = (tokens - 1, now)
            return None
        self._buckets[caller] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / self._rate))


def rate_limit(name: str, per_minute: float, burst: int) -> Any:
    """FastAPI dependency: refuse a caller beyond `per_minute` (after a `burst`) on this route (429)."""

    def check(request: Request) -> None:
        limiters: dict[str, RateLimiter] | None = getattr(request.app.state, "rate_limiters", None)
        if limiters is None:
            limiters = request.app.state.rate_limiters = {}
        limiter = limiters.setdefault(name, RateLimiter(per_minute, burst))
        caller = request.client.host if request.client else "unknown"
        wait = limiter.take(caller)
        if wait is not None:
            raise RateLimited(wait)

    return Depends(check)


def emailed_link_limit() -> Any:
    """The bound on routes whose only credential is an emailed link's token: plenty for a person (the
    page, her answer, a few corrections), far too little for trying tokens or flooding."""
    return rate_limit("emailed-links", per_minute=30, burst=20)
