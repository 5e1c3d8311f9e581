"""What a participant does on the portal's pages, over the public APIs."""

import asyncio
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aimms_portal.apis import Absent, CoordinatorApis, MatchingApi, Refused, SurveysApi
from aimms_portal.domain import dashboard
from aimms_portal.domain.forms import Form, Submitted, answers_from, form, problems_from
from aimms_portal.domain.proposals import Proposal, proposal


@dataclass(frozen=True)
class Answered:
    """Her answers were recorded; the link is used up."""

    wave: str
    role: str


class Questionnaires:
    """Answering a questionnaire from the link an invitation emailed."""

    def __init__(self, surveys: SurveysApi) -> None:
        self._surveys = surveys

    async def blank(self, token: str) -> Form:
        """The empty form her link stands for (LinkGone when it cannot be used)."""
        return form(await self._surveys.questionnaire(token))

    async def answer(self, token: str, submitted: Submitted) -> Answered | Form:
        """Record her answers, or the form again as she filled it, each refused answer marked."""
        view = await self._surveys.questionnaire(token)
        reply = await self._surveys.answer(token, answers_from(view, submitted))
        if isinstance(reply, Refused):
            return form(view, submitted, problems_from(view, reply.errors))
        return Answered(wave=reply["wave"], role=reply["role"])


@dataclass(frozen=True)
class Replied:
    """Her answer to a proposal was recorded."""

    accepted: bool
    started: bool  # both sides accepted: the mentoring has begun


class Proposals:
    """Accepting or declining a proposal from the link its email carried."""

    def __init__(self, matching: MatchingApi) -> None:
        self._matching = matching

    async def show(self, token: str) -> Proposal:
        """The proposal her link stands for (LinkGone when the link is not genuine)."""
        return proposal(await self._matching.proposal(token))

    async def reply(self, token: str, reason: str | None) -> Replied | tuple[Proposal, str]:
        """Record the answer the link gives, or the page again with what was wrong."""
        reply = await self._matching.answer(token, (reason or "").strip() or None)
        if isinstance(reply, Refused):
            problem = "; ".join(e.get("message", "") for e in reply.errors) or "Your answer could not be recorded."
            return await self.show(token), problem
        # A decline closes the proposal at once; an acceptance leaves it open until both accepted.
        return Replied(accepted=reply["state"] != "declined", started=reply["state"] == "mentoring")


@dataclass(frozen=True)
class Overview:
    programme: dict[str, Any]
    funnel: dashboard.Funnel
    rounds: list[dashboard.Round]


@dataclass(frozen=True)
class Evaluation:
    programme: dict[str, Any]
    waves: list[dashboard.Wave]
    note: str


# The delivery log's statuses a coordinator acts on, in the order she reads them.
TO_WATCH = ("failed", "pending")


class Coordinators:
    """What a coordinator reads and does on the dashboard, with her own access token."""

    def __init__(self, apis: CoordinatorApis) -> None:
        self._apis = apis

    async def sign_in(self, client_id: str, client_secret: str) -> tuple[str, int]:
        return await self._apis.sign_in(client_id, client_secret)

    async def programmes(self, token: str) -> list[dict[str, Any]]:
        return sorted(await self._apis.get("registration", "/programmes", token), key=lambda p: p["name"])

    async def overview(self, token: str, programme_id: str) -> Overview:
        """The funnel from interest to follow-up, and every matching round's quality."""
        programme, pipeline, pairs, survey, reports = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("registration", "/reports/pipeline", token, programme_id=programme_id),
            self._apis.get("matching", "/reports/matching", token, programme_id=programme_id),
            self._apis.get("surveys", f"/reports/{quote(programme_id, safe='')}", token),
            self._apis.get("matching", f"/programmes/{quote(programme_id, safe='')}/rounds", token),
        )
        return Overview(programme, dashboard.funnel(programme_id, pipeline, pairs, survey), dashboard.rounds(reports))

    async def evaluation(self, token: str, programme_id: str) -> Evaluation:
        """The evaluation's tables, roles side by side."""
        programme, report = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("surveys", f"/reports/{quote(programme_id, safe='')}", token),
        )
        return Evaluation(programme, dashboard.survey_tables(report), report.get("note", ""))

    async def evaluation_csv(self, token: str, programme_id: str) -> str:
        return await self._apis.text("surveys", f"/reports/{quote(programme_id, safe='')}/csv", token)

    async def deliveries(self, token: str, programme_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The programme's emails not sent: failed first, then those still pending."""
        programme, log = await asyncio.gather(
            self._programme(token, programme_id),
            self._apis.get("notifications", "/deliveries", token, programme_id=programme_id),
        )
        watched = sorted((d for d in log if d["status"] in TO_WATCH), key=lambda d: TO_WATCH.index(d["status"]))
        recipients = await asyncio.gather(*(self._recipient(token, d.get("recipient_id")) for d in watched))
        shown = [
            d | {"email": dashboard.email_name(d["template"]), "recipient": recipient}
            for d, recipient in zip(watched, recipients, strict=True)
        ]
        return programme, shown

    async def _recipient(self, token: str, participant_id: str | None) -> str:
        """Who an email is for, as registration names her (notifications keeps ids only in its log)."""
        if participant_id is None:
            return "Coordinators"
        try:
            person = await self._apis.get("registration", f"/participants/{quote(participant_id, safe='')}", token)
        except Absent:
            return "Erased participant"
        return f"{person['name']} <{person['email']}>"

    async def retry(self, token: str, notification_id: str) -> str | None:
        """Send a failed email again; None when queued, else why not."""
        outcome = await self._apis.post("notifications", f"/deliveries/{quote(notification_id, safe='')}/retry", token)
        if isinstance(outcome, Refused):
            return "; ".join(e.get("message", "") for e in outcome.errors) or "The email could not be queued again."
        return None

    async def _programme(self, token: str, programme_id: str) -> dict[str, Any]:
        return await self._apis.get("registration", f"/programmes/{quote(programme_id, safe='')}", token)
