"""Matching's figures for coordinators: partnerships and meetings, counts only."""

from typing import Any

from pydantic import BaseModel, Field

from aimms_matching import use_cases
from aimms_matching.domain import rules
from aimms_matching.routes.deps import Store
from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.http import api_router, problem_responses

router = api_router("reports")


class MatchingReport(BaseModel):
    """Where a programme's pairs stand, and how long mentees wait for a partnership."""

    programme_id: str
    support: str = Field(description="Who gives the programme's support: mentor, sponsor or ally.")
    pairs_by_state: dict[str, int]
    pairs_by_institution: dict[str, dict[str, int]] = Field(description="Pairs with a side at the institution.")
    partnerships_started: int
    days_to_match_median: float | None = Field(description="From joining the programme to the partnership's start.")
    days_to_match_p90: float | None
    meetings: dict[str, Any] = Field(
        description="Meetings per partnership that started: partnerships, mean, min, max, and how many met n times."
    )


@router.get("/reports/matching", response_model=MatchingReport, responses=problem_responses(404))
async def matching_report(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> MatchingReport:
    """For coordinators: pairs by state and institution, and time to match."""
    programme = await use_cases.programme_rules(store, programme_id)
    found = await store.pairs(programme_id=programme_id, limit=100_000)
    joined = await store.joined_times(programme_id)
    summary = rules.matching_summary(found, joined)
    return MatchingReport(programme_id=programme_id, support=programme.giver, **summary)
