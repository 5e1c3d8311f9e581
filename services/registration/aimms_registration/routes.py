"""Registration's HTTP API, as portals see it; every route translates into a use case."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from aimms_registration import domain, use_cases
from aimms_registration.store import RegistrationStore
from aimms_shared.service import runtime_of

router = APIRouter()

Slug = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]


def get_store(request: Request) -> RegistrationStore:
    """The store built in the composition root."""
    return request.app.state.store


Store = Annotated[RegistrationStore, Depends(get_store)]


class InterestIn(BaseModel):
    """An expression of interest as a portal submits it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="Full name as she wishes to be addressed.")
    email: EmailStr
    institution_id: Slug
    programme_id: Slug


class InterestOut(BaseModel):
    """The recorded expression of interest."""

    interest_id: str
    status: str = Field(description="'received' when new, 'already-received' for a repeat.")


class InstitutionOut(BaseModel):
    """An onboarded institution, for portals' forms."""

    institution_id: str
    name: str
    active: bool


class ProgrammeOut(BaseModel):
    """A programme, for portals' forms."""

    programme_id: str
    name: str
    open_for_registration: bool


@router.post(
    "/interests",
    status_code=status.HTTP_201_CREATED,
    response_model=InterestOut,
    responses={200: {"model": InterestOut, "description": "Already received: nothing new happens."}},
    tags=["interests"],
)
async def express_interest(body: InterestIn, store: Store, request: Request, response: Response) -> InterestOut:
    """Someone asks to join a programme; she will receive the welcome email."""
    interest_id, created = await use_cases.express_interest(
        store, domain.InterestSubmission(**body.model_dump()), on_events=runtime_of(request).relay.nudge
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"/interests/{interest_id}"
    return InterestOut(interest_id=interest_id, status="received" if created else "already-received")


@router.get("/institutions", response_model=list[InstitutionOut], tags=["reference"])
async def list_institutions(store: Store) -> list[InstitutionOut]:
    """Onboarded institutions."""
    return [
        InstitutionOut(institution_id=i.institution_id, name=i.name, active=i.active)
        for i in await store.institutions()
    ]


@router.get("/programmes", response_model=list[ProgrammeOut], tags=["reference"])
async def list_programmes(store: Store) -> list[ProgrammeOut]:
    """Programmes and whether they are open for registration."""
    return [
        ProgrammeOut(programme_id=p.programme_id, name=p.name, open_for_registration=p.open_for_registration)
        for p in await store.programmes()
    ]
