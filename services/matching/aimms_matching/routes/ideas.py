"""Reverse mentoring's ideas for change, recorded by pairs and read by leads without ids."""

from fastapi import Response
from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.domain import ideas
from aimms_matching.routes.deps import Matching, Store
from aimms_shared.auth import ADMIN, PARTICIPANTS_WRITE, Principal, require
from aimms_shared.contracts.matching import Side
from aimms_shared.http import api_router, problem_responses

router = api_router("ideas for change")


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


@router.post("/pairs/{pair_id}/ideas", status_code=204, responses=problem_responses(404, 409))
async def record_idea(
    pair_id: str, body: IdeaIn, matching: Matching, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> Response:
    """Record an idea for change; it is kept without the pair's or anyone's id."""
    await matching.record_idea(caller, pair_id, body.side, body.text)
    return Response(status_code=204)


@router.get("/programmes/{programme_id}/ideas", response_model=IdeasReport)
async def ideas_report(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> IdeasReport:
    """The programme's ideas for change, for its leads, without names."""
    return IdeasReport(**ideas.report(await store.ideas(programme_id)))
