"""The portal's pages. Each answers HTML; a link's token is only ever a path segment, never logged."""

from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from aimms_portal.domain.forms import Form
from aimms_portal.use_cases import Answered, Proposals, Questionnaires, Replied
from aimms_shared.http import from_state

router = APIRouter()
Answering = Annotated[Questionnaires, from_state("questionnaires")]
Replying = Annotated[Proposals, from_state("proposals")]


def page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    """A template rendered as a whole page."""
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


@router.get("/surveys/{token}", response_class=HTMLResponse)
async def questionnaire(request: Request, token: str, answering: Answering) -> HTMLResponse:
    """The questionnaire an invitation links to."""
    return page(request, "questionnaire.html", form=await answering.blank(token))


@router.post("/surveys/{token}", response_class=HTMLResponse)
async def answer(request: Request, token: str, answering: Answering) -> Response:
    """Her answers: recorded (then the thank-you page), or the form again with each problem beside its item."""
    submitted = await request.form()
    outcome = await answering.answer(token, {name: submitted.getlist(name) for name in submitted})
    if isinstance(outcome, Answered):
        # Post/redirect/get: reloading the thank-you page sends nothing twice.
        return RedirectResponse(request.url_for("thanks"), status_code=303)
    assert isinstance(outcome, Form)
    return page(request, "questionnaire.html", status=422, form=outcome)


@router.get("/answers/{token}", response_class=HTMLResponse)
async def proposal(request: Request, token: str, replying: Replying) -> HTMLResponse:
    """The page a proposal's accept or decline link opens: who, why, and one button (a mail scanner answers nothing)."""
    return page(request, "proposal.html", proposal=await replying.show(token))


@router.post("/answers/{token}", response_class=HTMLResponse)
async def reply(request: Request, token: str, replying: Replying) -> Response:
    """Her answer, as the link gives it; a reason only with a decline."""
    submitted = await request.form()
    reason = submitted.get("reason")
    outcome = await replying.reply(token, reason if isinstance(reason, str) else None)
    if isinstance(outcome, Replied):
        said = "started" if outcome.started else "accepted" if outcome.accepted else "declined"
        return RedirectResponse(request.url_for("replied", outcome=said), status_code=303)
    shown, problem = outcome
    return page(request, "proposal.html", status=422, proposal=shown, problem=problem, reason=reason)


@router.get("/answered/{outcome}", response_class=HTMLResponse)
async def replied(request: Request, outcome: Literal["accepted", "started", "declined"]) -> HTMLResponse:
    """After an answer to a proposal: what happens next."""
    return page(request, "replied.html", outcome=outcome)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request) -> HTMLResponse:
    """What this site is, for someone who arrives without a link."""
    return page(request, "home.html")


@router.get("/thanks", response_class=HTMLResponse)
async def thanks(request: Request) -> HTMLResponse:
    """The thank-you page after a questionnaire."""
    return page(request, "thanks.html")


@router.get("/healthz", include_in_schema=False)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False)
async def readyz() -> dict[str, str]:
    # The portal holds no state: it is ready once it runs; an API that is down is shown per page.
    return {"status": "ready"}
