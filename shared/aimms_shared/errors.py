"""Errors a domain rule raises; HTTP turns them into problem+json, with no web import here."""

from typing import Any


class DomainError(Exception):
    """A rule of the scheme refused the request; subclasses say which HTTP status fits."""

    status: int = 422
    code: str = "domain-rule"
    title: str = "The request breaks a rule of the scheme"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


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


class StateConflict(Conflict):
    """The request conflicts with the current state (409), naming the field and the rule."""

    def __init__(self, field: str, rule: str, detail: str) -> None:
        super().__init__(detail, field=field, rule=rule)
