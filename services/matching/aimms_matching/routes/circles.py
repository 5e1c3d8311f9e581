"""Mentoring circles: coordinators see every circle of a programme, a member sees her own."""

from datetime import datetime

from pydantic import BaseModel

from aimms_matching.routes.deps import Matching, Store
from aimms_shared.auth import ADMIN, PARTICIPANTS_READ, Principal, require
from aimms_shared.contracts.matching import CircleRole
from aimms_shared.http import api_router, problem_responses
from aimms_shared.mapping import carried_over

router = api_router("circles")


class CircleMemberOut(BaseModel):
    participant_id: str
    institution_id: str
    role: CircleRole
    shared_interests: list[str]


class CircleOut(BaseModel):
    """A circle: its members still in it (peers, then the facilitator), why they are together, its dates."""

    circle_id: str
    programme_id: str
    members: list[CircleMemberOut]
    shared_interests: list[str]
    stages: list[str]
    formed_at: datetime
    follow_up_at: datetime
    left: list[str]


@router.get("/programmes/{programme_id}/circles", response_model=list[CircleOut])
async def list_circles(programme_id: str, store: Store, caller: Principal = require(ADMIN)) -> list[CircleOut]:
    """A programme's circles, newest first."""
    return [carried_over(CircleOut, c) for c in await store.circles(programme_id)]


@router.get("/circles", response_model=list[CircleOut])
async def list_own_circles(
    store: Store, programme_id: str | None = None, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> list[CircleOut]:
    """Circles she is in (her own token), with a member at a portal's institution, or any (coordinators); newest
    first."""
    institution_id = None if caller.is_admin or caller.is_participant else caller.institution_id
    found = await store.circles(programme_id, institution_id=institution_id, participant_id=caller.participant_id)
    return [carried_over(CircleOut, c) for c in found]


@router.get("/circles/{circle_id}", response_model=CircleOut, responses=problem_responses(404))
async def get_circle(
    circle_id: str, matching: Matching, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> CircleOut:
    """A circle, to coordinators, to a member of it (her own token) or to the portal of a member's institution."""
    return carried_over(CircleOut, await matching.circles.circle_for(caller, circle_id))
