"""Programmes: the scheme grows by data (AIMMS Mentoring, postgraduate, reverse mentoring…)."""

from dataclasses import dataclass, field

from aimms_shared.contracts.registration import (
    GIVING_ROLES,
    MatchingPolicy,
    ProfileQuestion,
    ProgrammeOpened,
    ProgrammeUpdated,
    giver_of,
)
from aimms_shared.durations import is_duration
from aimms_shared.errors import RuleBroken

# The roles each kind of programme offers: pairs of a mentee and one who gives support (a mentor, a sponsor or
# an ally: one kind per programme), or circles of peers with a facilitator.
ROLES_OF_KIND = {"pairs": (*GIVING_ROLES, "mentee"), "circles": ("peer", "facilitator")}
# Optional demographic questions a programme may ask; ethnicity is always treated as sensitive.
DEMOGRAPHICS = ("ethnicity", "age_band")
ALWAYS_SENSITIVE = ("ethnicity",)


@dataclass(frozen=True)
class EligibilityStatement:
    """Something a registrant must confirm, e.g. 'I work in academic medicine in the UK'.

    `roles` names the roles that confirm it (none: every role): in reverse mentoring the students
    who mentor confirm being students, the senior staff they mentor do not.
    """

    statement_id: str
    text: str
    roles: tuple[str, ...] = ()

    def applies_to(self, roles: tuple[str, ...]) -> bool:
        """Whether someone registering in these roles must confirm it."""
        return not self.roles or any(role in self.roles for role in roles)


@dataclass(frozen=True)
class Programme:
    """A mentoring programme's settings."""

    programme_id: str
    name: str
    eligibility: tuple[EligibilityStatement, ...]
    roles_offered: tuple[str, ...]
    seniority_scale: tuple[str, ...]
    kind: str = "pairs"  # a key of ROLES_OF_KIND
    mentor_more_senior: bool = True
    default_mentor_capacity: int = 1
    max_mentor_capacity: int = 5
    term: str = "P6M"
    follow_up_after: str = "P6M"
    open_for_registration: bool = True
    sensitive_fields: tuple[str, ...] = field(default=ALWAYS_SENSITIVE)
    matching: MatchingPolicy = MatchingPolicy()
    audience: str = ""  # whom it serves, in its emails' words
    description: str = ""  # what it is, as its welcome email introduces it
    # Interest from people whose institution is not onboarded is taken under the scheme's own tenancy.
    open_to_non_members: bool = False
    # Reverse mentoring: pairs record ideas for change, which its leads read without names.
    ideas_for_change: bool = False
    # Questions of its own for some roles' profiles (a sponsor: what she can open doors to).
    profile_questions: tuple[ProfileQuestion, ...] = ()
    version: int = 1

    @property
    def giver(self) -> str:
        """The role that gives this programme's support: mentor, sponsor or ally (mentor where none is offered)."""
        return giver_of(self.roles_offered)

    def offers(self, role: str) -> bool:
        """Whether the programme has this role."""
        return role in self.roles_offered

    def statements_for(self, roles: tuple[str, ...]) -> tuple[EligibilityStatement, ...]:
        """The statements someone registering in these roles confirms."""
        return tuple(s for s in self.eligibility if s.applies_to(roles))

    def questions_for(self, roles: tuple[str, ...]) -> tuple[ProfileQuestion, ...]:
        """The profile questions someone in these roles answers."""
        return tuple(q for q in self.profile_questions if any(role in q.roles for role in roles))


def define(programme: Programme) -> Programme:
    """Check a programme's settings hang together; return it with normalised values."""
    roles = ROLES_OF_KIND.get(programme.kind)
    if roles is None:
        raise RuleBroken("kind", "programme-kind", f"a programme's kind is one of: {', '.join(ROLES_OF_KIND)}")
    if not programme.roles_offered or any(r not in roles for r in programme.roles_offered):
        raise RuleBroken(
            "roles_offered", "roles", f"a {programme.kind} programme's roles are chosen from {', '.join(roles)}"
        )
    if len([r for r in programme.roles_offered if r in GIVING_ROLES]) > 1:
        raise RuleBroken(
            "roles_offered", "one-giving-role", "a pairs programme gives one kind of support: mentor, sponsor or ally"
        )
    _check_by_role(
        programme,
        "profile_questions",
        "profile question",
        [(q.question_id, q.roles) for q in programme.profile_questions],
    )
    scale = tuple(level.strip() for level in programme.seniority_scale)
    if not scale or len(set(scale)) != len(scale) or not all(scale):
        raise RuleBroken("seniority_scale", "distinct-levels", "the seniority scale needs distinct, non-empty levels")
    if not 1 <= programme.default_mentor_capacity <= programme.max_mentor_capacity:
        raise RuleBroken(
            "default_mentor_capacity", "capacity-range", "the default capacity must be between 1 and the maximum"
        )
    for name in ("term", "follow_up_after"):
        if not is_duration(getattr(programme, name)):
            raise RuleBroken(name, "iso-8601-duration", f"{name} must be an ISO 8601 duration such as P6M or PT30S")
    _check_by_role(
        programme, "eligibility", "eligibility statement", [(s.statement_id, s.roles) for s in programme.eligibility]
    )
    unknown = [f for f in programme.sensitive_fields if f not in DEMOGRAPHICS]
    if unknown:
        raise RuleBroken(
            "sensitive_fields", "demographics", f"sensitive fields are chosen from {', '.join(DEMOGRAPHICS)}"
        )
    sensitive = tuple(dict.fromkeys((*ALWAYS_SENSITIVE, *programme.sensitive_fields)))
    return Programme(**{**programme.__dict__, "seniority_scale": scale, "sensitive_fields": sensitive})


def _check_by_role(
    programme: Programme, field: str, noun: str, items: list[tuple[str, tuple[str, ...] | list[str]]]
) -> None:
    """Statements or questions, each for some roles: distinct ids, and only roles the programme offers."""
    ids = [item_id for item_id, _ in items]
    if len(set(ids)) != len(ids):
        raise RuleBroken(field, "distinct-ids", f"each {noun} needs its own id")
    for position, (_, roles) in enumerate(items):
        if any(role not in programme.roles_offered for role in roles):
            raise RuleBroken(
                f"{field}.{position}.roles", "roles-offered", f"each {noun} names only roles the programme offers"
            )


def announcement(programme: Programme, *, new: bool) -> ProgrammeOpened | ProgrammeUpdated:
    """The event that tells other services a programme's settings."""
    event_cls = ProgrammeOpened if new else ProgrammeUpdated
    announced = {name: getattr(programme, name) for name in event_cls.model_fields if hasattr(programme, name)}
    return event_cls(**{name: list(v) if isinstance(v, tuple) else v for name, v in announced.items()})
