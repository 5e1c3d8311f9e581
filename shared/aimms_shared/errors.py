"""Errors a domain rule raises; HTTP turns them into problem+json, with no web import here."""

from typing import Any


class DomainError(Exception):
    """A rule of the scheme refused the request; subclasses say which HTTP status fits."""

    status: int = 422
    code: str = "domain-rule"
    title: str = "The request breaks a rule of the scheme"
    retry_after: int | None = None  # seconds, sent as Retry-After: the same request may succeed then

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def headers(self) -> dict[str, str]:
        """HTTP headers the refusal carries."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class NotFound(DomainError):
    """Something the request names does not exist."""

    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(DomainError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = "Conflict with the current state"


class LinkUnusable(DomainError):
    """A single-use link that cannot be used (410): unknown, used or expired get one answer, so nobody
    learns whether a link existed. A kind of link says what to do instead in `advice`."""

    status = 410
    code = "link-unusable"
    title = "This link cannot be used"
    advice = ""

    def __init__(self) -> None:
        super().__init__(self.advice)


class RuleBroken(DomainError):
    """A value breaks a rule of the scheme (422), naming the field and the rule."""

    code = "rule-broken"
    title = "The request breaks a rule of the scheme"

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)


class Missing(NotFound):
    """Something the request names does not exist, or is not the caller's to see (404)."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)


class NotYetKnown(Conflict):
    """Something the request names is owned by another service and has not reached this one yet (409, Retry-After).

    A read model learns of programmes and participants from events, a few seconds behind their owner; it
    cannot tell "not yet" from "never", so it asks the caller to retry rather than answering 404.
    """

    code = "not-yet-known"
    title = "Not known here yet; retry shortly"
    retry_after = 2

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(
            f"{detail}; it reaches this service by an event within seconds of its creation, so retry after "
            f"{self.retry_after} s (an id still unknown after a minute is wrong)",
            field=field,
            rule="known-here",
        )


class StateConflict(Conflict):
    """The request conflicts with the current state (409), naming the field and the rule."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)
