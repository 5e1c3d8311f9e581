"""The matching store: the only code that talks to matching's database.

Participants and programmes here are a read model built from registration's events; matching
never reads registration's database.
"""

from dataclasses import asdict
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from aimms_matching.domain import Member, ProgrammeRules
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import OutboxEntry, outbox_push

PREFERENCES = "preferences"
OUTBOX_COLLECTIONS = (PREFERENCES,)


class MatchingStore:
    """Programmes, members and mentees' preferences."""

    def __init__(self, db: AsyncDatabase) -> None:
        self._programmes = db["programmes"]
        self._members = db["members"]
        self._preferences = db[PREFERENCES]

    async def ensure_indexes(self) -> None:
        """What the directory and rounds look up."""
        await self._members.create_index([("programme_id", ASCENDING)])
        await self._preferences.create_index([("programme_id", ASCENDING)])

    async def save_programme(self, programme: ProgrammeRules) -> None:
        """Create or replace a programme's rules."""
        doc = asdict(programme) | {"seniority_scale": list(programme.seniority_scale)}
        doc["_id"] = doc.pop("programme_id")
        await self._programmes.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def programme(self, programme_id: str) -> ProgrammeRules | None:
        """A programme's rules."""
        doc = await self._programmes.find_one({"_id": programme_id})
        if doc is None:
            return None
        fields = {k: v for k, v in doc.items() if k != "_id"}
        return ProgrammeRules(**fields | {"programme_id": doc["_id"], "seniority_scale": tuple(doc["seniority_scale"])})

    async def save_member(self, member: Member) -> None:
        """Create or replace a member."""
        doc = asdict(member) | {"roles": list(member.roles), "research_interests": list(member.research_interests)}
        doc["_id"] = doc.pop("participant_id")
        await self._members.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def member(self, participant_id: str) -> Member | None:
        """A member by participant id."""
        doc = await self._members.find_one({"_id": participant_id})
        return _member(doc) if doc else None

    async def set_capacity(self, participant_id: str, capacity: int) -> None:
        """A mentor's new capacity."""
        await self._members.update_one({"_id": participant_id}, {"$set": {"mentor_capacity": capacity}})

    async def deactivate(self, participant_id: str) -> None:
        """Withdrawn: no longer offered or matched; her choices are dropped."""
        await self._members.update_one({"_id": participant_id}, {"$set": {"active": False}})
        await self._preferences.delete_one({"_id": participant_id})

    async def forget(self, participant_id: str) -> None:
        """Erased: nothing of her remains here."""
        await self._members.delete_one({"_id": participant_id})
        await self._preferences.delete_one({"_id": participant_id})

    async def published_mentors(self, programme_id: str) -> list[Member]:
        """Active mentors of a programme who published their profile."""
        query = {"programme_id": programme_id, "roles": "mentor", "profile_published": True, "active": True}
        return [_member(d) async for d in self._members.find(query).sort("_id", ASCENDING)]

    async def save_preferences(self, mentee: Member, choices: tuple[str, ...], events: list[OutboxEntry]) -> None:
        """Her choices, replacing earlier ones, with MentorPreferencesSubmitted in the same write."""
        update = outbox_push(events)
        update["$set"] |= {
            "programme_id": mentee.programme_id,
            "institution_id": mentee.institution_id,
            "choices": list(choices),
            "submitted_at": utcnow(),
        }
        await self._preferences.update_one({"_id": mentee.participant_id}, update, upsert=True)

    async def preferences(self, mentee_id: str) -> dict[str, Any] | None:
        """Her current choices."""
        return await self._preferences.find_one({"_id": mentee_id}, {"outbox": 0, "outbox_due": 0})


def _member(doc: dict[str, Any]) -> Member:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    return Member(
        **fields
        | {
            "participant_id": doc["_id"],
            "roles": tuple(doc["roles"]),
            "research_interests": tuple(doc["research_interests"]),
        }
    )
