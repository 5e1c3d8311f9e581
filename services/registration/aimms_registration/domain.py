"""Registration rules, free of I/O: who may express interest in which programme."""

from dataclasses import dataclass
from datetime import datetime

from aimms_shared.contracts.registration import InterestExpressed
from aimms_shared.errors import Conflict, NotFound


@dataclass(frozen=True)
class Institution:
    """A medical school onboarded to the platform."""

    institution_id: str
    name: str
    email_domains: tuple[str, ...]
    active: bool


@dataclass(frozen=True)
class Programme:
    """A mentoring programme (AIMMS Mentoring, a postgraduate or reverse-mentoring one…)."""

    programme_id: str
    name: str
    open_for_registration: bool


@dataclass(frozen=True)
class InterestSubmission:
    """What a portal sends when someone asks to join a programme (already well-formed)."""

    name: str
    email: str
    institution_id: str
    programme_id: str


@dataclass(frozen=True)
class Interest:
    """An expression of interest, the first step of the scheme's procedure."""

    interest_id: str
    name: str
    email: str
    institution_id: str
    programme_id: str
    expressed_at: datetime

    @property
    def email_key(self) -> str:
        """The address as compared for duplicates (addresses are case-insensitive in practice)."""
        return self.email.strip().lower()


class UnknownInstitution(NotFound):
    """The institution is not onboarded."""

    code = "unknown-institution"
    title = "Unknown institution"


class UnknownProgramme(NotFound):
    """The programme does not exist."""

    code = "unknown-programme"
    title = "Unknown programme"


class InstitutionSuspended(Conflict):
    """The institution is onboarded but currently suspended."""

    code = "institution-suspended"
    title = "Institution suspended"


class ProgrammeClosed(Conflict):
    """The programme is not open for registration."""

    code = "programme-closed"
    title = "Programme closed"


def express_interest(
    submission: InterestSubmission,
    institution: Institution | None,
    programme: Programme | None,
    *,
    interest_id: str,
    now: datetime,
) -> tuple[Interest, InterestExpressed]:
    """Accept an expression of interest, or say which rule refuses it."""
    if institution is None:
        raise UnknownInstitution(f"institution '{submission.institution_id}' is not onboarded")
    if not institution.active:
        raise InstitutionSuspended(f"institution '{institution.institution_id}' is suspended")
    if programme is None:
        raise UnknownProgramme(f"programme '{submission.programme_id}' does not exist")
    if not programme.open_for_registration:
        raise ProgrammeClosed(f"programme '{programme.programme_id}' is not open for registration")
    interest = Interest(
        interest_id=interest_id,
        name=submission.name.strip(),
        email=submission.email.strip(),
        institution_id=institution.institution_id,
        programme_id=programme.programme_id,
        expressed_at=now,
    )
    event = InterestExpressed(
        interest_id=interest.interest_id,
        name=interest.name,
        email=interest.email,
        institution_id=institution.institution_id,
        institution_name=institution.name,
        programme_id=programme.programme_id,
        programme_name=programme.name,
    )
    return interest, event
