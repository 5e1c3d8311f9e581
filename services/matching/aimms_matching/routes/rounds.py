"""Cohort rounds and their quality reports."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aimms_matching.routes.deps import Matching, Store
from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.http import api_router, problem_responses

router = api_router("rounds")


class RoundReport(BaseModel):
    """A round's outcome: the stable round and the residual round, reported separately."""

    model_config = ConfigDict(extra="ignore")

    round_id: str
    programme_id: str
    ran_at: datetime
    kind: Literal["pairs", "circles"] = Field(default="pairs", description="The programme's kind.")
    mentees: int = Field(description="Mentees waiting when the round ran (circles: peers not yet in a circle).")
    mentors: int = Field(description="Published mentors (circles: facilitators not yet facilitating).")
    proposed: int = Field(description="Pairs proposed (circles: peers placed in a circle).")
    unmatched: int
    circles: int | None = Field(default=None, description="Circles formed (a circles programme).")
    stable: dict[str, Any] = Field(description="Quality of the mentee-optimal stable round.")
    residual: dict[str, Any] = Field(description="Quality of the round over places left after it.")


@router.post(
    "/programmes/{programme_id}/rounds", status_code=201, response_model=RoundReport, responses=problem_responses(409)
)
async def run_round(programme_id: str, matching: Matching, caller: Principal = require(ADMIN)) -> dict[str, Any]:
    """Run a cohort round: every waiting mentee against the places still free; proposals already out stay put."""
    return await matching.run_round(programme_id)


@router.get("/programmes/{programme_id}/rounds", response_model=list[RoundReport])
async def list_rounds(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> list[dict[str, Any]]:
    """The programme's round reports, newest first."""
    return await store.rounds(programme_id)
