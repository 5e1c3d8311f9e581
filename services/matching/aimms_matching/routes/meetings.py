"""The pair's meeting log: counts for coordinators, notes for the pair alone."""

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.domain.pairs import Pair
from aimms_matching.routes.deps import Matching
from aimms_shared.auth import PARTICIPANTS_READ, PARTICIPANTS_WRITE, Principal, require
from aimms_shared.contracts.matching import Side
from aimms_shared.http import api_router, problem_responses

router = api_router("meetings")


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
    "/pairs/{pair_id}/meetings", status_code=201, response_model=list[MeetingOut], responses=problem_responses(404, 409)
)
async def record_meeting(
    pair_id: str, body: MeetingIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> list[MeetingOut]:
    """Record a meeting (MeetingRecorded), once per day; the first ends the trial."""
    return _meetings(await matching.record_meeting(caller, pair_id, body.side, body.held_on, body.notes), caller)


@router.get("/pairs/{pair_id}/meetings", response_model=list[MeetingOut], responses=problem_responses(404))
async def list_meetings(
    pair_id: str, matching: Matching, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> list[MeetingOut]:
    """The pair's meetings, oldest first; notes only to the pair themselves."""
    return _meetings(await matching.pair_for(caller, pair_id), caller)
