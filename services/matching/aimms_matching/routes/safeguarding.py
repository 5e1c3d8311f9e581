"""Safeguarding: concerns raised by either side, read and closed by coordinators."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.domain import concerns
from aimms_matching.routes.deps import Matching, Store
from aimms_matching.routes.pairs import PairOut
from aimms_shared.auth import ADMIN, PARTICIPANTS_WRITE, Principal, require
from aimms_shared.contracts.matching import Side
from aimms_shared.http import api_router, problem_responses
from aimms_shared.mapping import carried_over

router = api_router("safeguarding")


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
    "/pairs/{pair_id}/concerns", status_code=201, response_model=ConcernReceipt, responses=problem_responses(404, 409)
)
async def raise_concern(
    pair_id: str, body: ConcernIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> ConcernReceipt:
    """Raise a safeguarding concern (ConcernRaised): the programme's coordinators are emailed at once; the
    other side is never told of it."""
    concern = await matching.raise_concern(caller, pair_id, body.side, body.text, body.asks)
    return ConcernReceipt(concern_id=concern.concern_id, raised_at=concern.raised_at)


@router.get("/programmes/{programme_id}/concerns", response_model=list[ConcernOut])
async def list_concerns(
    programme_id: str, store: Store, open_only: bool = True, caller: Principal = require(ADMIN)
) -> list[ConcernOut]:
    """The programme's concerns, newest first (open ones only, unless asked)."""
    return [carried_over(ConcernOut, c) for c in await store.concerns(programme_id, open_only)]


@router.post("/concerns/{concern_id}/outcome", response_model=ConcernOut, responses=problem_responses(404, 409))
async def close_concern(
    concern_id: str, body: OutcomeIn, matching: Matching, caller: Principal = require(ADMIN)
) -> ConcernOut:
    """Close a concern: no action, the pair paused (MatchPaused) or the pair ended (MatchEnded, `coordinators`)."""
    return carried_over(ConcernOut, await matching.close_concern(concern_id, body.outcome, body.note))


@router.post("/pairs/{pair_id}/resume", response_model=PairOut, responses=problem_responses(404))
async def resume(pair_id: str, matching: Matching, caller: Principal = require(ADMIN)) -> PairOut:
    """Resume a paused pair (MatchResumed); whatever fell due meanwhile happens now."""
    return PairOut.of_pair(await matching.resume(pair_id))
