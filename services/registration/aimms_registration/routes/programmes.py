"""Programmes: created and changed by administrators, read by every portal."""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aimms_registration import use_cases
from aimms_registration.domain.programmes import EligibilityStatement, Programme
from aimms_registration.routes.deps import Store
from aimms_shared.auth import ADMIN, PROFILES_READ, Principal, require
from aimms_shared.contracts.registration import MatchingPolicy, ProfileQuestion, ProgrammeKind, Role
from aimms_shared.errors import Missing
from aimms_shared.http import Slug, api_router, problem_responses
from aimms_shared.mapping import carried_over

router = api_router("programmes")


class Statement(BaseModel):
    """An eligibility statement a registrant must confirm."""

    model_config = ConfigDict(from_attributes=True)

    statement_id: Slug
    text: str = Field(min_length=3, max_length=500)
    roles: list[Role] = Field(default_factory=list, description="The roles that confirm it; empty: every role.")


class ProgrammeSettings(BaseModel):
    """A programme's settings: everything that makes AIMMS, a postgraduate or a reverse-mentoring programme."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=2, max_length=200)
    eligibility: list[Statement] = Field(default_factory=list, max_length=20)
    kind: ProgrammeKind = Field(
        default="pairs", description="pairs: mentor and mentee; circles: 4-8 peers with a facilitator."
    )
    roles_offered: list[Role] = Field(
        min_length=1,
        max_length=2,
        description="A pairs programme: mentee and the role that gives its support (mentor, sponsor or ally); "
        "a circles programme: peer, facilitator.",
    )
    seniority_scale: list[str] = Field(
        min_length=1, max_length=20, description="Levels from most junior to most senior."
    )
    mentor_more_senior: bool = Field(default=True, description="False for reverse mentoring.")
    default_mentor_capacity: int = Field(default=1, ge=1, le=50)
    max_mentor_capacity: int = Field(default=5, ge=1, le=50)
    term: str = Field(default="P6M", description="ISO 8601 duration of a mentoring partnership.")
    follow_up_after: str = Field(default="P6M", description="ISO 8601 duration until the follow-up questionnaire.")
    open_for_registration: bool = True
    sensitive_fields: list[Literal["ethnicity", "age_band"]] = Field(
        default_factory=lambda: ["ethnicity"], description="Optional demographic questions asked (always encrypted)."
    )
    matching: MatchingPolicy = Field(default_factory=MatchingPolicy)
    audience: str = Field(default="", max_length=300, description="Whom the programme serves, as its emails name them.")
    description: str = Field(
        default="", max_length=2000, description="What the programme is, as its welcome email introduces it."
    )
    open_to_non_members: bool = Field(
        default=False,
        description="Take interest, on the scheme's own page, from people whose institution is not onboarded; "
        "they are held under the scheme's own tenancy (institution 'scheme') and registered by coordinators.",
    )
    ideas_for_change: bool = Field(
        default=False,
        description="Pairs record ideas for change (reverse mentoring), which the programme's leads read without "
        "names, once at least three pairs have recorded some.",
    )
    profile_questions: list[ProfileQuestion] = Field(
        default_factory=list,
        max_length=10,
        description="Questions of the programme's own that some roles answer in their profile (a sponsor: what "
        "she can open doors to); mentees read the answers of those they may choose.",
    )

    def to_domain(self, programme_id: str) -> Programme:
        settings = {name: getattr(self, name) for name in ProgrammeSettings.model_fields}
        lists = {name: tuple(value) for name, value in settings.items() if isinstance(value, list)}
        statements = tuple(EligibilityStatement(s.statement_id, s.text, tuple(s.roles)) for s in self.eligibility)
        return Programme(**settings | lists | {"eligibility": statements}, programme_id=programme_id)


class ProgrammeIn(ProgrammeSettings):
    """A programme to create."""

    programme_id: Slug


class ProgrammeOut(ProgrammeSettings):
    """A programme."""

    model_config = ConfigDict(extra="ignore", from_attributes=True)

    programme_id: str


@router.post("/programmes", status_code=201, response_model=ProgrammeOut, responses=problem_responses(409))
async def create_programme(body: ProgrammeIn, store: Store, caller: Principal = require(ADMIN)) -> ProgrammeOut:
    """Create a programme (ProgrammeOpened); no code change, no restart."""
    settings = ProgrammeSettings.model_validate(body.model_dump(exclude={"programme_id"}))
    return carried_over(ProgrammeOut, await use_cases.create_programme(store, settings.to_domain(body.programme_id)))


@router.put("/programmes/{programme_id}", response_model=ProgrammeOut, responses=problem_responses(404, 409))
async def update_programme(
    programme_id: str, body: ProgrammeSettings, store: Store, caller: Principal = require(ADMIN)
) -> ProgrammeOut:
    """Change a programme's settings, e.g. close registration (ProgrammeUpdated)."""
    return carried_over(ProgrammeOut, await use_cases.update_programme(store, body.to_domain(programme_id)))


@router.get("/programmes", response_model=list[ProgrammeOut])
async def list_programmes(store: Store, caller: Principal = require(PROFILES_READ)) -> list[ProgrammeOut]:
    """Every programme, for portals' registration forms."""
    return [carried_over(ProgrammeOut, p) for p in await store.programmes()]


@router.get("/programmes/{programme_id}", response_model=ProgrammeOut, responses=problem_responses(404))
async def get_programme(
    programme_id: str, store: Store, caller: Principal = require(PROFILES_READ, participant=True)
) -> ProgrammeOut:
    """One programme (a participant: her own)."""
    return carried_over(ProgrammeOut, await use_cases.programme_for(store, caller, programme_id))


class PublicProgramme(BaseModel):
    """What the scheme's own page says of a programme open to non-members."""

    programme_id: str
    name: str
    audience: str
    description: str
    eligibility: list[Statement]
    open_for_registration: bool


@router.get("/programmes/{programme_id}/public", response_model=PublicProgramme, responses=problem_responses(404))
async def public_programme(programme_id: str, store: Store) -> PublicProgramme:
    """A programme open to non-members, as its page on the scheme's site presents it (no token needed)."""
    programme = await store.recent_programme(programme_id)
    if programme is None or not programme.open_to_non_members:
        raise Missing("programme_id", "open-to-non-members", f"no programme '{programme_id}' takes interest here")
    return PublicProgramme(
        programme_id=programme.programme_id,
        name=programme.name,
        audience=programme.audience,
        description=programme.description,
        eligibility=[Statement.model_validate(s) for s in programme.eligibility],
        open_for_registration=programme.open_for_registration,
    )
