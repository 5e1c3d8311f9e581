"""Rate limits: a burst, then one request per refill interval per caller, and when to come back."""

from aimms_shared.ratelimit import RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_caller_has_a_burst_then_waits_for_the_bucket_to_refill_and_others_are_not_held_up() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=6, burst=3, clock=clock)  # one every 10 s

    assert [limiter.take("10.0.0.1") for _ in range(3)] == [None, None, None]
    assert limiter.take("10.0.0.1") == 10
    assert limiter.take("10.0.0.2") is None  # another caller has her own bucket
    clock.now = 4.0
    assert limiter.take("10.0.0.1") == 6
    clock.now = 10.5
    assert limiter.take("10.0.0.1") is None and limiter.take("10.0.0.1") == 10
    clock.now = 1000.0
    assert [limiter.take("10.0.0.1") for _ in range(4)] == [None, None, None, 10]  # never more than the burst


def test_a_refusal_is_a_429_with_retry_after() -> None:
    refused = RateLimited(7)
    assert (refused.status, refused.retry_after, refused.code) == (429, 7, "rate-limited")


async def test_a_call_made_for_someone_carries_her_address_and_correlation_id() -> None:
    import httpx

    from aimms_shared import context
    from aimms_shared.http import on_behalf_of_the_caller

    request = httpx.Request("GET", "http://surveys/surveys/t")
    await on_behalf_of_the_caller(request)
    assert "X-Forwarded-For" not in request.headers  # outside a request: nobody to speak for

    address, correlation = context.client_address.set("203.0.113.7"), context.correlation_id.set("c-1")
    try:
        await on_behalf_of_the_caller(request)
    finally:
        context.client_address.reset(address)
        context.correlation_id.reset(correlation)
    assert (request.headers["X-Forwarded-For"], request.headers["X-Correlation-ID"]) == ("203.0.113.7", "c-1")
