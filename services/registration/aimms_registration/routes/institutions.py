"""Institutions and their portals' credentials (scheme administrators)."""

from datetime import datetime

from fastapi import Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, HttpUrl

from aimms_registration import use_cases
from aimms_registration.routes.deps import IdempotencyKey, Store
from aimms_shared.auth import ADMIN, PROFILES_READ, Principal, require
from aimms_shared.errors import Missing
from aimms_shared.http import Slug, api_router, problem_responses
from aimms_shared.mapping import carried_over

router = api_router("institutions")


class InstitutionIn(BaseModel):
    """An institution to onboard."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    institution_id: Slug = Field(description="Stable identifier, e.g. 'southampton'.")
    name: str = Field(min_length=2, max_length=200)
    email_domains: list[str] = Field(min_length=1, max_length=20, description="Domains its staff use, e.g. soton.ac.uk")
    contact_email: EmailStr
    registration_url: HttpUrl | None = Field(
        default=None, description="Where its staff register (sent in invitations)."
    )


class InstitutionOut(BaseModel):
    """An institution as the platform knows it."""

    institution_id: str
    name: str
    email_domains: list[str]
    contact_email: str
    registration_url: str | None
    active: bool


class InstitutionSummary(BaseModel):
    """What every portal may know of another institution."""

    institution_id: str
    name: str
    active: bool


class CredentialIn(BaseModel):
    """A credential to create: for an institution's portal, or (no institution) for an administrator."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    institution_id: Slug | None = None
    scopes: list[str] = Field(min_length=1, description="Portal: participants:write participants:read profiles:read")


class CredentialOut(BaseModel):
    """A credential, without its secret."""

    client_id: str
    name: str
    institution_id: str | None
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None


class IssuedCredential(CredentialOut):
    """A credential with its secret: shown this once, stored only as a hash."""

    client_secret: str


class OnboardedOut(BaseModel):
    """The onboarded institution and its portal's first credential."""

    institution: InstitutionOut
    credential: IssuedCredential


@router.post("/institutions", status_code=201, response_model=OnboardedOut, responses=problem_responses(409))
async def onboard_institution(
    body: InstitutionIn, store: Store, idempotency_key: IdempotencyKey = None, caller: Principal = require(ADMIN)
) -> Response:
    """Onboard a medical school (InstitutionOnboarded) and issue its portal's first credential."""

    async def run(_: str) -> tuple[int, dict, None]:  # the institution's id is the caller's
        institution, credential, secret = await use_cases.onboard_institution(store, **body.model_dump(mode="json"))
        out = OnboardedOut(
            institution=carried_over(InstitutionOut, institution),
            credential=carried_over(IssuedCredential, credential, client_secret=secret),
        )
        return 201, out.model_dump(mode="json"), None

    return await store.idempotency.run(caller.client_id, idempotency_key, body.model_dump(mode="json"), run)


@router.get("/institutions", response_model=list[InstitutionSummary])
async def list_institutions(
    store: Store, caller: Principal = require(PROFILES_READ, participant=True)
) -> list[InstitutionSummary]:
    """Onboarded institutions (every portal may list them, and a participant, to name her mentors' schools)."""
    return [
        InstitutionSummary(institution_id=i.institution_id, name=i.name, active=i.active)
        for i in await store.institutions()
    ]


@router.get("/institutions/{institution_id}", response_model=InstitutionOut, responses=problem_responses(404))
async def get_institution(
    institution_id: str, store: Store, caller: Principal = require(PROFILES_READ)
) -> InstitutionOut:
    """One institution in full: its own portal, or an administrator."""
    institution = await store.institution(institution_id)
    if institution is None or not caller.may_act_for(institution_id):
        raise Missing("institution_id", "own-institution", f"no institution '{institution_id}' visible to you")
    return carried_over(InstitutionOut, institution)


@router.post(
    "/institutions/{institution_id}/suspension", response_model=InstitutionOut, responses=problem_responses(404, 409)
)
async def suspend_institution(institution_id: str, store: Store, caller: Principal = require(ADMIN)) -> InstitutionOut:
    """Suspend an institution: no one registers through it, and its portal gets no tokens."""
    return carried_over(InstitutionOut, await use_cases.set_institution_active(store, institution_id, False))


@router.delete(
    "/institutions/{institution_id}/suspension", response_model=InstitutionOut, responses=problem_responses(404, 409)
)
async def reactivate_institution(
    institution_id: str, store: Store, caller: Principal = require(ADMIN)
) -> InstitutionOut:
    """Re-activate a suspended institution."""
    return carried_over(InstitutionOut, await use_cases.set_institution_active(store, institution_id, True))


@router.get("/credentials", response_model=list[CredentialOut], tags=["credentials"])
async def list_credentials(
    store: Store, institution_id: str | None = None, caller: Principal = require(ADMIN)
) -> list[CredentialOut]:
    """An institution's portal credentials (no institution: the administrators'); never secrets."""
    return [carried_over(CredentialOut, c) for c in await store.credentials_of(institution_id)]


@router.post(
    "/credentials",
    status_code=201,
    response_model=IssuedCredential,
    tags=["credentials"],
    responses=problem_responses(404),
)
async def create_credential(
    body: CredentialIn, store: Store, idempotency_key: IdempotencyKey = None, caller: Principal = require(ADMIN)
) -> Response:
    """A new credential for a portal or an administrator; its secret is shown once."""

    async def run(_: str) -> tuple[int, dict, None]:
        credential, secret = await use_cases.create_credential(store, **body.model_dump())
        out = carried_over(IssuedCredential, credential, client_secret=secret)
        return 201, out.model_dump(mode="json"), None

    return await store.idempotency.run(caller.client_id, idempotency_key, body.model_dump(mode="json"), run)


@router.post(
    "/credentials/{client_id}/rotation",
    response_model=IssuedCredential,
    tags=["credentials"],
    responses=problem_responses(404),
)
async def rotate_credential(client_id: str, store: Store, caller: Principal = require(ADMIN)) -> IssuedCredential:
    """A new secret for the credential (shown once); the old secret stops working at once."""
    credential, secret = await use_cases.rotate_credential(store, client_id)
    return carried_over(IssuedCredential, credential, client_secret=secret)


@router.delete(
    "/credentials/{client_id}", response_model=CredentialOut, tags=["credentials"], responses=problem_responses(404)
)
async def revoke_credential(client_id: str, store: Store, caller: Principal = require(ADMIN)) -> CredentialOut:
    """Revoke a credential: no more tokens (issued ones expire within their short lifetime)."""
    return carried_over(CredentialOut, await use_cases.revoke_credential(store, client_id))
