"""The portal's pages. Each answers HTML; a link's token is only ever a path segment, never logged."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse
from starlette.datastructures import URL, FormData

from aimms_portal.apis import SignInRefused
from aimms_portal.domain.forms import Form
from aimms_portal.sessions import COORDINATORS, JOINING, PARTICIPANT, Area, NoSession, Session
from aimms_portal.use_cases import Answered, Coordinators, Joining, MyProgramme, Proposals, Questionnaires, Replied
from aimms_shared.http import from_state

router = APIRouter(default_response_class=HTMLResponse)
Answering = Annotated[Questionnaires, from_state("questionnaires")]
Replying = Annotated[Proposals, from_state("proposals")]
Coordinating = Annotated[Coordinators, from_state("coordinators")]
Mine = Annotated[MyProgramme, from_state("my_programme")]
Joins = Annotated[Joining, from_state("joining")]
SignedIn = Annotated[Session, Depends(COORDINATORS.current)]
HerSession = Annotated[Session, Depends(PARTICIPANT.current)]


async def _coordinators_form(request: Request, session: SignedIn) -> FormData:
    """A coordinator's form, once its CSRF token shows it came from her session's page."""
    submitted = await request.form()
    session.check(submitted.get("csrf"))
    return submitted


async def _her_form(request: Request, session: HerSession) -> FormData:
    """A participant's form, once its CSRF token shows it came from her session's page."""
    submitted = await request.form()
    session.check(submitted.get("csrf"))
    return submitted


CoordinatorsForm = Annotated[FormData, Depends(_coordinators_form)]
HerForm = Annotated[FormData, Depends(_her_form)]


def page(request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    """A template rendered as a whole page."""
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status)


def form_page(area: Area, request: Request, template: str, status: int = 200, **context: object) -> HTMLResponse:
    """A page whose form opens a session (or needs none): its CSRF token also in the area's form cookie."""
    csrf = area.form_csrf(request)
    response = page(request, template, status=status, csrf=csrf, **context)
    area.keep_form_csrf(request, response, csrf)
    return response


def see_other(target: URL) -> RedirectResponse:
    """Post/redirect/get: after a form, the browser goes to a page it can reload without sending twice."""
    return RedirectResponse(target, status_code=303)


def signed_out(area: Area, request: Request) -> Response:
    """The session closed, and back to the area's entry page."""
    response = see_other(request.url_for(area.entry))
    area.close(request, response)
    return response


@router.get("/surveys/{token}")
async def questionnaire(request: Request, token: str, answering: Answering) -> HTMLResponse:
    """The questionnaire an invitation links to."""
    return page(request, "questionnaire.html", form=await answering.blank(token))


@router.post("/surveys/{token}")
async def answer(request: Request, token: str, answering: Answering) -> Response:
    """Her answers: recorded (then the thank-you page), or the form again with each problem beside its item."""
    submitted = await request.form()
    outcome = await answering.answer(token, {name: submitted.getlist(name) for name in submitted})
    if isinstance(outcome, Answered):
        return see_other(request.url_for("thanks"))
    assert isinstance(outcome, Form)
    return page(request, "questionnaire.html", status=422, form=outcome)


@router.get("/answers/{token}")
async def proposal(request: Request, token: str, replying: Replying) -> HTMLResponse:
    """The page a proposal's accept or decline link opens: who, why, and one button (a mail scanner answers nothing)."""
    return page(request, "proposal.html", proposal=await replying.show(token))


@router.post("/answers/{token}")
async def reply(request: Request, token: str, replying: Replying) -> Response:
    """Her answer, as the link gives it; a reason only with a decline."""
    submitted = await request.form()
    reason = submitted.get("reason")
    outcome = await replying.reply(token, reason if isinstance(reason, str) else None)
    if isinstance(outcome, Replied):
        said = "started" if outcome.started else "accepted" if outcome.accepted else "declined"
        return see_other(request.url_for("replied", outcome=said))
    shown, problem = outcome
    return page(request, "proposal.html", status=422, proposal=shown, problem=problem, reason=reason)


@router.get("/answered/{outcome}")
async def replied(request: Request, outcome: Literal["accepted", "started", "declined"]) -> HTMLResponse:
    """After an answer to a proposal: what happens next."""
    return page(request, "replied.html", outcome=outcome)


# -- coordinators


@router.get("/coordinators/sign-in")
async def sign_in_form(request: Request, ended: bool = False) -> HTMLResponse:
    """Sign in with the scheme's administrator credential (a client ID and secret; SSO can stand here later)."""
    return _sign_in_page(request, ended=ended)


@router.post("/coordinators/sign-in")
async def sign_in(request: Request, coordinating: Coordinating) -> Response:
    submitted = await request.form()
    COORDINATORS.check_form(request, submitted.get("csrf"))
    client_id, secret = str(submitted.get("client_id") or ""), str(submitted.get("client_secret") or "")
    try:
        token, seconds = await coordinating.sign_in(client_id.strip(), secret.strip())
    except SignInRefused as refused:
        return _sign_in_page(request, status=401, problem=str(refused), client_id=client_id)
    response = see_other(request.url_for("programmes"))
    COORDINATORS.open(request, response, token, seconds)
    return response


def _sign_in_page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    return form_page(COORDINATORS, request, "coordinators/sign_in.html", status, **context)


@router.post("/coordinators/sign-out", dependencies=[Depends(_coordinators_form)])
async def sign_out(request: Request) -> Response:
    return signed_out(COORDINATORS, request)


@router.get("/coordinators")
async def programmes(request: Request, session: SignedIn, coordinating: Coordinating) -> HTMLResponse:
    """The programmes she coordinates."""
    listed = await coordinating.programmes(session.token)
    return page(request, "coordinators/programmes.html", session=session, programmes=listed)


@router.get("/coordinators/programmes/{programme_id}")
async def overview(request: Request, programme_id: str, session: SignedIn, coordinating: Coordinating) -> HTMLResponse:
    """The funnel and the matching rounds of one programme."""
    shown = await coordinating.overview(session.token, programme_id)
    return page(request, "coordinators/overview.html", session=session, overview=shown, tab="overview")


@router.get("/coordinators/programmes/{programme_id}/evaluation")
async def evaluation(
    request: Request, programme_id: str, session: SignedIn, coordinating: Coordinating
) -> HTMLResponse:
    """The evaluation's tables, with bars."""
    shown = await coordinating.evaluation(session.token, programme_id)
    return page(request, "coordinators/evaluation.html", session=session, evaluation=shown, tab="evaluation")


@router.get("/coordinators/programmes/{programme_id}/evaluation.csv")
async def evaluation_csv(programme_id: str, session: SignedIn, coordinating: Coordinating) -> PlainTextResponse:
    """The same tables as CSV, as surveys gives them to researchers."""
    return PlainTextResponse(
        await coordinating.evaluation_csv(session.token, programme_id),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{programme_id}-evaluation.csv"'},
    )


@router.get("/coordinators/programmes/{programme_id}/deliveries")
async def deliveries(
    request: Request, programme_id: str, session: SignedIn, coordinating: Coordinating, problem: str | None = None
) -> HTMLResponse:
    """Emails that failed or are still waiting, with a retry for the failed."""
    programme, watched = await coordinating.deliveries(session.token, programme_id)
    context = {"session": session, "programme": programme, "deliveries": watched, "problem": problem}
    return page(request, "coordinators/deliveries.html", tab="deliveries", **context)


@router.post(
    "/coordinators/programmes/{programme_id}/deliveries/{notification_id}/retry",
    dependencies=[Depends(_coordinators_form)],
)
async def retry(
    request: Request, programme_id: str, notification_id: str, session: SignedIn, coordinating: Coordinating
) -> Response:
    problem = await coordinating.retry(session.token, notification_id)
    target = request.url_for("deliveries", programme_id=programme_id)
    return see_other(target.include_query_params(problem=problem) if problem else target)


@router.get("/coordinators/programmes/{programme_id}/waiting")
async def waiting(
    request: Request,
    programme_id: str,
    session: SignedIn,
    coordinating: Coordinating,
    proposed: str | None = None,
) -> HTMLResponse:
    """Mentees still waiting, with why, and a proposal by hand for each."""
    shown = await coordinating.waiting(session.token, programme_id)
    context = {"session": session, "programme": shown.programme, "waiting": shown, "proposed": proposed}
    return page(request, "coordinators/waiting.html", tab="waiting", **context)


@router.post("/coordinators/programmes/{programme_id}/waiting/{mentee_id}/proposal")
async def propose(
    request: Request,
    programme_id: str,
    mentee_id: str,
    session: SignedIn,
    submitted: CoordinatorsForm,
    coordinating: Coordinating,
) -> Response:
    """A pair proposed by hand: both are emailed, the reason given as its explanation."""
    mentor_id, reason = str(submitted.get("mentor_id") or ""), str(submitted.get("reason") or "").strip()
    problem = None
    if not mentor_id:
        problem = "Choose a mentor."
    elif len(reason) < 3:
        problem = "Give the reason for this match: both of them read it."
    problem = problem or await coordinating.propose(session.token, programme_id, mentee_id, mentor_id, reason)
    if problem:
        shown = await coordinating.waiting(session.token, programme_id)
        context = {"session": session, "programme": shown.programme, "waiting": shown}
        failed = {"mentee_id": mentee_id, "problem": problem, "mentor_id": mentor_id, "reason": reason}
        return page(request, "coordinators/waiting.html", status=422, tab="waiting", failed=failed, **context)
    return see_other(request.url_for("waiting", programme_id=programme_id).include_query_params(proposed=mentee_id))


@router.get("/coordinators/programmes/{programme_id}/concerns")
async def concerns(
    request: Request,
    programme_id: str,
    session: SignedIn,
    coordinating: Coordinating,
    done: str | None = None,
    problem: str | None = None,
) -> HTMLResponse:
    """Open safeguarding concerns, with a decision for each, and the pairs paused meanwhile."""
    shown = await coordinating.concerns(session.token, programme_id)
    context = {"session": session, "programme": shown.programme, "concerns": shown, "done": done, "problem": problem}
    return page(request, "coordinators/concerns.html", tab="concerns", **context)


@router.post("/coordinators/programmes/{programme_id}/concerns/{concern_id}/outcome")
async def close_concern(
    request: Request,
    programme_id: str,
    concern_id: str,
    session: SignedIn,
    submitted: CoordinatorsForm,
    coordinating: Coordinating,
) -> Response:
    outcome, note = str(submitted.get("outcome") or ""), str(submitted.get("note") or "").strip() or None
    problem = await coordinating.close_concern(session.token, concern_id, outcome, note)
    return _back_to_concerns(request, programme_id, problem, done=outcome)


@router.post(
    "/coordinators/programmes/{programme_id}/pairs/{pair_id}/resume", dependencies=[Depends(_coordinators_form)]
)
async def resume(
    request: Request, programme_id: str, pair_id: str, session: SignedIn, coordinating: Coordinating
) -> Response:
    problem = await coordinating.resume(session.token, pair_id)
    return _back_to_concerns(request, programme_id, problem, done="resumed")


def _back_to_concerns(request: Request, programme_id: str, problem: str | None, done: str) -> Response:
    """The concerns page again, saying what was done or what stopped it."""
    query = {"problem": problem} if problem else {"done": done}
    return see_other(request.url_for("concerns", programme_id=programme_id).include_query_params(**query))


# -- a participant's own page, from a link emailed to her


@router.get("/me")
async def my_page(
    request: Request,
    mine: Mine,
    saved: Literal["choices", "withdrawn", "meeting", "ended", "idea"] | None = None,
    ended: bool = False,
) -> HTMLResponse:
    """Her page when her link opened a session; otherwise the form that emails her a link."""
    try:
        session = PARTICIPANT.current(request)
    except NoSession:
        return _ask_page(request, ended=ended)
    return page(request, "me/page.html", session=session, me=await mine.page(session.token), saved=saved)


@router.post("/me/link")
async def ask_for_link(request: Request, mine: Mine) -> HTMLResponse:
    """Email her a link: the same answer whether or not the address is registered."""
    submitted = await request.form()
    PARTICIPANT.check_form(request, submitted.get("csrf"))
    email = str(submitted.get("email") or "").strip()
    problem = await mine.ask_for_link(email)
    if problem:
        return _ask_page(request, status=422, problem=problem, email=email)
    return page(request, "me/link_sent.html", email=email)


def _ask_page(request: Request, status: int = 200, **context: object) -> HTMLResponse:
    return form_page(PARTICIPANT, request, "me/ask.html", status, **context)


@router.get("/me/links/{secret}")
async def link(request: Request, secret: str) -> HTMLResponse:
    """The page her emailed link opens: one button uses the link up (a mail scanner opens nothing)."""
    return form_page(PARTICIPANT, request, "me/open.html", secret=secret)


@router.post("/me/links/{secret}")
async def open_link(request: Request, secret: str, mine: Mine) -> Response:
    PARTICIPANT.check_form(request, (await request.form()).get("csrf"))
    token, seconds = await mine.open(secret)
    response = see_other(request.url_for("my_page"))
    PARTICIPANT.open(request, response, token, seconds)
    return response


@router.post("/me/choices")
async def choose(request: Request, session: HerSession, submitted: HerForm, mine: Mine) -> Response:
    """Her top three mentors, best first."""
    chosen = [str(submitted.get(f"choice{n}") or "") for n in (1, 2, 3)]
    problem = await mine.choose(session.token, chosen)
    return await _back_to_my_page(request, session, mine, problem, "choices", problem=problem, chosen=chosen)


@router.post("/me/withdrawal")
async def withdraw(request: Request, session: HerSession, submitted: HerForm, mine: Mine) -> Response:
    """She leaves the programme, once she has ticked that she means it."""
    reason = str(submitted.get("reason") or "").strip() or None
    problem = "Tick the box to confirm that you want to withdraw." if submitted.get("confirm") != "yes" else None
    problem = problem or await mine.withdraw(session.token, reason)
    return await _back_to_my_page(
        request, session, mine, problem, "withdrawn", withdrawal_problem=problem, reason=reason
    )


@router.post("/me/meetings/{pair_id}")
async def record_meeting(
    request: Request, pair_id: str, session: HerSession, submitted: HerForm, mine: Mine
) -> Response:
    """A meeting of her partnership; the first ends the trial."""
    held_on, notes = str(submitted.get("held_on") or ""), str(submitted.get("notes") or "").strip() or None
    problem = "Enter the date you met, like 2026-12-04." if not held_on else None
    problem = problem or await mine.record_meeting(session.token, pair_id, held_on, notes)
    failed = {"pair_id": pair_id, "problem": problem, "held_on": held_on, "notes": notes}
    return await _back_to_my_page(request, session, mine, problem, "meeting", meeting_problem=failed)


@router.post("/me/ideas/{pair_id}")
async def record_idea(request: Request, pair_id: str, session: HerSession, submitted: HerForm, mine: Mine) -> Response:
    """An idea for change: the programme's leads read it without names."""
    text = str(submitted.get("idea") or "").strip()
    problem = "Write your idea in a sentence or more." if len(text) < 10 else None
    problem = problem or await mine.record_idea(session.token, pair_id, text)
    failed = {"pair_id": pair_id, "problem": problem, "text": text}
    return await _back_to_my_page(request, session, mine, problem, "idea", idea_problem=failed)


@router.post("/me/trial-end/{pair_id}")
async def end_after_trial(
    request: Request, pair_id: str, session: HerSession, submitted: HerForm, mine: Mine
) -> Response:
    """She ends her partnership after the trial meeting: no reason needed."""
    problem = await mine.end_after_trial(session.token, pair_id, str(submitted.get("side") or ""))
    failed = {"pair_id": pair_id, "problem": problem}
    return await _back_to_my_page(request, session, mine, problem, "ended", meeting_problem=failed)


async def _back_to_my_page(
    request: Request, session: Session, mine: MyProgramme, refused: str | None, saved: str, **failed: object
) -> Response:
    """After one of her forms: her page saying what was saved, or (422, `refused` saying why) her page with the
    problem beside the form."""
    if refused is None:
        return see_other(request.url_for("my_page").include_query_params(saved=saved))
    return page(request, "me/page.html", status=422, session=session, me=await mine.page(session.token), **failed)


ASKS = ("advice", "pause", "end")


@router.get("/me/concerns/{pair_id}")
async def concern_form(request: Request, pair_id: str, session: HerSession, mine: Mine) -> HTMLResponse:
    """Raise a concern about one of her pairs: it goes to the scheme's coordinators alone."""
    me = await mine.page(session.token)
    return page(request, "me/concern.html", session=session, me=me, pair_id=pair_id, asks="advice")


@router.post("/me/concerns/{pair_id}")
async def raise_concern(
    request: Request, pair_id: str, session: HerSession, submitted: HerForm, mine: Mine
) -> HTMLResponse:
    text, asks = str(submitted.get("text") or "").strip(), str(submitted.get("asks") or "advice")
    problem = "Tell the coordinators what happened." if len(text) < 3 else None
    problem = problem or ("Choose what you would like the coordinators to do." if asks not in ASKS else None)
    problem = problem or await mine.raise_concern(session.token, pair_id, text, asks)
    if problem:
        me = await mine.page(session.token)
        context = {"session": session, "me": me, "pair_id": pair_id, "problem": problem, "text": text, "asks": asks}
        return page(request, "me/concern.html", status=422, **context)
    return page(request, "me/concern_sent.html", session=session)


@router.get("/me/export.json")
async def export(session: HerSession, mine: Mine) -> Response:
    """Her data, as registration holds it, to keep."""
    return Response(
        await mine.export(session.token),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-aimms-data.json"'},
    )


@router.post("/me/sign-out", dependencies=[Depends(_her_form)])
async def leave(request: Request) -> Response:
    return signed_out(PARTICIPANT, request)


# -- the scheme's own page, for people whose institution is not a member


@router.get("/join/{programme_id}")
async def join_form(request: Request, programme_id: str, joins: Joins) -> HTMLResponse:
    """Express interest in a programme open to non-members: no portal and no account needed."""
    return _join_page(request, await joins.programme(programme_id))


@router.post("/join/{programme_id}")
async def join(request: Request, programme_id: str, joins: Joins) -> HTMLResponse:
    submitted = await request.form()
    JOINING.check_form(request, submitted.get("csrf"))
    entered = {k: str(submitted.get(k) or "").strip() for k in ("name", "email", "workplace")}
    problems = await joins.join(programme_id, **entered)
    programme = await joins.programme(programme_id)
    if problems:
        return _join_page(request, programme, status=422, problems=problems, entered=entered)
    return page(request, "join_thanks.html", programme=programme, email=entered["email"])


def _join_page(request: Request, programme: dict[str, object], status: int = 200, **context: object) -> HTMLResponse:
    return form_page(JOINING, request, "join.html", status, programme=programme, **context)


@router.get("/")
async def home(request: Request) -> HTMLResponse:
    """What this site is, for someone who arrives without a link."""
    return page(request, "home.html")


@router.get("/thanks")
async def thanks(request: Request) -> HTMLResponse:
    """The thank-you page after a questionnaire."""
    return page(request, "thanks.html")


@router.get("/healthz", include_in_schema=False, response_class=JSONResponse)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", include_in_schema=False, response_class=JSONResponse)
async def readyz() -> dict[str, str]:
    # The portal holds no state: it is ready once it runs; an API that is down is shown per page.
    return {"status": "ready"}
