"""Expressions of interest: the first step of the scheme's procedure."""

from dataclasses import dataclass, replace
from datetime import datetime

from aimms_registration.domain.institutions import SCHEME, Institution, member_for_address
from aimms_registration.domain.programmes import Programme
from aimms_shared.contracts.registration import InterestExpressed, ParticipantContact, interest_contact_id
from aimms_shared.errors import Missing, StateConflict
from aimms_shared.events import Event
from aimms_shared.mapping import carried_over


@dataclass(frozen=True)
class InterestSubmission:
    """What a portal sends when someone asks to join a programme (already well-formed)."""

    name: str
    email: str
    institution_id: str
    programme_id: str
    declared_institution: str | None = None


@dataclass(frozen=True)
class Interest:
    """An expression of interest."""

    interest_id: str
    name: str
    email: str
    institution_id: str
    programme_id: str
    expressed_at: datetime
    declared_institution: str | None = None  # where she works, as she typed it (the scheme's own page)

    @property
    def email_key(self) -> str:
        """The address as compared for duplicates (addresses are case-insensitive in practice)."""
        return email_key(self.email)


def email_key(email: str) -> str:
    """An address as compared for duplicates."""
    return email.strip().lower()


def require_open(institution: Institution | None, programme: Programme | None, submitted: tuple[str, str]) -> None:
    """Registration and interest both need an active institution and an open programme."""
    institution_id, programme_id = submitted
    if institution is None:
        raise Missing("institution_id", "onboarded-institution", f"institution '{institution_id}' is not onboarded")
    if not institution.active:
        raise StateConflict("institution_id", "active-institution", f"institution '{institution_id}' is suspended")
    if programme is None:
        raise Missing("programme_id", "existing-programme", f"programme '{programme_id}' does not exist")
    if not programme.open_for_registration:
        raise StateConflict(
            "programme_id", "open-programme", f"programme '{programme_id}' is not open for registration"
        )


def express_interest(
    submission: InterestSubmission,
    institution: Institution | None,
    programme: Programme | None,
    *,
    interest_id: str,
    now: datetime,
) -> tuple[Interest, list[Event]]:
    """Accept an expression of interest, or say which rule refuses it."""
    require_open(institution, programme, (submission.institution_id, submission.programme_id))
    assert institution is not None and programme is not None  # checked above
    interest = Interest(
        interest_id=interest_id,
        name=submission.name.strip(),
        email=submission.email.strip(),
        institution_id=institution.institution_id,
        programme_id=programme.programme_id,
        expressed_at=now,
        declared_institution=submission.declared_institution,
    )
    expressed = carried_over(
        InterestExpressed,
        interest,
        institution_name=institution.name,
        programme_name=programme.name,
        registration_url=institution.registration_url,
    )
    # Her name and address go on the compacted contacts topic only, where her erasure's tombstone reaches.
    contact = carried_over(ParticipantContact, interest, participant_id=interest_contact_id(interest_id))
    return interest, [expressed, contact]


def from_the_schemes_page(
    submission: InterestSubmission, institutions: list[Institution], programme: Programme | None
) -> InterestSubmission:
    """Interest from the scheme's own page: hers goes to her member institution when her address is at one
    (its portal then sees her), otherwise to the scheme's own tenancy, if the programme takes non-members."""
    if programme is None:
        raise Missing("programme_id", "existing-programme", f"programme '{submission.programme_id}' does not exist")
    if not programme.open_to_non_members:
        raise StateConflict(
            "programme_id",
            "open-to-non-members",
            f"'{programme.name}' takes interest through member institutions' portals only",
        )
    member = member_for_address(submission.email, institutions)
    return replace(submission, institution_id=member.institution_id if member else SCHEME)
