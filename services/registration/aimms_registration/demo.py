"""Demo data: an institution and a programme to try the platform with.

Run `python -m aimms_registration.demo` (settings from REGISTRATION_* variables). Idempotent.
"""

import asyncio

from pymongo import AsyncMongoClient

from aimms_registration.domain import Institution, Programme
from aimms_registration.settings import RegistrationSettings
from aimms_registration.store import RegistrationStore

DEMO_INSTITUTIONS = (
    Institution("demo-university", "Demo University Medical School", ("demo-university.ac.uk",), True),
    Institution("northgate", "Northgate School of Medicine", ("northgate.ac.uk",), True),
)
DEMO_PROGRAMMES = (Programme("aimms-mentoring", "AIMMS Mentoring", True),)


async def seed(settings: RegistrationSettings) -> None:
    """Create (or refresh) the demo institutions and programme."""
    client: AsyncMongoClient = AsyncMongoClient(settings.mongodb_uri, tz_aware=True)
    try:
        store = RegistrationStore(client[settings.mongodb_database])
        await store.ensure_indexes()
        for institution in DEMO_INSTITUTIONS:
            await store.save_institution(institution)
        for programme in DEMO_PROGRAMMES:
            await store.save_programme(programme)
    finally:
        await client.close()


def main() -> None:
    """Seed from the environment's settings and say what was created."""
    asyncio.run(seed(RegistrationSettings()))
    for institution in DEMO_INSTITUTIONS:
        print(f"institution  {institution.institution_id:<20} {institution.name}")
    for programme in DEMO_PROGRAMMES:
        print(f"programme    {programme.programme_id:<20} {programme.name}")


if __name__ == "__main__":
    main()
