"""Registration rules for expressions of interest, without I/O."""

from datetime import UTC, datetime

import pytest

from aimms_registration.domain import (
    Institution,
    InstitutionSuspended,
    InterestSubmission,
    Programme,
    ProgrammeClosed,
    UnknownInstitution,
    UnknownProgramme,
    express_interest,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
SCHOOL = Institution("demo-university", "Demo University Medical School", ("demo-university.ac.uk",), True)
AIMMS = Programme("aimms-mentoring", "AIMMS Mentoring", True)
SUBMISSION = InterestSubmission(
    "  Dr Amina Okafor ", " Amina@Demo-University.ac.uk ", "demo-university", "aimms-mentoring"
)


def test_an_eligible_person_is_recorded_and_owed_a_welcome() -> None:
    interest, event = express_interest(SUBMISSION, SCHOOL, AIMMS, interest_id="i-1", now=NOW)

    assert interest.name == "Dr Amina Okafor"
    assert interest.email_key == "amina@demo-university.ac.uk"
    assert event.interest_id == "i-1"
    assert event.programme_name == "AIMMS Mentoring"
    assert event.institution_name == "Demo University Medical School"


@pytest.mark.parametrize(
    ("institution", "programme", "error"),
    [
        (None, AIMMS, UnknownInstitution),
        (Institution("demo-university", "Demo", (), False), AIMMS, InstitutionSuspended),
        (SCHOOL, None, UnknownProgramme),
        (SCHOOL, Programme("aimms-mentoring", "AIMMS Mentoring", False), ProgrammeClosed),
    ],
)
def test_interest_is_refused_with_the_rule_that_refuses_it(institution, programme, error) -> None:
    with pytest.raises(error) as refused:
        express_interest(SUBMISSION, institution, programme, interest_id="i-1", now=NOW)
    assert refused.value.detail
