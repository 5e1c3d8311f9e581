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
