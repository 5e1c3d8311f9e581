"""Coordinators' hand: waiting mentees with why, and proposals by hand with a reason."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.domain import rules
from aimms_matching.routes.deps import Matching
from aimms_matching.routes.directory import Profile
from aimms_matching.routes.pairs import PairOut
from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.http import api_router, problem_responses
from aimms_shared.mapping import carried_over

router = api_router("coordinators' hand")


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


@router.get("/programmes/{programme_id}/waiting", response_model=list[WaitingOut])
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
    responses=problem_responses(404, 409),
)
async def propose_by_hand(
    programme_id: str, body: ManualProposalIn, matching: Matching, caller: Principal = require(ADMIN)
) -> PairOut:
    """Propose a pair by hand (MatchProposed, round `manual`); the reason becomes its explanation to both."""
    return PairOut.of_pair(await matching.propose_by_hand(programme_id, body.mentee_id, body.mentor_id, body.reason))
