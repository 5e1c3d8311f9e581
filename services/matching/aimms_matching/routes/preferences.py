"""A mentee's named mentor choices, at most three, best first."""

from pydantic import BaseModel, ConfigDict, Field

from aimms_matching import use_cases
from aimms_matching.domain.rules import MAX_CHOICES
from aimms_matching.routes.deps import Store
from aimms_shared.auth import PARTICIPANTS_READ, PARTICIPANTS_WRITE, Principal, require
from aimms_shared.http import api_router, problem_responses

router = api_router("preferences")


class PreferencesIn(BaseModel):
    """Her ranked mentor choices, best first."""

    model_config = ConfigDict(extra="forbid")

    choices: list[str] = Field(max_length=MAX_CHOICES, description="Up to three mentors' participant ids, best first.")


class PreferencesOut(BaseModel):
    """Her current choices."""

    mentee_id: str
    choices: list[str]


@router.put("/mentees/{mentee_id}/preferences", response_model=PreferencesOut, responses=problem_responses(404, 409))
async def submit_preferences(
    mentee_id: str, body: PreferencesIn, store: Store, caller: Principal = require(PARTICIPANTS_WRITE, participant=True)
) -> PreferencesOut:
    """Her top three mentors, best first (MentorPreferencesSubmitted); changeable until she is matched."""
    choices = await use_cases.submit_preferences(store, caller, mentee_id, body.choices)
    return PreferencesOut(mentee_id=mentee_id, choices=list(choices))


@router.get("/mentees/{mentee_id}/preferences", response_model=PreferencesOut, responses=problem_responses(404, 409))
async def get_preferences(
    mentee_id: str, store: Store, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> PreferencesOut:
    """Her current choices."""
    await use_cases.known_mentee(store, caller, mentee_id)
    saved = await store.preferences(mentee_id)
    return PreferencesOut(mentee_id=mentee_id, choices=saved["choices"] if saved else [])
