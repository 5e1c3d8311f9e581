"""The mentor directory: published mentors across institutions, with places left."""

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from aimms_matching import use_cases
from aimms_matching.routes.deps import Store
from aimms_shared.auth import PROFILES_READ, Principal, require
from aimms_shared.http import api_router
from aimms_shared.mapping import carried_over

router = api_router("directory")


class Profile(BaseModel):
    """What matching knows of a participant's profile (never her name or contact details)."""

    participant_id: str
    institution_id: str
    job_title: str
    seniority: str
    pathway: str
    research_interests: list[str]
    offers: str | None
    answers: dict[str, str] = Field(default_factory=dict, description="To the programme's own profile questions.")


class DirectoryEntry(Profile):
    """A published mentor profile, with what is left of her capacity."""

    capacity: int
    remaining_capacity: int
    full: bool


@router.get("/directory", response_model=list[DirectoryEntry])
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
