"""Sessions: an access token in a cookie only the person's browser holds, and a CSRF token.

The portal stores nothing: the cookie carries `<csrf>.<access token>`, HttpOnly, SameSite=Strict,
limited to its area's pages and to the token's own lifetime. Every form posts the CSRF half back; a
page of another site can neither read the cookie nor learn that half, so it cannot forge a post
(double submit, with the token bound to the session it came with). The form that opens a session
(a coordinator's sign-in, a participant's emailed link) has its own short-lived CSRF cookie, so a
stranger cannot sign someone into the stranger's own account.

Two areas have sessions: the coordinators' pages (an administrator credential) and a participant's
own page (the token her emailed link was exchanged for).
"""

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response

FORM_SECONDS = 1800


class NoSession(Exception):
    """No session, or a post without its CSRF token: she is sent to the area's entry page."""


@dataclass(frozen=True)
class Session:
    csrf: str
    token: str

    def check(self, submitted: object) -> None:
        """A post's CSRF field must be this session's."""
        if not isinstance(submitted, str) or not hmac.compare_digest(submitted, self.csrf):
            raise NoSession("the form's CSRF token is missing or not this session's")


@dataclass(frozen=True)
class Area:
    """A part of the portal with sessions of its own."""

    name: str
    path: str  # under the portal's root path
    entry: str  # the route someone without a session is sent to

    @property
    def cookie(self) -> str:
        return f"aimms_{self.name}"

    @property
    def form_cookie(self) -> str:
        return f"aimms_{self.name}_form"

    def holds(self, request: Request) -> bool:
        """Whether the request is for one of this area's pages."""
        path, root = request.url.path, request.scope.get("root_path", "")
        if root and path.startswith(root):
            path = path.removeprefix(root)
        return path == self.path or path.startswith(f"{self.path}/")

    def current(self, request: Request) -> Session:
        """The session of this browser (NoSession when there is none)."""
        csrf, _, token = request.cookies.get(self.cookie, "").partition(".")
        if not csrf or not token:
            raise NoSession("not signed in")
        return Session(csrf, token)

    def open(self, request: Request, response: Response, token: str, seconds: int) -> None:
        self._set(request, response, self.cookie, f"{secrets.token_urlsafe(24)}.{token}", seconds)
        response.delete_cookie(self.form_cookie, path=self._path(request))

    def close(self, request: Request, response: Response) -> None:
        response.delete_cookie(self.cookie, path=self._path(request))

    def form_csrf(self, request: Request) -> str:
        """The CSRF token of the form that opens a session: this browser's, or a new one (kept by `keep_form_csrf`)."""
        return request.cookies.get(self.form_cookie) or secrets.token_urlsafe(24)

    def keep_form_csrf(self, request: Request, response: Response, csrf: str) -> None:
        self._set(request, response, self.form_cookie, csrf, FORM_SECONDS)

    def check_form(self, request: Request, submitted: object) -> None:
        expected = request.cookies.get(self.form_cookie, "")
        if not expected or not isinstance(submitted, str) or not hmac.compare_digest(submitted, expected):
            raise NoSession("the form's CSRF token is missing or not this browser's")

    def _set(self, request: Request, response: Response, name: str, value: str, seconds: int) -> None:
        response.set_cookie(
            name,
            value,
            max_age=seconds,
            path=self._path(request),
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )

    def _path(self, request: Request) -> str:
        # Behind the gateway the portal lives under its root path (/portal).
        return f"{request.scope.get('root_path', '')}{self.path}"


COORDINATORS = Area("coordinator", "/coordinators", entry="sign_in_form")
PARTICIPANT = Area("participant", "/me", entry="my_page")
JOINING = Area("joining", "/join", entry="home")  # no sessions: only the form cookie of its CSRF token
AREAS = (COORDINATORS, PARTICIPANT, JOINING)


def area_of(request: Request) -> Area:
    """The area a request is for (the coordinators' when it is neither's)."""
    return next((area for area in AREAS if area.holds(request)), COORDINATORS)
