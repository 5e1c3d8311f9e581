"""Matching's rules outside the engine, free of I/O: who is a mentor or mentee, and valid choices."""

from dataclasses import dataclass

from aimms_shared.errors import RuleBroken

MAX_CHOICES = 3


@dataclass(frozen=True)
class ProgrammeRules:
    """What matching needs of a programme (from ProgrammeOpened / ProgrammeUpdated)."""

    programme_id: str
    seniority_scale: tuple[str, ...]
    mentor_more_senior: bool
    default_mentor_capacity: int
    max_mentor_capacity: int
    term: str
    follow_up_after: str

    def rank(self, seniority: str) -> int:
        """A level's position on the scale (0 = most junior); unknown levels count as most junior."""
        return self.seniority_scale.index(seniority) if seniority in self.seniority_scale else 0

    def may_mentor(self, mentor: "Member", mentee: "Member") -> bool:
        """Seniority in the programme's direction: mentor more senior (inverted for reverse mentoring)."""
        gap = self.rank(mentor.seniority) - self.rank(mentee.seniority)
        return (gap if self.mentor_more_senior else -gap) >= 1


@dataclass(frozen=True)
class Member:
    """A participant as matching knows her (from registration's events; no contact details)."""

    participant_id: str
    programme_id: str
    institution_id: str
    roles: tuple[str, ...]
    job_title: str
    seniority: str
    pathway: str
    research_interests: tuple[str, ...]
    offers: str | None
    mentor_capacity: int | None
    profile_published: bool
    background_matching: bool
    active: bool = True

    @property
    def is_published_mentor(self) -> bool:
        """Mentees may choose her."""
        return self.active and "mentor" in self.roles and self.profile_published

    @property
    def is_mentee(self) -> bool:
        """She may name choices."""
        return self.active and "mentee" in self.roles


def check_choices(
    mentee: Member, choices: list[str], mentors: dict[str, Member], programme: ProgrammeRules
) -> tuple[str, ...]:
    """Her ranked choices, or the rule the first bad one breaks."""
    if not mentee.is_mentee:
        raise RuleBroken("participant_id", "active-mentee", "only an active mentee names mentor choices")
    if len(choices) > MAX_CHOICES:
        raise RuleBroken("choices", "at-most-three", f"name at most {MAX_CHOICES} mentors")
    if len(set(choices)) != len(choices):
        raise RuleBroken("choices", "distinct-choices", "each mentor may be named once")
    for position, mentor_id in enumerate(choices):
        field = f"choices.{position}"
        mentor = mentors.get(mentor_id)
        if mentor_id == mentee.participant_id:
            raise RuleBroken(field, "not-self", "she cannot choose herself")
        if mentor is None or not mentor.is_published_mentor or mentor.programme_id != mentee.programme_id:
            raise RuleBroken(field, "published-mentor", f"'{mentor_id}' is not a published mentor of the programme")
        if not programme.may_mentor(mentor, mentee):
            raise RuleBroken(field, "eligible-seniority", f"'{mentor_id}' cannot mentor her at this seniority")
    return tuple(choices)
