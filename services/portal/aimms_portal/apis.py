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
