"""The registration store: the only code that talks to registration's database."""

from dataclasses import asdict

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_registration.domain import Institution, Interest, Programme
from aimms_shared.outbox import OutboxEntry, outbox_fields

INTERESTS = "interests"


class RegistrationStore:
    """Institutions, programmes and expressions of interest."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._institutions = db["institutions"]
        self._programmes = db["programmes"]
        self._interests = db[INTERESTS]

    async def ensure_indexes(self) -> None:
        """One expression of interest per address and programme."""
        await self._interests.create_index([("programme_id", ASCENDING), ("email_key", ASCENDING)], unique=True)

    async def institution(self, institution_id: str) -> Institution | None:
        """An onboarded institution by id."""
        doc = await self._institutions.find_one({"_id": institution_id})
        return _institution(doc) if doc else None

    async def institutions(self) -> list[Institution]:
        """Every onboarded institution, by name."""
        return [_institution(d) async for d in self._institutions.find().sort("name", ASCENDING)]

    async def save_institution(self, institution: Institution) -> None:
        """Create or replace an institution."""
        doc = asdict(institution) | {"email_domains": list(institution.email_domains)}
        doc["_id"] = doc.pop("institution_id")
        await self._institutions.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def programme(self, programme_id: str) -> Programme | None:
        """A programme by id."""
        doc = await self._programmes.find_one({"_id": programme_id})
        return _programme(doc) if doc else None

    async def programmes(self) -> list[Programme]:
        """Every programme, by name."""
        return [_programme(d) async for d in self._programmes.find().sort("name", ASCENDING)]

    async def save_programme(self, programme: Programme) -> None:
        """Create or replace a programme."""
        doc = asdict(programme)
        doc["_id"] = doc.pop("programme_id")
        await self._programmes.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def add_interest(self, interest: Interest, events: list[OutboxEntry]) -> tuple[str, bool]:
        """Store an interest with its events in one write; return (id, created).

        A second expression of interest from the same address for the same programme returns
        the first one's id and raises nothing new, so she is welcomed once.
        """
        doc = asdict(interest) | {"_id": interest.interest_id, "email_key": interest.email_key, "version": 1}
        del doc["interest_id"]
        try:
            await self._interests.insert_one(doc | outbox_fields(events))
        except DuplicateKeyError:
            existing = await self._interests.find_one(
                {"programme_id": interest.programme_id, "email_key": interest.email_key}, {"_id": 1}
            )
            if existing is None:  # the duplicate was on _id itself: ids are random, so this is a bug
                raise
            return existing["_id"], False
        return interest.interest_id, True


def _institution(doc: dict) -> Institution:
    return Institution(
        institution_id=doc["_id"],
        name=doc["name"],
        email_domains=tuple(doc.get("email_domains", ())),
        active=doc.get("active", True),
    )


def _programme(doc: dict) -> Programme:
    return Programme(
        programme_id=doc["_id"], name=doc["name"], open_for_registration=doc.get("open_for_registration", False)
    )
