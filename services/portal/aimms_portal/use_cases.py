"""What a participant does on the portal's pages, over the public APIs."""

from dataclasses import dataclass

from aimms_portal.apis import MatchingApi, Refused, SurveysApi
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
