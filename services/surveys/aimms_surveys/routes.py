"""Surveys' HTTP API: questionnaires by link for participants; definitions, policies and reports for coordinators."""

from typing import Annotated, Any

from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.contracts.registration import Role
from aimms_shared.contracts.surveys import Wave
from aimms_shared.errors import Missing
from aimms_shared.http import Slug, api_router, from_state, problem_responses
from aimms_shared.mongo import utcnow
from aimms_shared.ratelimit import emailed_link_limit
from aimms_surveys.domain import reports
from aimms_surveys.domain.invitations import SurveyPolicy
from aimms_surveys.domain.questionnaires import Questionnaire, QuestionnaireDraft
from aimms_surveys.store import SurveysStore
from aimms_surveys.use_cases import Surveys

router = api_router()
# The token is the participant's only credential here; answering needs no account, by design.
GONE = {410: {"description": "Unknown, used, voided or expired link (indistinguishable on purpose)"}}


Store = Annotated[SurveysStore, from_state("store")]
Service = Annotated[Surveys, from_state("surveys")]


class AnswersIn(BaseModel):
    """Answers by item id: a bare value, or `{"value": ..., "text": "..."}` with the optional free text."""

    model_config = ConfigDict(extra="forbid")

    answers: dict[str, Any] = Field(
        description="single_choice: option id; multiple_choice: list of option ids; yes_no: true/false; "
        "agreement and stars: 1-5; scale_10: 1-10; number: whole number; free_text: text."
    )


class Recorded(BaseModel):
    """The answers were stored, anonymously; the link is used up."""

    recorded: bool
    wave: Wave
    role: Role


class QuestionnaireSummary(BaseModel):
    """One version of a questionnaire."""

    programme_id: str
    wave: Wave
    version: int
    title: str
    items: int


@router.get("/surveys/{token}", tags=["answering"], responses=GONE, dependencies=[emailed_link_limit()])
async def questionnaire_by_link(token: str, surveys: Service) -> dict[str, Any]:
    """The questionnaire her link stands for, with only the items and options her role is asked."""
    return await surveys.questionnaire_for(token)


@router.post(
    "/surveys/{token}",
    status_code=201,
    response_model=Recorded,
    tags=["answering"],
    responses=GONE,
    dependencies=[emailed_link_limit()],
)
async def answer_by_link(token: str, body: AnswersIn, surveys: Service) -> Recorded:
    """Her answers, taken whole or not at all; stored without anything that could identify her."""
    return Recorded(**await surveys.submit(token, body.answers))


@router.get("/questionnaires/{programme_id}", response_model=list[QuestionnaireSummary], tags=["questionnaires"])
async def list_questionnaires(
    programme_id: str, store: Store, caller: Principal = require(ADMIN)
) -> list[QuestionnaireSummary]:
    """Every version of a programme's questionnaires, oldest first."""
    return [
        QuestionnaireSummary(
            programme_id=q.programme_id, wave=q.wave, version=q.version, title=q.title, items=len(q.items)
        )
        for q in await store.questionnaires(programme_id)
    ]


@router.get(
    "/questionnaires/{programme_id}/{wave}",
    response_model=Questionnaire,
    tags=["questionnaires"],
    responses=problem_responses(404),
)
async def get_questionnaire(
    programme_id: str, wave: Wave, store: Store, version: int | None = None, caller: Principal = require(ADMIN)
) -> Questionnaire:
    """A questionnaire's definition: the latest version, or the one asked for."""
    found = (
        await store.questionnaire(programme_id, wave, version)
        if version
        else await store.latest_questionnaire(programme_id, wave)
    )
    if found is None:
        raise Missing("wave", "existing-questionnaire", f"no {wave} questionnaire for '{programme_id}'")
    return found


@router.post(
    "/questionnaires/{programme_id}/{wave}", status_code=201, response_model=Questionnaire, tags=["questionnaires"]
)
async def revise_questionnaire(
    programme_id: str, wave: Wave, draft: QuestionnaireDraft, surveys: Service, caller: Principal = require(ADMIN)
) -> Questionnaire:
    """A new version; invitations issued from now on get it, answers already given keep theirs."""
    return await surveys.revise_questionnaire(programme_id, wave, draft)


@router.get("/programmes/{programme_id}/survey-policy", response_model=SurveyPolicy, tags=["policies"])
async def get_policy(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> SurveyPolicy:
    """When the programme's questionnaires go out, reminders, and the reports' smallest group."""
    return await store.policy(programme_id)


@router.put("/programmes/{programme_id}/survey-policy", response_model=SurveyPolicy, tags=["policies"])
async def set_policy(
    programme_id: str, policy: SurveyPolicy, surveys: Service, caller: Principal = require(ADMIN)
) -> SurveyPolicy:
    """Replace the programme's survey policy (invitations already issued keep their timing)."""
    return await surveys.set_policy(programme_id, policy)


@router.get("/reports/{programme_id}", tags=["reports"], responses=problem_responses(404))
async def report(programme_id: str, surveys: Service, caller: Principal = require(ADMIN)) -> dict[str, Any]:
    """The evaluation's tables: response rates, counts per option, scale statistics, free text (coordinators only)."""
    return await surveys.report(programme_id) | {"generated_at": utcnow().isoformat()}


@router.get(
    "/reports/{programme_id}/csv",
    response_class=PlainTextResponse,
    tags=["reports"],
    responses={200: {"content": {"text/csv": {}}}} | problem_responses(404),
)
async def report_csv(programme_id: Slug, surveys: Service, caller: Principal = require(ADMIN)) -> PlainTextResponse:
    """The tables as CSV for researchers: figures only, no free text."""
    body = reports.report_csv(await surveys.report(programme_id))
    return PlainTextResponse(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{programme_id}-survey-report.csv"'},
    )
