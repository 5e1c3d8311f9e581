"""Demo data: institutions, programmes and a portal credential to try the platform with.

Run `python -m aimms_registration.demo` (settings from REGISTRATION_* variables). Idempotent: what
exists is left alone, except that the demo portal's secret is rotated so it can be printed.
"""

import asyncio
from dataclasses import dataclass

from pymongo import AsyncMongoClient

from aimms_registration import use_cases
from aimms_registration.domain.programmes import EligibilityStatement, Programme
from aimms_registration.settings import RegistrationSettings
from aimms_registration.store import RegistrationStore

DEMO_INSTITUTIONS = (
    ("demo-university", "Demo University Medical School", ["demo-university.ac.uk"]),
    ("northgate", "Northgate School of Medicine", ["northgate.ac.uk"]),
    ("riverside", "Riverside Medical School", ["riverside.ac.uk"]),
)
SENIORITY = (
    "PhD student",
    "Postdoctoral researcher",
    "Lecturer",
    "Senior lecturer",
    "Associate professor",
    "Professor",
)
DEMO_PROGRAMMES = (
    Programme(
        programme_id="aimms-mentoring",
        name="AIMMS Mentoring",
        eligibility=(
            EligibilityStatement("woman", "I am a woman."),
            EligibilityStatement("ethnic-minority", "I am from a Black, Asian or other ethnic minority background."),
            EligibilityStatement("academic-medicine", "I work in academic medicine or health sciences in the UK."),
        ),
        roles_offered=("mentor", "mentee"),
        seniority_scale=SENIORITY,
        default_mentor_capacity=1,
        max_mentor_capacity=3,
        sensitive_fields=("ethnicity", "age_band"),
        audience="women from Black, Asian and other ethnic minority backgrounds working in academic medicine "
        "and health sciences",
        description="AIMMS Mentoring pairs women from Black, Asian and other ethnic minority backgrounds working "
        "in academic medicine with mentors at other medical schools across the UK. You can join as a mentee, as a "
        "mentor, or as both, and meetings are virtual.",
    ),
    Programme(
        programme_id="reverse-mentoring",
        name="Reverse Mentoring",
        # Students mentor senior staff: each role confirms its own statements.
        eligibility=(
            EligibilityStatement(
                "under-represented-student",
                "I am a student from a background under-represented in medicine.",
                ("mentor",),
            ),
            EligibilityStatement(
                "senior-staff", "I hold a senior academic or leadership role at a medical school.", ("mentee",)
            ),
        ),
        roles_offered=("mentor", "mentee"),
        seniority_scale=("Student", "Lecturer", "Professor", "Dean"),
        mentor_more_senior=False,
        term="P4M",
        audience="students from backgrounds under-represented in medicine and the senior staff they mentor",
        description="Reverse Mentoring pairs students from backgrounds under-represented in medicine, as mentors, "
        "with senior staff of the medical school, who learn from their experience and ideas for change.",
    ),
)


@dataclass(frozen=True)
class DemoPortal:
    """The demo institution's portal credential."""

    client_id: str
    client_secret: str


async def seed(settings: RegistrationSettings) -> DemoPortal:
    """Create what is missing of the demo data; return a fresh secret for the demo portal."""
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    cipher = settings.field_cipher()
    try:
        store = RegistrationStore(client[settings.mongodb_database], cipher)
        await store.ensure_indexes()
        for institution_id, name, domains in DEMO_INSTITUTIONS:
            if await store.institution(institution_id) is None:
                await use_cases.onboard_institution(
                    store,
                    institution_id=institution_id,
                    name=name,
                    email_domains=domains,
                    contact_email=f"mentoring@{domains[0]}",
                    registration_url=f"https://portal.{domains[0]}/aimms",
                )
        for programme in DEMO_PROGRAMMES:
            if await store.programme(programme.programme_id) is None:
                await use_cases.create_programme(store, programme)
        [portal, *_] = await store.credentials_of(DEMO_INSTITUTIONS[0][0])
        _, secret = await use_cases.rotate_credential(store, portal.client_id)
        return DemoPortal(portal.client_id, secret)
    finally:
        await client.close()


def main() -> None:
    """Seed from the environment's settings and say what was created."""
    portal = asyncio.run(seed(RegistrationSettings()))
    for institution_id, name, _ in DEMO_INSTITUTIONS:
        print(f"institution  {institution_id:<18} {name}")
    for programme in DEMO_PROGRAMMES:
        print(f"programme    {programme.programme_id:<18} {programme.name}")
    print(f"portal       client_id={portal.client_id} client_secret={portal.client_secret}")


if __name__ == "__main__":
    main()
