"""Events the registration service produces.

Domain events never carry contact details or special category data: names and addresses travel
only on the compacted contacts topic (so erasure can remove them from Kafka with a tombstone),
and ethnicity or age never leave registration's encrypted store.
"""

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field

from aimms_shared.durations import parse
from aimms_shared.events import Event, Topic, contract

INSTITUTIONS = Topic("registration.institutions")
PROGRAMMES = Topic("registration.programmes")
INTERESTS = Topic("registration.interests")
PARTICIPANTS = Topic("registration.participants")
CONTACTS = Topic("registration.contacts", compacted=True)

# Pairs programmes offer mentees one kind of support, given by mentors, sponsors or allies; circles
# programmes offer peer and facilitator.
Role = Literal["mentor", "sponsor", "ally", "mentee", "peer", "facilitator"]
# The roles that give a pairs programme's support: the side of a pair opposite the mentee.
GIVING_ROLES = ("mentor", "sponsor", "ally")


def gives(roles: "list[str] | tuple[str, ...]") -> bool:
    """Whether these roles give a pairs programme's support: the engine's mentor side, with a capacity."""
    return any(role in GIVING_ROLES for role in roles)


def giver_of(roles_offered: "list[str] | tuple[str, ...]") -> str:
    """Who gives a programme's support, as its words call her: mentor, sponsor or ally (mentor by default)."""
    return next((role for role in roles_offered if role in GIVING_ROLES), "mentor")


ProgrammeKind = Literal["pairs", "circles"]
# The scheme's own tenancy: the institution id of people whose university is not onboarded.
SCHEME_TENANCY = "scheme"


class _InstitutionEvent(Event, topic=INSTITUTIONS, key="institution_id"):
    institution_id: str


@contract
class InstitutionOnboarded(_InstitutionEvent):
    """A medical school joined the platform; its portal can now be given credentials."""

    name: str
    email_domains: list[str]


@contract
class InstitutionSuspended(_InstitutionEvent):
    """The institution may not register anyone until re-activated."""


@contract
class InstitutionReactivated(_InstitutionEvent):
    """A suspended institution is active again."""


def _duration(text: str) -> str:
    parse(text)  # ValueError names the expected form
    return text


IsoDuration = Annotated[str, AfterValidator(_duration)]


class ScoreWeights(BaseModel):
    """How much each part of a pair's score counts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seniority: float = Field(default=1.0, ge=0, le=10)
    interests: float = Field(default=1.0, ge=0, le=10)
    other_institution: float = Field(default=0.5, ge=0, le=10, description="Cross-institution pairs are the point.")
    background: float = Field(
        default=0.5, ge=0, le=10, description="Counts only where both opted in and describe the same background."
    )
    pathway: float = Field(default=0.25, ge=0, le=10, description="Same career pathway (clinical or non-clinical).")


class MatchingPolicy(BaseModel):
    """How a programme matches and how long each step of a proposal and a partnership takes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    preferred_seniority_gap: int = Field(default=1, ge=1, le=20, description="Levels between mentor and mentee.")
    min_seniority_gap: int = Field(
        default=0,
        ge=0,
        le=20,
        description="Levels the giving side must be beyond the mentee (in the programme's direction) for any pair: "
        "sponsors need standing to advocate. 0: seniority only guides proposals.",
    )
    weights: ScoreWeights = ScoreWeights()
    fallback_candidates: int = Field(default=20, ge=0, le=200, description="Scored mentors after her choices.")
    residual_candidates: int = Field(default=60, ge=0, le=1000, description="List length in the residual round.")
    same_institution_allowed: bool = Field(default=True, description="False declares same-school pairs a conflict.")
    choices_by_seniority: bool = Field(
        default=False,
        description="True: a mentee may name only mentors the seniority rule allows. False (the scheme's way): "
        "she may name any published mentor, and seniority only guides fallback proposals.",
    )
    reply_within: IsoDuration = Field(default="P14D", description="Time to accept or decline a proposal.")
    reminder_after: IsoDuration = Field(default="P7D", description="Unanswered this long: a reminder.")
    trial_period: IsoDuration = Field(default="P1M", description="Either side may end the match freely within it.")


class ProfileQuestion(BaseModel):
    """A question of a programme's own that people in some of its roles answer in their profile (a sponsor: what
    she can open doors to); mentees read the answers of those they may choose."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question_id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    text: str = Field(min_length=3, max_length=300)
    roles: list[Role] = Field(min_length=1, description="The roles that answer it.")
    required: bool = False


class _ProgrammeState(Event, topic=PROGRAMMES, key="programme_id"):
    programme_id: str
    name: str
    kind: ProgrammeKind = Field(
        default="pairs", description="pairs: one mentor to one mentee; circles: 4-8 peers with a facilitator."
    )
    roles_offered: list[Role]
    default_mentor_capacity: int
    max_mentor_capacity: int
    seniority_scale: list[str]
    mentor_more_senior: bool
    term: str
    follow_up_after: str
    open_for_registration: bool
    matching: MatchingPolicy = MatchingPolicy()
    audience: str = Field(default="", description="Whom the programme serves, as its emails name them.")
    description: str = Field(default="", description="What the programme is, as its welcome email introduces it.")
    open_to_non_members: bool = Field(
        default=False,
        description="Takes interest from people whose institution is not onboarded (the scheme's tenancy).",
    )
    ideas_for_change: bool = Field(
        default=False, description="Pairs record ideas for change, reported to the programme's leads anonymously."
    )
    profile_questions: list[ProfileQuestion] = Field(
        default_factory=list, description="The programme's own profile questions, per role."
    )


@contract
class ProgrammeOpened(_ProgrammeState):
    """A programme was created; its full settings."""


@contract
class ProgrammeUpdated(_ProgrammeState):
    """A programme's settings changed; its full settings as they now are."""


@contract
class InterestExpressed(Event, topic=INTERESTS, key="interest_id"):
    """Someone eligible asked to join a programme; she is owed the welcome pack and an invitation.

    Her name and address travel only as her contact (`ParticipantContact` keyed by
    `interest_contact_id`), on the compacted contacts topic, so her erasure reaches Kafka.
    """

    interest_id: str
    institution_id: str
    institution_name: str
    programme_id: str
    programme_name: str
    registration_url: str | None = None


class _ParticipantEvent(Event, topic=PARTICIPANTS, key="participant_id"):
    participant_id: str
    programme_id: str
    institution_id: str


class _Profile(_ParticipantEvent):
    """Her profile's settings and tags. Its free text (job title, offers, seeks, answers) travels apart, as
    `ParticipantProfileText` on the compacted contacts topic, where her erasure reaches it."""

    # 2: the free text moved to ParticipantProfileText (version 1 carried it; consumers ignore it there).
    schema_version: ClassVar[int] = 2

    roles: list[Role]
    seniority: str
    pathway: Literal["clinical", "non-clinical"]
    research_interests: list[str]
    mentor_capacity: int | None
    profile_published: bool
    background_matching: bool
    background_token: str | None = Field(
        default=None,
        description="Only where she asked to be matched by background and described it: a keyed hash of her "
        "self-description, equal for equal descriptions in one programme and unreadable without registration's key.",
    )


@contract
class ParticipantRegistered(_Profile):
    """A participant registered in a programme (no contact details, no special category data)."""

    registered_at: datetime
    in_evaluation: bool = Field(default=False, description="She consented to the evaluation and is not excluded.")


@contract
class ParticipantProfileUpdated(_Profile):
    """A participant's profile as it now is."""


@contract
class MentorCapacityChanged(_ParticipantEvent):
    """How many mentees a mentor will take changed."""

    mentor_capacity: int


@contract
class EvaluationParticipationChanged(_ParticipantEvent):
    """Whether her answers are sought for the evaluation: she gave or withdrew consent, or coordinators excluded her."""

    in_evaluation: bool


@contract
class ParticipantWithdrawn(_ParticipantEvent):
    """She left the programme: cancel her proposals, end her matches, send her nothing more."""

    reason: str | None = None


@contract
class ParticipantErased(_ParticipantEvent):
    """She asked for erasure: every service deletes what it holds about her."""

    interest_id: str | None = Field(
        default=None, description="The expression of interest she registered after: its contact goes too."
    )


@contract
class ParticipantLinkIssued(_ParticipantEvent):
    """She asked for her programme's page: the single-use link notifications emails to her address.

    The link is a credential until it is used or lapses, like a proposal's answer links; it names
    nobody and carries no contact details.
    """

    url: str
    expires_at: datetime


@contract
class ParticipantContact(_ParticipantEvent, topic=CONTACTS):
    """How to reach a participant, or someone who expressed interest (`participant_id` is then
    `interest_contact_id(interest id)`); the latest per key on a compacted topic.

    A tombstone (null value) on the same key replaces it when she is erased.
    """

    name: str
    email: EmailStr


@contract
class ParticipantProfileText(_ParticipantEvent, topic=CONTACTS, key="text_id"):
    """The free text of her profile, which mentees read (job title, what she offers or seeks, her answers to the
    programme's questions); the latest per key on the compacted contacts topic, tombstoned when she is erased."""

    text_id: str = Field(description="`profile_text_id(participant_id)`: the record's key.")
    job_title: str
    offers: str | None = None
    seeks: str | None = None
    answers: dict[str, str] = Field(
        default_factory=dict, description="Her answers to the programme's profile questions for her roles."
    )


def profile_text_id(participant_id: str) -> str:
    """The key of her profile's free text on the contacts topic (her contact is keyed by her id alone)."""
    return f"profile:{participant_id}"


def interest_contact_id(interest_id: str) -> str:
    """The contact key of someone who expressed interest (she has no participant id yet)."""
    return f"interest:{interest_id}"
