"""What a participant does on the portal's pages, over the public APIs."""

from dataclasses import dataclass

from aimms_portal.apis import Refused, SurveysApi
from aimms_portal.domain.forms import Form, Submitted, answers_from, form, problems_from


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
