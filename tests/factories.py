"""Realistic example events, records and settings for tests."""

from typing import Any

from aimms_matching.domain.rules import Member
from aimms_notifications.settings import NotificationsSettings
from aimms_registration.domain import programmes
from aimms_registration.domain.programmes import EligibilityStatement, Programme
from aimms_shared.contracts.registration import (
    InterestExpressed,
    ParticipantContact,
    ProgrammeOpened,
    interest_contact_id,
)
from aimms_shared.events import Event


def aimms_programme() -> Programme:
    """The AIMMS scheme's programme as registration defines it: women, mentors and mentees, three places at most."""
    return programmes.define(
        Programme(
            programme_id="aimms-mentoring",
            name="AIMMS Mentoring",
            eligibility=(EligibilityStatement("woman", "I am a woman."),),
            roles_offered=("mentor", "mentee"),
            seniority_scale=("Lecturer", "Senior lecturer", "Professor"),
            max_mentor_capacity=3,
            sensitive_fields=("age_band",),
        )
    )


def interest_expressed(**overrides: Any) -> InterestExpressed:
    """An InterestExpressed as registration raises it; override any field."""
    fields = {
        "interest_id": "i-1",
        "institution_id": "demo-university",
        "institution_name": "Demo University Medical School",
        "programme_id": "aimms-mentoring",
        "programme_name": "AIMMS Mentoring",
        "registration_url": "https://portal.demo-university.ac.uk/aimms",
    }
    return InterestExpressed(**(fields | overrides))


def interest_events(
    name: str = "Dr Amina Okafor", email: str = "amina@demo-university.ac.uk", **overrides: Any
) -> list[Event]:
    """Both events registration raises for an expression of interest: InterestExpressed, and her name and
    address as a contact on the compacted contacts topic."""
    expressed = interest_expressed(**overrides)
    contact = ParticipantContact(
        participant_id=interest_contact_id(expressed.interest_id),
        programme_id=expressed.programme_id,
        institution_id=expressed.institution_id,
        name=name,
        email=email,
    )
    return [expressed, contact]


def programme_opened(**overrides: Any) -> ProgrammeOpened:
    """A ProgrammeOpened for AIMMS Mentoring as registration announces it; override any field."""
    fields = {
        "programme_id": "aimms-mentoring",
        "name": "AIMMS Mentoring",
        "roles_offered": ["mentor", "mentee"],
        "default_mentor_capacity": 1,
        "max_mentor_capacity": 3,
        "seniority_scale": ["Lecturer", "Professor"],
        "mentor_more_senior": True,
        "term": "P6M",
        "follow_up_after": "P6M",
        "open_for_registration": True,
    }
    return ProgrammeOpened(**(fields | overrides))


def matching_member(**overrides: Any) -> Member:
    """A mentee of AIMMS as matching knows her from registration's events; override any field."""
    fields = {
        "participant_id": "p-1",
        "programme_id": "aimms",
        "institution_id": "north",
        "roles": ("mentee",),
        "job_title": "Lecturer",
        "seniority": "Lecturer",
        "pathway": "clinical",
        "research_interests": ("stroke",),
        "offers": None,
        "mentor_capacity": None,
        "profile_published": False,
        "background_matching": False,
    }
    return Member(**(fields | overrides))


def notifications_settings(sender: str = "AIMMS <mentoring@aimms.test>") -> NotificationsSettings:
    """Notifications' settings for tests that start no broker, store or mail server."""
    return NotificationsSettings(
        kafka_bootstrap_servers="k:9092",
        mongodb_uri="mongodb://m/",
        smtp_host="smtp",
        sender=sender,
        link_signing_key="k" * 32,
        public_url="https://aimms.example/notifications",
    )
