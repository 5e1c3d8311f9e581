"""Matching's HTTP API: the mentor directory, mentees' choices, rounds, proposals and partnerships."""

import html
from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from aimms_matching import use_cases
from aimms_matching.domain import concerns, ideas, rules
from aimms_matching.domain.pairs import Pair
from aimms_matching.domain.rules import MAX_CHOICES
from aimms_matching.store import MatchingStore
from aimms_matching.use_cases import Matchmaker
from aimms_shared.auth import ADMIN, PARTICIPANTS_READ, PARTICIPANTS_WRITE, PROFILES_READ, Principal, require
from aimms_shared.contracts.matching import Side
from aimms_shared.errors import DomainError
from aimms_shared.http import from_state, problem_responses
from aimms_shared.mapping import carried_over

router = APIRouter()


Store = Annotated[MatchingStore, from_state("store")]


class Profile(BaseModel):
    """What matching knows of a participant's profile (never her name or contact details)."""

    participant_id: str
    institution_id: str
    job_title: str
    seniority: str
    pathway: str
    research_interests: list[str]
    offers: str | None


class DirectoryEntry(Profile):
    """A published mentor profile, with what is left of her capacity."""

    capacity: int
    remaining_capacity: int
    full: bool


class PreferencesIn(BaseModel):
    """Her ranked mentor choices, best first."""

    model_config = ConfigDict(extra="forbid")

    choices: list[str] = Field(max_length=MAX_CHOICES, description="Up to three mentors' participant ids, best first.")


class PreferencesOut(BaseModel):
    """Her current choices."""

    mentee_id: str
    choices: list[str]


@router.get("/directory", response_model=list[DirectoryEntry], tags=["directory"])
async def directory(
    store: Store,
    programme_id: str,
    interest: Annotated[list[str] | None, Query(description="Any of these research interests.")] = None,
    seniority: str | None = None,
    institution_id: str | None = None,
    caller: Principal = require(PROFILES_READ, participant=True),
) -> list[DirectoryEntry]:
    """Published mentors of a programme across all institutions; a full mentor is marked, not hidden.

    A participant reads her own programme's directory only."""
    await use_cases.may_read_directory(store, caller, programme_id)
    wanted = set(interest or ())
    entries = []
    for mentor in await store.published_mentors(programme_id):
        if wanted and not wanted & set(mentor.research_interests):
            continue
        if (seniority and mentor.seniority != seniority) or (
            institution_id and mentor.institution_id != institution_id
        ):
            continue
        capacity, remaining = mentor.mentor_capacity or 0, mentor.places_left
        entries.append(
            carried_over(DirectoryEntry, mentor, capacity=capacity, remaining_capacity=remaining, full=remaining <= 0)
        )
    return entries


@router.put(
    "/mentees/{mentee_id}/preferences",
    response_model=PreferencesOut,
    tags=["preferences"],
    responses=problem_responses(404, 409, 422),
)
async def submit_preferences(
    mentee_id: str,
    body: PreferencesIn,
    store: Store,
    caller: Principal = require(PARTICIPANTS_WRITE, participant=True),
) -> PreferencesOut:
    """Her top three mentors, best first (MentorPreferencesSubmitted); changeable until she is matched."""
    choices = await use_cases.submit_preferences(store, caller, mentee_id, body.choices)
    return PreferencesOut(mentee_id=mentee_id, choices=list(choices))


@router.get(
    "/mentees/{mentee_id}/preferences",
    response_model=PreferencesOut,
    tags=["preferences"],
    responses=problem_responses(404, 409),
)
async def get_preferences(
    mentee_id: str, store: Store, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> PreferencesOut:
    """Her current choices."""
    await use_cases.known_mentee(store, caller, mentee_id)
    saved = await store.preferences(mentee_id)
    return PreferencesOut(mentee_id=mentee_id, choices=saved["choices"] if saved else [])


# -- rounds, pairs and answers


Matching = Annotated[Matchmaker, from_state("matchmaker")]


class RoundReport(BaseModel):
    """A round's outcome: the stable round and the residual round, reported separately."""

    model_config = ConfigDict(extra="ignore")

    round_id: str
    programme_id: str
    ran_at: datetime
    mentees: int = Field(description="Mentees waiting when the round ran.")
    mentors: int
    proposed: int
    unmatched: int
    stable: dict[str, Any] = Field(description="Quality of the mentee-optimal stable round.")
    residual: dict[str, Any] = Field(description="Quality of the round over places left after it.")


class PairOut(BaseModel):
    """A proposal, or the partnership it became, with why it was proposed."""

    pair_id: str
    programme_id: str
    state: str
    mentee_id: str
    mentor_id: str
    mentee_institution_id: str
    mentor_institution_id: str
    round: str
    choice_rank: int | None
    fallback_reason: str | None
    score: float
    components: dict[str, float]
    shared_interests: list[str]
    seniority_gap: int
    note: str | None = Field(description="A coordinator's reason, for a pair proposed by hand.")
    answers: dict[str, str]
    proposed_at: datetime | None
    reply_by: datetime | None
    started_at: datetime | None
    trial_ends_at: datetime | None
    follow_up_at: datetime | None
    term_ends_at: datetime | None
    term_reply_by: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    paused_at: datetime | None = Field(description="Set while coordinators have paused the pair.")
    meetings_recorded: int = Field(description="Meetings the pair recorded (their notes stay with the pair).")

    @classmethod
    def of_pair(cls, pair: Pair) -> "PairOut":
        return carried_over(cls, pair, pair.explanation, meetings_recorded=len(pair.meetings))


class AnswerIn(BaseModel):
    """One side's answer to a proposal."""

    model_config = ConfigDict(extra="forbid")

    side: Side
    accept: bool
    reason: str | None = Field(default=None, max_length=1000, description="Optional, when declining.")


class EndIn(BaseModel):
    """One side ends the partnership."""

    model_config = ConfigDict(extra="forbid")

    side: Side
    reason: Literal["trial", "abandoned", "completed"]


class TermIn(BaseModel):
    """One side's choice at the end of the term."""

    model_config = ConfigDict(extra="forbid")

    side: Side
    extend: bool


@router.post(
    "/programmes/{programme_id}/rounds",
    status_code=201,
    response_model=RoundReport,
    tags=["rounds"],
    responses=problem_responses(409),
)
async def run_round(programme_id: str, matching: Matching, caller: Principal = require(ADMIN)) -> dict[str, Any]:
    """Run a cohort round: every waiting mentee against the places still free; proposals already out stay put."""
    return await matching.run_round(programme_id)


class WaitingOut(Profile):
    """A mentee still to be matched, and why she waits."""

    joined_at: datetime | None
    reason: str = Field(description="no-round-yet, no-place-free, declined, lapsed, ended-in-trial or partner-left.")
    explanation: str = Field(description="The reason in words.")
    choices: list[str] = Field(description="Her named mentors, best first.")
    last_proposed_at: datetime | None


class ManualProposalIn(BaseModel):
    """A coordinator pairs a waiting mentee with a mentor who has a place free."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    mentee_id: str = Field(min_length=1, max_length=100)
    mentor_id: str = Field(min_length=1, max_length=100)
    reason: str = Field(
        min_length=3, max_length=1000, description="Why these two: shown to both as the proposal's explanation."
    )


@router.get("/programmes/{programme_id}/waiting", response_model=list[WaitingOut], tags=["coordinators' hand"])
async def waiting(programme_id: str, matching: Matching, caller: Principal = require(ADMIN)) -> list[WaitingOut]:
    """Mentees still waiting for a proposal, longest waiting first, each with why."""
    return [
        carried_over(WaitingOut, w.mentee, w, explanation=rules.WAITING_REASONS[w.reason])
        for w in await matching.waiting(programme_id)
    ]


@router.post(
    "/programmes/{programme_id}/proposals",
    status_code=201,
    response_model=PairOut,
    tags=["coordinators' hand"],
    responses=problem_responses(404, 409, 422),
)
async def propose_by_hand(
    programme_id: str, body: ManualProposalIn, matching: Matching, caller: Principal = require(ADMIN)
) -> PairOut:
    """Propose a pair by hand (MatchProposed, round `manual`); the reason becomes its explanation to both."""
    return PairOut.of_pair(await matching.propose_by_hand(programme_id, body.mentee_id, body.mentor_id, body.reason))


@router.get("/programmes/{programme_id}/rounds", response_model=list[RoundReport], tags=["rounds"])
async def list_rounds(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> list[dict[str, Any]]:
    """The programme's round reports, newest first."""
    return await store.rounds(programme_id)


@router.get("/pairs", response_model=list[PairOut], tags=["pairs"])
async def list_pairs(
    store: Store,
    programme_id: str | None = None,
    state: Annotated[list[str] | None, Query(description="Any of these states.")] = None,
    institution_id: str | None = None,
    caller: Principal = require(PARTICIPANTS_READ, participant=True),
) -> list[PairOut]:
    """Proposals and partnerships; a portal sees those with a side at its institution, a participant her own."""
    if not caller.is_admin:
        institution_id = None if caller.is_participant else caller.institution_id
    found = await store.pairs(
        programme_id=programme_id,
        states=tuple(state or ()),
        institution_id=institution_id,
        participant_id=caller.participant_id,
    )
    return [PairOut.of_pair(p) for p in found]


class MatchingReport(BaseModel):
    """Where a programme's pairs stand, and how long mentees wait for a partnership."""

    programme_id: str
    pairs_by_state: dict[str, int]
    pairs_by_institution: dict[str, dict[str, int]] = Field(description="Pairs with a side at the institution.")
    partnerships_started: int
    days_to_match_median: float | None = Field(description="From joining the programme to the partnership's start.")
    days_to_match_p90: float | None
    meetings: dict[str, Any] = Field(
        description="Meetings per partnership that started: partnerships, mean, min, max, and how many met n times."
    )


@router.get("/reports/matching", response_model=MatchingReport, tags=["reports"], responses=problem_responses(404))
async def matching_report(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> MatchingReport:
    """For coordinators: pairs by state and institution, and time to match."""
    found = await store.pairs(programme_id=programme_id, limit=100_000)
    joined = await store.joined_times(programme_id)
    return MatchingReport(programme_id=programme_id, **rules.matching_summary(found, joined))


@router.get("/pairs/{pair_id}", response_model=PairOut, tags=["pairs"], responses=problem_responses(404))
async def get_pair(
    pair_id: str, matching: Matching, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> PairOut:
    """One proposal or partnership."""
    return PairOut.of_pair(await matching.pair_for(caller, pair_id))


@router.post(
    "/pairs/{pair_id}/answers", response_model=PairOut, tags=["pairs"], responses=problem_responses(404, 409, 422)
)
async def answer(
    pair_id: str, body: AnswerIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE)
) -> PairOut:
    """Her portal accepts or declines for one side (MatchAccepted, MentoringStarted or MatchDeclined)."""
    await matching.pair_for(caller, pair_id, body.side)
    return PairOut.of_pair(await matching.answer(pair_id, body.side, body.accept, body.reason))


@router.post("/pairs/{pair_id}/end", response_model=PairOut, tags=["pairs"], responses=problem_responses(404, 409, 422))
async def end(
    pair_id: str, body: EndIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> PairOut:
    """End the partnership (MatchEnded): freely within the trial, or as abandoned or completed."""
    await matching.pair_for(caller, pair_id, body.side)
    return PairOut.of_pair(await matching.end(pair_id, body.side, body.reason))


@router.post("/pairs/{pair_id}/term", response_model=PairOut, tags=["pairs"], responses=problem_responses(404, 409))
async def decide_term(
    pair_id: str, body: TermIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE)
) -> PairOut:
    """At the term's end: extend (MatchExtended once both say so) or conclude (MatchEnded, completed)."""
    await matching.pair_for(caller, pair_id, body.side)
    return PairOut.of_pair(await matching.decide_term(pair_id, body.side, body.extend))


class LinkedProposal(BaseModel):
    """What an answer link stands for: her side, the answer it gives, the proposal and the other side."""

    side: Side
    action: Literal["accept", "decline"]
    proposal: PairOut
    proposed: Profile | None = Field(description="The other side's profile; null once she left the scheme.")


class LinkAnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000, description="Why she declines (optional).")


@router.get(
    "/answer-links/{token}", response_model=LinkedProposal, tags=["answer links"], responses=problem_responses(404)
)
async def linked_proposal(token: str, matching: Matching) -> LinkedProposal:
    """The proposal behind an emailed answer link, for a page to show before she confirms (the link is the key)."""
    pair, side, action, other = await matching.proposal_by_link(token)
    return LinkedProposal(
        side=side,
        action=action,
        proposal=PairOut.of_pair(pair),
        proposed=carried_over(Profile, other) if other else None,
    )


@router.post(
    "/answer-links/{token}", response_model=PairOut, tags=["answer links"], responses=problem_responses(404, 409, 422)
)
async def answer_through_link(token: str, body: LinkAnswerIn, matching: Matching) -> PairOut:
    """Give the answer the link stands for; a side answers once (409 after that, or once the proposal lapsed)."""
    pair, _ = await matching.answer_by_link(token, body.reason or None)
    return PairOut.of_pair(pair)


_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>AIMMS mentoring</title>
<body style="font-family:sans-serif;max-width:36em;margin:3em auto"><h1>{title}</h1>{body}</body></html>"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=html.escape(title), body=body), status_code=status)


@router.get("/answers/{token}", response_class=HTMLResponse, tags=["answer links"])
async def answer_page(token: str, matching: Matching) -> HTMLResponse:
    """The page an email link opens: one button, so a mail scanner following links answers nothing."""
    _, _, action = matching.links.read(token)
    reason = '<p><label>Reason (optional)<br><textarea name="reason" rows="3" cols="40"></textarea></label></p>'
    body = f'<form method="post">{reason if action == "decline" else ""}<button>Confirm: {action}</button></form>'
    return _page(f"{action.capitalize()} this mentoring proposal", body)


@router.post("/answers/{token}", response_class=HTMLResponse, tags=["answer links"])
async def answer_by_link(token: str, matching: Matching, reason: Annotated[str | None, Form()] = None) -> HTMLResponse:
    """Record the answer the link stands for; a link works once."""
    try:
        _, accepted = await matching.answer_by_link(token, reason or None)
    except DomainError as exc:
        if exc.status >= 500:
            raise
        return _page("This link cannot be used now", f"<p>{html.escape(str(exc))}</p>", status=exc.status)
    done = "You accepted the proposal. We will introduce you both" if accepted else "You declined the proposal"
    return _page("Thank you", f"<p>{done}.</p>")


# -- safeguarding


class ConcernIn(BaseModel):
    """A safeguarding concern about a pair, from one of its sides."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    side: Side | None = Field(default=None, description="Which side raises it; implied by a participant's own token.")
    text: str = Field(min_length=3, max_length=4000, description="What happened; read by coordinators only.")
    asks: concerns.Asks = Field(default="advice", description="advice, pause (the pair) or end (the pair).")


class ConcernReceipt(BaseModel):
    """What the person who raised a concern is told: it reached the coordinators."""

    concern_id: str
    raised_at: datetime
    status: Literal["received"] = "received"


class ConcernOut(BaseModel):
    """A concern as coordinators read it."""

    concern_id: str
    pair_id: str
    programme_id: str
    raised_by: Side
    participant_id: str
    text: str
    asks: str
    raised_at: datetime
    closed_at: datetime | None
    outcome: str | None
    note: str | None


class OutcomeIn(BaseModel):
    """The coordinators' decision on a concern."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    outcome: concerns.Outcome
    note: str | None = Field(default=None, max_length=2000, description="What was done, for the record.")


@router.post(
    "/pairs/{pair_id}/concerns",
    status_code=201,
    response_model=ConcernReceipt,
    tags=["safeguarding"],
    responses=problem_responses(404, 409, 422),
)
async def raise_concern(
    pair_id: str, body: ConcernIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> ConcernReceipt:
    """Raise a safeguarding concern (ConcernRaised): the programme's coordinators are emailed at once; the
    other side is never told of it."""
    concern = await matching.raise_concern(caller, pair_id, body.side, body.text, body.asks)
    return ConcernReceipt(concern_id=concern.concern_id, raised_at=concern.raised_at)


@router.get("/programmes/{programme_id}/concerns", response_model=list[ConcernOut], tags=["safeguarding"])
async def list_concerns(
    programme_id: str, store: Store, open_only: bool = True, caller: Principal = require(ADMIN)
) -> list[ConcernOut]:
    """The programme's concerns, newest first (open ones only, unless asked)."""
    return [carried_over(ConcernOut, c) for c in await store.concerns(programme_id, open_only)]


@router.post(
    "/concerns/{concern_id}/outcome",
    response_model=ConcernOut,
    tags=["safeguarding"],
    responses=problem_responses(404, 409, 422),
)
async def close_concern(
    concern_id: str, body: OutcomeIn, matching: Matching, caller: Principal = require(ADMIN)
) -> ConcernOut:
    """Close a concern: no action, the pair paused (MatchPaused) or the pair ended (MatchEnded, `coordinators`)."""
    return carried_over(ConcernOut, await matching.close_concern(concern_id, body.outcome, body.note))


@router.post("/pairs/{pair_id}/resume", response_model=PairOut, tags=["safeguarding"], responses=problem_responses(404))
async def resume(pair_id: str, matching: Matching, caller: Principal = require(ADMIN)) -> PairOut:
    """Resume a paused pair (MatchResumed); whatever fell due meanwhile happens now."""
    return PairOut.of_pair(await matching.resume(pair_id))


# -- meetings


class MeetingIn(BaseModel):
    """A meeting the pair held."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    side: Side | None = Field(default=None, description="Which side records it; implied by a participant's own token.")
    held_on: date
    notes: str | None = Field(default=None, max_length=2000, description="For the two of them alone.")


class MeetingOut(BaseModel):
    """A recorded meeting; its notes only to the pair's own tokens."""

    meeting_id: str
    held_on: date
    recorded_by: Side
    notes: str | None


def _meetings(pair: Pair, caller: Principal) -> list[MeetingOut]:
    # Notes are the pair's: a participant's own token (already checked to be of this pair) reads them.
    return [
        MeetingOut(
            meeting_id=m.meeting_id,
            held_on=m.held_on,
            recorded_by=m.recorded_by,
            notes=m.notes if caller.is_participant else None,
        )
        for m in pair.meetings
    ]


@router.post(
    "/pairs/{pair_id}/meetings",
    status_code=201,
    response_model=list[MeetingOut],
    tags=["meetings"],
    responses=problem_responses(404, 409, 422),
)
async def record_meeting(
    pair_id: str, body: MeetingIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> list[MeetingOut]:
    """Record a meeting (MeetingRecorded), once per day; the first ends the trial."""
    return _meetings(await matching.record_meeting(caller, pair_id, body.side, body.held_on, body.notes), caller)


@router.get(
    "/pairs/{pair_id}/meetings", response_model=list[MeetingOut], tags=["meetings"], responses=problem_responses(404)
)
async def list_meetings(
    pair_id: str, matching: Matching, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> list[MeetingOut]:
    """The pair's meetings, oldest first; notes only to the pair themselves."""
    return _meetings(await matching.pair_for(caller, pair_id), caller)


# -- ideas for change


class IdeaIn(BaseModel):
    """An idea for change the pair proposes (reverse mentoring)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    side: Side | None = Field(default=None, description="Which side records it; implied by a participant's own token.")
    text: str = Field(min_length=10, max_length=2000)


class IdeasReport(BaseModel):
    """Ideas for change without names, newest month first; withheld until enough pairs contributed."""

    pairs: int = Field(description="Pairs that recorded ideas.")
    withheld: bool = Field(description=f"Fewer than {ideas.MIN_PAIRS} pairs: no idea is shown, so none is traced.")
    ideas: list[dict[str, str]]


@router.post(
    "/pairs/{pair_id}/ideas", status_code=204, tags=["ideas for change"], responses=problem_responses(404, 409, 422)
)
async def record_idea(
    pair_id: str, body: IdeaIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> Response:
    """Record an idea for change; it is kept without the pair's or anyone's id."""
    await matching.record_idea(caller, pair_id, body.side, body.text)
    return Response(status_code=204)


@router.get("/programmes/{programme_id}/ideas", response_model=IdeasReport, tags=["ideas for change"])
async def ideas_report(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> IdeasReport:
    """The programme's ideas for change, for its leads, without names."""
    return IdeasReport(**ideas.report(await store.ideas(programme_id)))
