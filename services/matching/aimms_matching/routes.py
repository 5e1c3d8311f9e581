"""Matching's HTTP API: the mentor directory and mentees' choices."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from aimms_matching import use_cases
from aimms_matching.domain import MAX_CHOICES
from aimms_matching.store import MatchingStore
from aimms_shared.auth import PARTICIPANTS_READ, PARTICIPANTS_WRITE, PROFILES_READ, Principal, require
from aimms_shared.errors import Missing
from aimms_shared.http import problem_responses

router = APIRouter()


def get_store(request: Request) -> MatchingStore:
    """The store built in the composition root."""
    return request.app.state.store


Store = Annotated[MatchingStore, Depends(get_store)]


class DirectoryEntry(BaseModel):
    """A published mentor profile, with what is left of her capacity."""

    participant_id: str
    institution_id: str
    job_title: str
    seniority: str
    pathway: str
    research_interests: list[str]
    offers: str | None
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
    caller: Principal = require(PROFILES_READ),
) -> list[DirectoryEntry]:
    """Published mentors of a programme across all institutions; a full mentor is marked, not hidden."""
    wanted = set(interest or ())
    entries = []
    for mentor in await store.published_mentors(programme_id):
        if wanted and not wanted & set(mentor.research_interests):
            continue
        if (seniority and mentor.seniority != seniority) or (
            institution_id and mentor.institution_id != institution_id
        ):
            continue
        capacity = mentor.mentor_capacity or 0
        remaining = capacity  # proposals and matches will hold capacity once rounds run
        entries.append(
            DirectoryEntry(
                participant_id=mentor.participant_id,
                institution_id=mentor.institution_id,
                job_title=mentor.job_title,
                seniority=mentor.seniority,
                pathway=mentor.pathway,
                research_interests=list(mentor.research_interests),
                offers=mentor.offers,
                capacity=capacity,
                remaining_capacity=remaining,
                full=remaining <= 0,
            )
        )
    return entries


@router.put(
    "/mentees/{mentee_id}/preferences",
    response_model=PreferencesOut,
    tags=["preferences"],
    responses=problem_responses(404, 422),
)
async def submit_preferences(
    mentee_id: str, body: PreferencesIn, store: Store, request: Request, caller: Principal = require(PARTICIPANTS_WRITE)
) -> PreferencesOut:
    """Her top three mentors, best first (MentorPreferencesSubmitted); changeable until she is matched."""
    choices = await use_cases.submit_preferences(
        store, caller, mentee_id, body.choices, on_events=request.app.state.runtime.relay.nudge
    )
    return PreferencesOut(mentee_id=mentee_id, choices=list(choices))


@router.get(
    "/mentees/{mentee_id}/preferences",
    response_model=PreferencesOut,
    tags=["preferences"],
    responses=problem_responses(404),
)
async def get_preferences(
    mentee_id: str, store: Store, caller: Principal = require(PARTICIPANTS_READ)
) -> PreferencesOut:
    """Her current choices."""
    mentee = await store.member(mentee_id)
    saved = await store.preferences(mentee_id)
    if mentee is None or not caller.may_act_for(mentee.institution_id):
        raise Missing("mentee_id", "own-institution", f"no mentee '{mentee_id}' at your institution")
    return PreferencesOut(mentee_id=mentee_id, choices=saved["choices"] if saved else [])
