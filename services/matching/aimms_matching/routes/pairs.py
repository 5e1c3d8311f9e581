"""Pairs: proposals, answers, ending, the term's choice."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.domain.pairs import Pair
from aimms_matching.routes.deps import Matching, Store
from aimms_shared.auth import PARTICIPANTS_READ, PARTICIPANTS_WRITE, Principal, require
from aimms_shared.contracts.matching import Side
from aimms_shared.http import api_router, problem_responses
from aimms_shared.mapping import carried_over

router = api_router("pairs")


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


@router.get("/pairs", response_model=list[PairOut])
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


@router.get("/pairs/{pair_id}", response_model=PairOut, responses=problem_responses(404))
async def get_pair(
    pair_id: str, matching: Matching, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> PairOut:
    """One proposal or partnership."""
    return PairOut.of_pair(await matching.pair_for(caller, pair_id))


@router.post("/pairs/{pair_id}/answers", response_model=PairOut, responses=problem_responses(404, 409))
async def answer(
    pair_id: str, body: AnswerIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE)
) -> PairOut:
    """Her portal accepts or declines for one side (MatchAccepted, MentoringStarted or MatchDeclined)."""
    await matching.pair_for(caller, pair_id, body.side)
    return PairOut.of_pair(await matching.answer(pair_id, body.side, body.accept, body.reason))


@router.post("/pairs/{pair_id}/end", response_model=PairOut, responses=problem_responses(404, 409))
async def end(
    pair_id: str, body: EndIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> PairOut:
    """End the partnership (MatchEnded): freely within the trial, or as abandoned or completed."""
    await matching.pair_for(caller, pair_id, body.side)
    return PairOut.of_pair(await matching.end(pair_id, body.side, body.reason))


@router.post("/pairs/{pair_id}/term", response_model=PairOut, responses=problem_responses(404, 409))
async def decide_term(
    pair_id: str, body: TermIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE)
) -> PairOut:
    """At the term's end: extend (MatchExtended once both say so) or conclude (MatchEnded, completed)."""
    await matching.pair_for(caller, pair_id, body.side)
    return PairOut.of_pair(await matching.decide_term(pair_id, body.side, body.extend))
