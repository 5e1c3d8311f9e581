"""Realistic example events for tests."""

from typing import Any

from aimms_shared.contracts.registration import InterestExpressed


def interest_expressed(**overrides: Any) -> InterestExpressed:
    """An InterestExpressed as registration raises it; override any field."""
    fields = {
        "interest_id": "i-1",
        "name": "Dr Amina Okafor",
        "email": "amina@demo-university.ac.uk",
        "institution_id": "demo-university",
        "institution_name": "Demo University Medical School",
        "programme_id": "aimms-mentoring",
        "programme_name": "AIMMS Mentoring",
        "registration_url": "https://portal.demo-university.ac.uk/aimms",
    }
    return InterestExpressed(**(fields | overrides))
