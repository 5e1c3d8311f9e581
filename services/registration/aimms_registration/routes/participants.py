"""Expressions of interest and participants, as institutions' portals submit and read them.

A portal acts for its own institution only; a published mentor profile is visible to portals of
every institution (cross-institution matching is the point). Special category answers are never
returned here, except in the subject-access export.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from aimms_registration import use_cases
from aimms_registration.domain.interests import InterestSubmission
from aimms_registration.domain.participants import AGE_BANDS, Participant, Profile, Registration
from aimms_registration.routes.deps import IdempotencyKey, Store
from aimms_shared.auth import ADMIN, PARTICIPANTS_READ, PARTICIPANTS_WRITE, PROFILES_READ, Principal, require
from aimms_shared.errors import RuleBroken
from aimms_shared.http import Slug, api_router, problem_responses
from aimms_shared.mapping import carried_over
from aimms_shared.ratelimit import rate_limit

router = api_router("participants")

Text = Annotated[str, Field(max_length=2000)]
Tag = Annotated[str, Field(min_length=1, max_length=80)]


def acting_institution(caller: Principal, institution_id: str | None) -> str:
    """The institution a request acts for: the portal's own (an administrator must name one)."""
    if institution_id is None:
        if caller.institution_id is None:
            raise RuleBroken("institution_id", "required-for-admin", "administrators name the institution")
        return caller.institution_id
    if not caller.may_act_for(institution_id):
        raise RuleBroken("institution_id", "own-institution", "a portal acts for its own institution only")
    return institution_id


class InterestIn(BaseModel):
    """An expression of interest as a portal submits it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="Full name as she wishes to be addressed.")
    email: EmailStr
    programme_id: Slug
    institution_id: Slug | None = Field(default=None, description="Default: the portal's own institution.")


class OpenInterestIn(BaseModel):
    """An expression of interest on the scheme's own page, from anyone (no portal)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200, description="Full name as she wishes to be addressed.")
    email: EmailStr
    workplace: str = Field(min_length=2, max_length=200, description="Her university or employer, as she names it.")


class InterestOut(BaseModel):
    """The recorded expression of interest."""

    interest_id: str
    status: str = Field(description="'received' when new, 'already-received' for a repeat.")


class ConsentsIn(BaseModel):
    """The version of each text she agreed to; the first three are required, the evaluation is her choice."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    privacy_notice: str | None = Field(default=None, max_length=50, description="e.g. '2025-01'")
    code_of_conduct: str | None = Field(default=None, max_length=50)
    confidentiality: str | None = Field(default=None, max_length=50)
    evaluation: str | None = Field(
        default=None,
        max_length=50,
        description="Optional: the participant information sheet version she consented to the evaluation under. "
        "Only those who consent are invited to its questionnaires.",
    )


class ProfileFields(BaseModel):
    """Her career and what she offers or seeks."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    job_title: str = Field(min_length=1, max_length=200)
    seniority: str = Field(min_length=1, max_length=100, description="A level of the programme's seniority scale.")
    pathway: Literal["clinical", "non-clinical"]
    research_interests: list[Tag] = Field(default_factory=list, max_length=20)
    offers: Text | None = Field(default=None, description="As a mentor: what she can offer.")
    seeks: Text | None = Field(default=None, description="As a mentee: what she hopes to gain.")
    mentor_capacity: int | None = Field(default=None, ge=1, le=50, description="Mentees she will take at once.")
    publish_profile: bool = Field(default=False, description="Consent to publish her mentor profile to mentees.")
    background_matching: bool = Field(default=False, description="Let shared background count in matching.")
    answers: dict[Tag, Text] = Field(
        default_factory=dict, max_length=10, description="Her answers to the programme's profile questions, by id."
    )


class ParticipantIn(ProfileFields):
    """A registration as a portal submits it."""

    name: str = Field(min_length=1, max_length=200)
    email: EmailStr = Field(description="Must be at one of the institution's email domains.")
    programme_id: Slug
    institution_id: Slug | None = Field(default=None, description="Default: the portal's own institution.")
    role: Literal["mentor", "sponsor", "ally", "mentee", "both", "peer", "facilitator"] = Field(
        description="A pairs programme: mentee, the role that gives its support (mentor, sponsor or ally), or both; "
        "a circles programme: peer or facilitator."
    )
    consents: ConsentsIn
    confirmed_eligibility: list[Slug] = Field(default_factory=list, description="Ids of the programme's statements.")
    ethnicity: str | None = Field(default=None, max_length=200, description="Optional; stored encrypted.")
    age_band: Literal[AGE_BANDS] | None = Field(default=None, description="Optional; stored encrypted if sensitive.")  # type: ignore[valid-type]


class ParticipantChanges(BaseModel):
    """Changes to her record; omitted fields stay as they are (empty demographics are withdrawn)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    job_title: str | None = Field(default=None, min_length=1, max_length=200)
    seniority: str | None = Field(default=None, min_length=1, max_length=100)
    pathway: Literal["clinical", "non-clinical"] | None = None
    research_interests: list[Tag] | None = Field(default=None, max_length=20)
    offers: Text | None = None
    seeks: Text | None = None
    mentor_capacity: int | None = Field(default=None, ge=1, le=50)
    publish_profile: bool | None = None
    background_matching: bool | None = None
    answers: dict[Tag, Text] | None = Field(default=None, max_length=10, description="All her answers, replaced.")
    ethnicity: str | None = Field(default=None, max_length=200)
    age_band: Literal[AGE_BANDS, ""] | None = None  # type: ignore[valid-type]


class ConsentOut(BaseModel):
    """A consent as recorded."""

    kind: str
    version: str
    given_at: datetime
    withdrawn_at: datetime | None = None


class ParticipantOut(BaseModel):
    """A participant as her institution's portal sees her (no special category data)."""

    participant_id: str
    programme_id: str
    institution_id: str
    name: str
    email: str
    roles: list[str]
    job_title: str
    seniority: str
    pathway: str
    research_interests: list[str]
    offers: str | None
    seeks: str | None
    mentor_capacity: int | None
    publish_profile: bool
    background_matching: bool
    answers: dict[str, str]
    consents: list[ConsentOut]
    confirmed_eligibility: list[str]
    status: str
    registered_at: datetime
    withdrawn_at: datetime | None
    in_evaluation: bool = Field(description="Consented to the evaluation and not excluded by coordinators.")
    excluded_from_evaluation: str | None = Field(description="Why coordinators left her out of the evaluation.")

    @classmethod
    def of_participant(cls, p: Participant) -> "ParticipantOut":
        """Her record's fields and her profile's (never the special category answers, which it does not list)."""
        return carried_over(cls, p, p.profile)


class MentorProfileOut(BaseModel):
    """A mentor's published profile, visible to portals of every institution."""

    participant_id: str
    programme_id: str
    institution_id: str
    name: str
    job_title: str
    seniority: str
    pathway: str
    research_interests: list[str]
    offers: str | None
    mentor_capacity: int | None


class WithdrawalIn(BaseModel):
    """Why she leaves (optional)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class EvaluationConsentIn(BaseModel):
    """Her consent to the evaluation: the information sheet version she agreed to, or null to withdraw it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    version: str | None = Field(max_length=50)


class EvaluationExclusionIn(BaseModel):
    """Coordinators leave her out of the evaluation (e.g. a committee member), or include her again."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    excluded: bool
    reason: str | None = Field(default=None, max_length=500, description="Required when excluding.")


# Both ways in: 201 for a new interest, 200 for a repeat.
INTEREST_ROUTE: dict[str, Any] = {
    "status_code": 201,
    "response_model": InterestOut,
    "tags": ["interests"],
    "responses": {
        200: {"model": InterestOut, "description": "Already received: nothing new happens."},
        **problem_responses(404, 409),
    },
}


def _received(response: Response, interest_id: str, created: bool) -> InterestOut:
    """201 for a new interest, 200 for a repeat (nothing new happens)."""
    response.status_code = 201 if created else 200
    response.headers["Location"] = f"/interests/{interest_id}"
    return InterestOut(interest_id=interest_id, status="received" if created else "already-received")


@router.post("/interests", **INTEREST_ROUTE)
async def express_interest(
    body: InterestIn, store: Store, response: Response, caller: Principal = require(PARTICIPANTS_WRITE)
) -> InterestOut:
    """Someone asks to join a programme; she receives the welcome email and the invitation to register."""
    submission = carried_over(InterestSubmission, body, institution_id=acting_institution(caller, body.institution_id))
    return _received(response, *await use_cases.express_interest(store, submission))


@router.post("/programmes/{programme_id}/interests", **INTEREST_ROUTE)
async def express_interest_openly(
    programme_id: Slug,
    body: OpenInterestIn,
    store: Store,
    response: Response,
    _: None = rate_limit("open-interests", 20, burst=10),  # anyone may call it: a bound against floods
) -> InterestOut:
    """Interest from the scheme's own page, without a portal: recorded under her member institution when
    her address is at one, otherwise under the scheme's own tenancy, if the programme is open to non-members."""
    submission = carried_over(
        InterestSubmission, body, institution_id="", programme_id=programme_id, declared_institution=body.workplace
    )
    return _received(response, *await use_cases.express_interest_on_the_schemes_page(store, submission))


@router.post("/participants", status_code=201, response_model=ParticipantOut, responses=problem_responses(404, 409))
async def register_participant(
    body: ParticipantIn,
    store: Store,
    idempotency_key: IdempotencyKey = None,
    caller: Principal = require(PARTICIPANTS_WRITE),
) -> Response:
    """Register a member of the institution's staff in a programme (ParticipantRegistered)."""
    registration = Registration(
        name=body.name,
        email=body.email,
        institution_id=acting_institution(caller, body.institution_id),
        programme_id=body.programme_id,
        role=body.role,
        profile=Profile(**body.model_dump(include=set(ProfileFields.model_fields))),
        consents={k: v for k, v in body.consents.model_dump().items() if v},
        confirmed_eligibility=tuple(body.confirmed_eligibility),
        sensitive={k: v for k, v in {"ethnicity": body.ethnicity, "age_band": body.age_band}.items() if v},
    )

    async def run(participant_id: str) -> tuple[int, dict[str, Any], str]:
        participant = await use_cases.register_participant(store, registration, participant_id)
        return (201, ParticipantOut.of_participant(participant).model_dump(mode="json"), participant.participant_id)

    return await store.idempotency.run(caller.client_id, idempotency_key, body.model_dump(mode="json"), run)


@router.get("/participants", response_model=list[ParticipantOut])
async def list_participants(
    store: Store, programme_id: str | None = None, caller: Principal = require(PARTICIPANTS_READ)
) -> list[ParticipantOut]:
    """The institution's participants (administrators: everyone's)."""
    institution_id = None if caller.is_admin else caller.institution_id
    found = await store.participants(institution_id=institution_id, programme_id=programme_id)
    return [ParticipantOut.of_participant(p) for p in found]


@router.get("/participants/{participant_id}", response_model=ParticipantOut, responses=problem_responses(404))
async def get_participant(
    participant_id: str, store: Store, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> ParticipantOut:
    """One participant of the institution (or herself)."""
    return ParticipantOut.of_participant(await use_cases.participant_for(store, caller, participant_id))


@router.patch("/participants/{participant_id}", response_model=ParticipantOut, responses=problem_responses(404, 409))
async def update_participant(
    participant_id: str, body: ParticipantChanges, store: Store, caller: Principal = require(PARTICIPANTS_WRITE)
) -> ParticipantOut:
    """Change her profile, contact details, capacity or optional answers (ParticipantProfileUpdated…)."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    updated = await use_cases.update_participant(store, caller, participant_id, changes)
    return ParticipantOut.of_participant(updated)


@router.post(
    "/participants/{participant_id}/withdrawal", response_model=ParticipantOut, responses=problem_responses(404, 409)
)
async def withdraw_participant(
    participant_id: str,
    store: Store,
    body: WithdrawalIn | None = None,
    caller: Principal = require(PARTICIPANTS_WRITE, participant=True),
) -> ParticipantOut:
    """She withdraws from the programme (ParticipantWithdrawn)."""
    reason = body.reason if body else None
    return ParticipantOut.of_participant(await use_cases.withdraw_participant(store, caller, participant_id, reason))


@router.put(
    "/participants/{participant_id}/evaluation-consent",
    response_model=ParticipantOut,
    responses=problem_responses(404, 409),
)
async def set_evaluation_consent(
    participant_id: str, body: EvaluationConsentIn, store: Store, caller: Principal = require(PARTICIPANTS_WRITE)
) -> ParticipantOut:
    """She gives or withdraws consent to the evaluation (EvaluationParticipationChanged)."""
    return ParticipantOut.of_participant(
        await use_cases.set_evaluation_consent(store, caller, participant_id, body.version)
    )


@router.put(
    "/participants/{participant_id}/evaluation-exclusion",
    response_model=ParticipantOut,
    responses=problem_responses(404),
)
async def exclude_from_evaluation(
    participant_id: str, body: EvaluationExclusionIn, store: Store, caller: Principal = require(ADMIN)
) -> ParticipantOut:
    """Coordinators leave her out of the evaluation, or include her again (EvaluationParticipationChanged)."""
    reason = (body.reason or "") if body.excluded else None
    return ParticipantOut.of_participant(await use_cases.exclude_from_evaluation(store, caller, participant_id, reason))


@router.delete("/participants/{participant_id}", status_code=204, responses=problem_responses(404, 409))
async def erase_participant(
    participant_id: str, store: Store, caller: Principal = require(PARTICIPANTS_WRITE)
) -> Response:
    """Erasure: her personal data deleted everywhere (ParticipantErased, contact tombstone)."""
    await use_cases.erase_participant(store, caller, participant_id)
    return Response(status_code=204)


@router.get("/participants/{participant_id}/export", responses=problem_responses(404))
async def export_participant(
    participant_id: str, store: Store, caller: Principal = require(PARTICIPANTS_READ, participant=True)
) -> dict[str, Any]:
    """Subject access: everything this service holds about her, including her optional answers."""
    return await use_cases.export_participant(store, caller, participant_id)


@router.get("/mentor-profiles", response_model=list[MentorProfileOut], tags=["mentor profiles"])
async def mentor_profiles(
    programme_id: str, store: Store, caller: Principal = require(PROFILES_READ, participant=True)
) -> list[MentorProfileOut]:
    """Published mentor profiles of a programme, from every institution (a participant: her programme's)."""
    await use_cases.programme_for(store, caller, programme_id)
    mentors = await store.participants(institution_id=None, programme_id=programme_id, published_mentors_only=True)
    return [carried_over(MentorProfileOut, m, m.profile) for m in mentors]
