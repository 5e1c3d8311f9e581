"""The public APIs the portal stands in front of, reached over HTTP like any school's own portal."""

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx


class Unavailable(Exception):
    """An API did not answer, or failed: the participant is asked to try again later."""


class LinkGone(Exception):
    """The link cannot be used (unknown, used, voided or expired); `detail` is the API's own wording."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class Refused:
    """Answers not taken, with the API's reasons (`field`, `rule`, `message` each)."""

    errors: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def of(cls, response: httpx.Response) -> "Refused":
        """A problem+json answer's reasons: each field's, or else the problem's detail."""
        body = response.json()
        return cls(list(body.get("errors") or []) or [{"message": body.get("detail", body.get("title", ""))}])


# What an API answers when it refuses a request for a reason the page can show.
REFUSALS = (404, 409, 422)


class LinkApi:
    """A service's routes where the token of an emailed link is the only credential."""

    service = ""
    prefix = ""
    # Statuses meaning the link cannot be used (now): the page says so in the API's words.
    gone = (404, 410)

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def _call(self, method: str, token: str, **kwargs: Any) -> httpx.Response:
        # Quoted whole: a token is never a path, so nothing typed into a link reaches another route.
        try:
            response = await self._client.request(method, f"{self.prefix}/{quote(token, safe='')}", **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.service} did not answer: {type(exc).__name__}") from exc
        if response.status_code in self.gone:
            raise LinkGone(response.json().get("detail", "This link cannot be used."))
        return response

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        if response.status_code >= 400:
            raise Unavailable(f"{self.service} answered {response.status_code}")
        return response.json()


class SurveysApi(LinkApi):
    """The surveys service's answering routes."""

    service, prefix = "surveys", "/surveys"

    async def questionnaire(self, token: str) -> dict[str, Any]:
        """The questionnaire her link stands for, as her role sees it."""
        return self._body(await self._call("GET", token))

    async def answer(self, token: str, answers: dict[str, Any]) -> dict[str, Any] | Refused:
        """Her answers recorded (the API's receipt), or refused with its reasons."""
        response = await self._call("POST", token, json={"answers": answers})
        if response.status_code == 422:
            return Refused(list(response.json().get("errors") or []))
        return self._body(response)


class MatchingApi(LinkApi):
    """Matching's answer links: a proposal accepted or declined from its email."""

    service, prefix = "matching", "/answer-links"
    # 409: already answered, or the proposal lapsed or closed meanwhile.
    gone = (404, 409, 410)

    async def proposal(self, token: str) -> dict[str, Any]:
        """The proposal her link stands for, the action it gives and the other side's profile."""
        return self._body(await self._call("GET", token))

    async def answer(self, token: str, reason: str | None) -> dict[str, Any] | Refused:
        """Her answer recorded (the pair as it now is), or refused with its reasons."""
        response = await self._call("POST", token, json={"reason": reason})
        if response.status_code == 422:
            return Refused(list(response.json().get("errors") or []))
        return self._body(response)


class SignInRefused(Exception):
    """The credential was not accepted, or is not a coordinator's (admin scope)."""


class Absent(Exception):
    """What the page names does not exist (the API answered 404)."""


class SessionEnded(Exception):
    """The access token of a session expired or was refused: she signs in (or asks for a link) again."""


SERVICES = ("registration", "matching", "surveys", "notifications")


class Apis:
    """The four services' routes behind a token, called with the signed-in person's own access token.

    A coordinator's token comes from her administrator credential; a participant's from the link to
    her page that registration emailed her (it acts for her alone).
    """

    def __init__(self, clients: dict[str, httpx.AsyncClient]) -> None:
        self._clients = clients

    async def sign_in(self, client_id: str, client_secret: str) -> tuple[str, int]:
        """An access token for an admin credential, and how many seconds it lasts."""
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        response = await self._request("registration", "POST", "/oauth/token", data=form)
        if response.status_code in (400, 401, 422):
            raise SignInRefused("The client ID or secret is not right.")
        body = self._json(response)
        if "admin" not in body.get("scope", "").split():
            raise SignInRefused("This credential is a school portal's, not a coordinator's.")
        return body["access_token"], int(body["expires_in"])

    async def ask_for_page_link(self, email: str) -> Refused | None:
        """Registration emails her a link to her page (if the address is registered; it never says)."""
        return self._refused(await self._request("registration", "POST", "/page-links", json={"email": email}))

    async def open_page(self, secret: str) -> tuple[str, int]:
        """Her emailed link used up for an access token acting for her alone, and how long it lasts."""
        response = await self._request("registration", "POST", "/page-links/session", json={"link": secret})
        if response.status_code in (410, 422):
            raise LinkGone(response.json().get("detail") or "This link cannot be used.")
        body = self._json(response)
        return body["access_token"], int(body["expires_in"])

    async def public_programme(self, programme_id: str) -> dict[str, Any]:
        """A programme open to non-members, as the scheme's own page shows it (Absent otherwise)."""
        return self._json(
            await self._request("registration", "GET", f"/programmes/{quote(programme_id, safe='')}/public")
        )

    async def express_interest_openly(self, programme_id: str, interest: dict[str, str]) -> Refused | None:
        """Her interest, from the scheme's own page; refused with the API's reasons."""
        path = f"/programmes/{quote(programme_id, safe='')}/interests"
        return self._refused(await self._request("registration", "POST", path, json=interest))

    async def get(self, service: str, path: str, token: str, **params: Any) -> Any:
        """A read, as JSON."""
        return self._json(await self._authorised(service, "GET", path, token, params=params))

    async def text(self, service: str, path: str, token: str) -> str:
        """A read, as text (CSV downloads)."""
        return self._checked(await self._authorised(service, "GET", path, token)).text

    async def post(self, service: str, path: str, token: str, body: Any = None) -> Any | Refused:
        """An action; refused with the API's reasons on 404, 409 or 422."""
        return await self._act(service, "POST", path, token, body)

    async def put(self, service: str, path: str, token: str, body: Any) -> Any | Refused:
        """A replacement (her choices); refused with the API's reasons on 404, 409 or 422."""
        return await self._act(service, "PUT", path, token, body)

    async def _act(self, service: str, method: str, path: str, token: str, body: Any) -> Any | Refused:
        response = await self._authorised(service, method, path, token, json=body)
        if response.status_code in REFUSALS:
            return Refused.of(response)
        return None if response.status_code == 204 else self._json(response)

    def _refused(self, response: httpx.Response) -> Refused | None:
        """An action answering nothing: None when done, or the API's reasons."""
        if response.status_code in REFUSALS:
            return Refused.of(response)
        self._checked(response)
        return None

    async def _authorised(self, service: str, method: str, path: str, token: str, **kwargs: Any) -> httpx.Response:
        response = await self._request(service, method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
        if response.status_code in (401, 403):
            raise SessionEnded(f"{service} refused the token ({response.status_code})")
        return response

    async def _request(self, service: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._clients[service].request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{service} did not answer: {type(exc).__name__}") from exc

    @staticmethod
    def _checked(response: httpx.Response) -> httpx.Response:
        if response.status_code == 404:
            raise Absent(response.json().get("detail", "not found"))
        if response.status_code >= 400:
            raise Unavailable(f"{response.request.url.host} answered {response.status_code}")
        return response

    def _json(self, response: httpx.Response) -> Any:
        return self._checked(response).json()
