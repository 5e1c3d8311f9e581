"""A coordinator's session: her access token in a cookie only her browser holds, and a CSRF token.

The portal stores nothing: the cookie carries `<csrf>.<access token>`, HttpOnly, SameSite=Strict,
limited to the coordinators' pages and to the token's own lifetime. Every form posts the CSRF
half back; a page of another site can neither read the cookie nor learn that half, so it cannot
forge a post (double submit, with the token bound to the session it came with). The sign-in form
has its own short-lived CSRF cookie, so a stranger cannot sign a coordinator into their account.
"""

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

SESSION = "aimms_coordinator"
SIGN_IN = "aimms_sign_in"
SIGN_IN_SECONDS = 1800


class NoSession(Exception):
    """No session, or a post without its CSRF token: she is sent to sign in."""


@dataclass(frozen=True)
class Session:
    csrf: str
    token: str

    def check(self, submitted: object) -> None:
        """A post's CSRF field must be this session's."""
        if not isinstance(submitted, str) or not hmac.compare_digest(submitted, self.csrf):
            raise NoSession("the form's CSRF token is missing or not this session's")


def current(request: Request) -> Session:
    """The signed-in coordinator's session (NoSession when there is none)."""
    csrf, _, token = request.cookies.get(SESSION, "").partition(".")
    if not csrf or not token:
        raise NoSession("not signed in")
    return Session(csrf, token)


def open_session(request: Request, response: Response, token: str, seconds: int) -> None:
    _set(request, response, SESSION, f"{secrets.token_urlsafe(24)}.{token}", seconds)
    response.delete_cookie(SIGN_IN, path=_path(request))


def close_session(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION, path=_path(request))


def sign_in_csrf(request: Request) -> str:
    """The sign-in form's CSRF token: this browser's, or a new one (kept by `keep_sign_in_csrf`)."""
    return request.cookies.get(SIGN_IN) or secrets.token_urlsafe(24)


def keep_sign_in_csrf(request: Request, response: Response, csrf: str) -> None:
    _set(request, response, SIGN_IN, csrf, SIGN_IN_SECONDS)


def check_sign_in(request: Request, submitted: object) -> None:
    expected = request.cookies.get(SIGN_IN, "")
    if not expected or not isinstance(submitted, str) or not hmac.compare_digest(submitted, expected):
        raise NoSession("the sign-in form's CSRF token is missing or not this browser's")


def _set(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=_path(request),
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="strict",
    )


def _path(request: Request) -> str:
    # Behind the gateway the portal lives under its root path (/portal).
    return f"{request.scope.get('root_path', '')}/coordinators"
