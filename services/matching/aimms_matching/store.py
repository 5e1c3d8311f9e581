"""The matching store: the only code that talks to matching's database.

Participants and programmes here are a read model built from registration's events; matching
never reads registration's database. Places are held by conditional single-document updates
(FerretDB has no multi-document transactions): a mentee holds at most one open pair, and a
mentor's load never passes her capacity, however many requests race for the last place.
"""

from dataclasses import asdict, replace
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_matching.domain.concerns import Concern
from aimms_matching.domain.ideas import Idea
from aimms_matching.domain.mentoring_circles import CircleMember, MentoringCircle
from aimms_matching.domain.pairs import OPEN_STATES, Explanation, Meeting, Pair, Timing
from aimms_matching.domain.rules import Member, ProgrammeRules
from aimms_shared.contracts.registration import GIVING_ROLES, MatchingPolicy
from aimms_shared.mongo import as_utc, claim_due, from_document, utcnow
from aimms_shared.outbox import Outbox, OutboxEntry

PREFERENCES = "preferences"
PAIRS = "pairs"
CONCERNS = "concerns"
UNPLACED = "unplaced"
CIRCLES = "circles"
OUTBOX_COLLECTIONS = (PREFERENCES, PAIRS, CONCERNS, UNPLACED, CIRCLES)
DUE = "due"
# Profile fields registration's events set; places held and lifecycle flags are matching's own.
_PROFILE_FIELDS = (
    "programme_id",
    "institution_id",
    "roles",
    "seniority",
    "pathway",
    "research_interests",
    "mentor_capacity",
    "profile_published",
    "background_matching",
    "background_token",
)
# Her profile's free text, from its own record on the contacts topic.
_TEXT_FIELDS = ("job_title", "offers", "answers")


class MatchingStore:
    """Programmes, members, mentees' preferences, pairs and rounds."""

    def __init__(self, db: AsyncDatabase, outbox: Outbox | None = None) -> None:
        self._outbox = outbox or Outbox()
        self._programmes = db["programmes"]
        self._members = db["members"]
        self._preferences = db[PREFERENCES]
        self._pairs = db[PAIRS]
        self._rounds = db["rounds"]
        self._erased = db["erased"]
        self._concerns = db[CONCERNS]
        self._unplaced = db[UNPLACED]
        self._ideas = db["ideas"]
        self._circles = db[CIRCLES]

    async def ensure_indexes(self) -> None:
        """What the directory, rounds and the scheduler look up."""
        await self._members.create_index([("programme_id", ASCENDING)])
        await self._preferences.create_index([("programme_id", ASCENDING)])
        for name in ("programme_id", "mentee_id", "mentor_id", DUE):
            await self._pairs.create_index([(name, ASCENDING)])
        await self._rounds.create_index([("programme_id", ASCENDING)])
        await self._concerns.create_index([("programme_id", ASCENDING), ("raised_at", DESCENDING)])
        await self._ideas.create_index([("programme_id", ASCENDING)])
        for name in ("programme_id", "member_ids", DUE):
            await self._circles.create_index([(name, ASCENDING)])

    # -- programmes

    async def save_programme(self, programme: ProgrammeRules) -> None:
        """Create or replace a programme's rules."""
        doc = asdict(programme) | {
            "seniority_scale": list(programme.seniority_scale),
            "matching": programme.matching.model_dump(),
        }
        doc["_id"] = doc.pop("programme_id")
        await self._programmes.update_one({"_id": doc["_id"]}, {"$set": doc}, upsert=True)

    async def programme(self, programme_id: str) -> ProgrammeRules | None:
        """A programme's rules."""
        doc = await self._programmes.find_one({"_id": programme_id})
        if doc is None:
            return None
        matching = MatchingPolicy.model_validate(doc.get("matching", {}))
        return from_document(ProgrammeRules, doc, "programme_id", matching=matching)

    async def mark_rounds_begun(self, programme_id: str, at: datetime) -> None:
        """From the first round on, newcomers and declined mentees are matched one by one."""
        first = {"_id": programme_id, "rounds_begun_at": {"$exists": False}}
        await self._programmes.update_one(first, {"$set": {"rounds_begun_at": at}})

    async def rounds_begun_at(self, programme_id: str) -> datetime | None:
        """When the programme's first cohort round began (None: none has)."""
        doc = await self._programmes.find_one({"_id": programme_id}, {"rounds_begun_at": 1})
        return as_utc(doc["rounds_begun_at"]) if doc and doc.get("rounds_begun_at") else None

    # -- members

    async def save_member(self, member: Member) -> None:
        """Create a member or update her profile, keeping the places she holds."""
        profile = {name: getattr(member, name) for name in _PROFILE_FIELDS}
        profile |= {"roles": list(member.roles), "research_interests": list(member.research_interests)}
        await self._members.update_one({"_id": member.participant_id}, {"$set": profile}, upsert=True)
        # Her lifecycle starts with her first profile, even where her free text (on another topic) came first.
        await self._members.update_one(
            {"_id": member.participant_id, "active": {"$exists": False}},
            {"$set": {"active": True, "joined_at": member.joined_at, "open_pair": None, "load": 0}},
        )

    async def save_member_text(self, text: dict[str, Any]) -> None:
        """Keep her profile's free text, before or after the rest of her profile arrives (never once she
        is erased: a record still on its way finds her gone)."""
        if await self._erased.find_one({"_id": text["participant_id"]}) is not None:
            return
        fields = {name: text[name] for name in _TEXT_FIELDS}
        await self._members.update_one({"_id": text["participant_id"]}, {"$set": fields}, upsert=True)

    async def member(self, participant_id: str) -> Member | None:
        """A member by participant id (not yet one while only her free text has arrived)."""
        doc = await self._members.find_one({"_id": participant_id, "programme_id": {"$exists": True}})
        return _member(doc) if doc else None

    async def members(self, programme_id: str) -> list[Member]:
        """Every active member of a programme."""
        query = {"programme_id": programme_id, "active": True}
        return [_member(d) async for d in self._members.find(query).sort("_id", ASCENDING)]

    async def joined_times(self, programme_id: str) -> dict[str, datetime]:
        """When each member (withdrawn ones too) joined the programme, for time to match."""
        cursor = self._members.find({"programme_id": programme_id, "joined_at": {"$ne": None}}, {"joined_at": 1})
        return {d["_id"]: as_utc(d["joined_at"]) async for d in cursor}

    async def set_capacity(self, participant_id: str, capacity: int) -> None:
        """A mentor's new capacity (places already held stay held)."""
        await self._members.update_one({"_id": participant_id}, {"$set": {"mentor_capacity": capacity}})

    async def deactivate(self, participant_id: str) -> None:
        """Withdrawn: no longer offered or matched; her choices are dropped."""
        await self._members.update_one({"_id": participant_id}, {"$set": {"active": False}})
        await self._preferences.delete_one({"_id": participant_id})

    async def forget(self, participant_id: str) -> None:
        """Erased: nothing of her remains here but her opaque id, kept to answer that she is gone;
        pairs keep the other side's history without her id."""
        await self._erased.update_one({"_id": participant_id}, {"$set": {"_id": participant_id}}, upsert=True)
        await self._members.delete_one({"_id": participant_id})
        await self._preferences.delete_one({"_id": participant_id})
        await self._unplaced.delete_many({"mentee_id": participant_id})
        for side in ("mentee_id", "mentor_id"):
            # The meetings' notes are the pair's own: none outlives either of them.
            async for doc in self._pairs.find({side: participant_id}, {"meetings": 1}):
                meetings = [m | {"notes": None} for m in doc.get("meetings", ())]
                await self._pairs.update_one({"_id": doc["_id"]}, {"$set": {"meetings": meetings}})
            await self._pairs.update_many({side: participant_id}, {"$set": {side: "erased"}})
        # What she wrote in a concern is hers: erased with her (the coordinators' note of the outcome stays).
        await self._concerns.update_many(
            {"participant_id": participant_id}, {"$set": {"participant_id": "erased", "text": "(erased)"}}
        )

    async def was_erased(self, participant_id: str) -> bool:
        """Whether she was erased (so an unknown id is gone, not yet to come)."""
        return await self._erased.find_one({"_id": participant_id}) is not None

    async def published_mentors(self, programme_id: str) -> list[Member]:
        """Active mentors (or sponsors, or allies: the programme's givers) who published their profile."""
        query = {
            "programme_id": programme_id,
            "roles": {"$in": list(GIVING_ROLES)},
            "profile_published": True,
            "active": True,
        }
        return [_member(d) async for d in self._members.find(query).sort("_id", ASCENDING)]

    async def mark_done(self, mentee_id: str) -> None:
        """Her partnership ran its course: rounds leave her out."""
        await self._members.update_one({"_id": mentee_id}, {"$set": {"done": True}})

    # -- places

    async def hold_places(self, pair: Pair) -> bool:
        """Hold the mentee and one of the mentor's places for `pair`; False if either is taken.

        Idempotent per pair, so recovering a pair whose holder crashed half-way is safe.
        """
        mentee = await self._members.update_one(
            {"_id": pair.mentee_id, "active": True, "open_pair": {"$in": [None, pair.pair_id]}},
            {"$set": {"open_pair": pair.pair_id}},
        )
        if mentee.matched_count == 0:
            return False
        if await self._members.find_one({"_id": pair.mentor_id, "held": pair.pair_id}, {"_id": 1}):
            return True
        mentor = await self._members.find_one({"_id": pair.mentor_id, "active": True})
        capacity = (mentor or {}).get("mentor_capacity") or 0
        taken = await self._members.update_one(
            {
                "_id": pair.mentor_id,
                "active": True,
                "mentor_capacity": capacity,
                "load": {"$lt": capacity},
                "held": {"$ne": pair.pair_id},
            },
            {"$push": {"held": pair.pair_id}, "$inc": {"load": 1}},
        )
        if taken.matched_count == 0:
            await self._release_mentee(pair)
            return False
        return True

    async def release_places(self, pair: Pair) -> None:
        """Give back what `pair` held (idempotent)."""
        await self._release_mentee(pair)
        await self._members.update_one(
            {"_id": pair.mentor_id, "held": pair.pair_id}, {"$pull": {"held": pair.pair_id}, "$inc": {"load": -1}}
        )

    async def _release_mentee(self, pair: Pair) -> None:
        await self._members.update_one(
            {"_id": pair.mentee_id, "open_pair": pair.pair_id}, {"$set": {"open_pair": None}}
        )

    # -- preferences

    async def save_preferences(self, mentee: Member, choices: tuple[str, ...], events: list[OutboxEntry]) -> None:
        """Her choices, replacing earlier ones, with MentorPreferencesSubmitted in the same write."""
        update = self._outbox.push(events)
        update["$set"] |= {
            "programme_id": mentee.programme_id,
            "institution_id": mentee.institution_id,
            "choices": list(choices),
            "submitted_at": utcnow(),
        }
        await self._outbox.update(self._preferences, {"_id": mentee.participant_id}, update, upsert=True)

    async def preferences(self, mentee_id: str) -> dict[str, Any] | None:
        """Her current choices."""
        return await self._preferences.find_one({"_id": mentee_id}, {"outbox": 0, "outbox_due": 0})

    async def choices_of(self, programme_id: str) -> dict[str, tuple[str, ...]]:
        """Every mentee's choices in a programme."""
        cursor = self._preferences.find({"programme_id": programme_id}, {"choices": 1})
        return {d["_id"]: tuple(d.get("choices", ())) async for d in cursor}

    # -- pairs

    async def insert_pair(self, pair: Pair, recover_after: timedelta) -> None:
        """A new pair, held: if its holder dies before proposing it, the scheduler finishes or undoes it."""
        await self._pairs.insert_one(_pair_doc(pair) | {DUE: utcnow() + recover_after})

    async def delete_pair(self, pair_id: str) -> None:
        """A held pair that could not get its places."""
        await self._pairs.delete_one({"_id": pair_id, "state": "held"})

    async def save_pair(self, pair: Pair, expected_version: int, events: list[OutboxEntry]) -> Pair:
        """Store a changed pair and its events, if nobody changed it meanwhile; schedule its next step."""
        doc = _pair_doc(pair) | {DUE: pair.next_due()}
        await self._outbox.save(self._pairs, doc, expected_version=expected_version, events=events)
        return replace(pair, version=expected_version + 1)

    async def pair(self, pair_id: str) -> Pair | None:
        """A pair by id."""
        doc = await self._pairs.find_one({"_id": pair_id}, {"outbox": 0})
        return _pair(doc) if doc else None

    async def pairs(
        self,
        *,
        programme_id: str | None = None,
        states: tuple[str, ...] = (),
        institution_id: str | None = None,
        participant_id: str | None = None,
        limit: int = 500,
    ) -> list[Pair]:
        """Pairs by programme, state, either side's institution or participant; newest first."""
        query: dict[str, Any] = {}
        if programme_id:
            query["programme_id"] = programme_id
        if states:
            query["state"] = {"$in": list(states)}
        either: list[dict[str, Any]] = []
        if institution_id:
            either += [{"mentee_institution_id": institution_id}, {"mentor_institution_id": institution_id}]
        if participant_id:
            either += [{"mentee_id": participant_id}, {"mentor_id": participant_id}]
        if either:
            query["$or"] = either
        cursor = self._pairs.find(query, {"outbox": 0}).sort("created_at", DESCENDING).limit(limit)
        return [_pair(d) async for d in cursor]

    async def open_pairs_of(self, participant_id: str) -> list[Pair]:
        """Her proposals and partnerships in progress, on either side."""
        return await self.pairs(participant_id=participant_id, states=OPEN_STATES)

    async def exclusions(self, programme_id: str, mentee_id: str | None = None) -> set[tuple[str, str]]:
        """(mentee, mentor) pairs never to propose again (Pair.excludes_pair): declined, ended in the trial or by
        coordinators (hers only, if named)."""
        ended = {"end_reason": {"$in": ["trial", "coordinators"]}}
        query: dict[str, Any] = {"programme_id": programme_id, "$or": [{"state": "declined"}, ended]}
        if mentee_id is not None:
            query["mentee_id"] = mentee_id
        cursor = self._pairs.find(query, {"mentee_id": 1, "mentor_id": 1})
        return {(d["mentee_id"], d["mentor_id"]) async for d in cursor}

    async def claim_due_pairs(self, lease: timedelta, limit: int) -> list[Pair]:
        """Pairs whose next step is due, each leased to this worker."""
        return [_pair(d) for d in await claim_due(self._pairs, DUE, lease, limit)]

    # -- rounds

    async def mark_unplaced(self, mentee_id: str, wait: str, events: list[OutboxEntry]) -> bool:
        """Record that this wait of hers found no place, with the coordinators' alert; False when it was
        already recorded (one alert per wait, however often she is tried)."""
        try:
            await self._outbox.insert(self._unplaced, {"_id": f"{mentee_id}:{wait}", "mentee_id": mentee_id}, events)
        except DuplicateKeyError:
            return False
        return True

    # -- ideas for change (no pair or person id: see domain/ideas.py)

    async def add_idea(self, idea: Idea) -> None:
        await self._ideas.insert_one(asdict(idea))

    async def ideas(self, programme_id: str) -> list[Idea]:
        cursor = self._ideas.find({"programme_id": programme_id}, {"_id": 0})
        return [Idea(**doc) async for doc in cursor]

    # -- concerns

    async def add_concern(self, concern: Concern, events: list[OutboxEntry]) -> None:
        """Store a new concern with the alert to the coordinators, in one write."""
        await self._outbox.insert(self._concerns, _concern_doc(concern), events)

    async def concern(self, concern_id: str) -> Concern | None:
        doc = await self._concerns.find_one({"_id": concern_id}, {"outbox": 0, "outbox_due": 0})
        return _concern(doc) if doc else None

    async def concerns(self, programme_id: str, open_only: bool) -> list[Concern]:
        """A programme's concerns, newest first."""
        query: dict[str, Any] = {"programme_id": programme_id} | ({"closed_at": None} if open_only else {})
        cursor = self._concerns.find(query, {"outbox": 0, "outbox_due": 0}).sort("raised_at", DESCENDING)
        return [_concern(d) async for d in cursor]

    async def save_concern(self, concern: Concern, expected_version: int) -> None:
        """Store the coordinators' decision, if nobody decided meanwhile."""
        await self._outbox.save(self._concerns, _concern_doc(concern), expected_version=expected_version)

    # -- circles

    async def claim_round(self, programme_id: str, lease: timedelta) -> bool:
        """Hold the programme's round for `lease`: False while another round of it runs (two rounds at once
        would put the same peers in two circles). A round that dies lets go when its lease ends."""
        now = utcnow()
        free = {"_id": programme_id, "$or": [{"round_until": None}, {"round_until": {"$lt": now}}]}
        result = await self._programmes.update_one(free, {"$set": {"round_until": now + lease}})
        return result.modified_count == 1

    async def release_round(self, programme_id: str) -> None:
        await self._programmes.update_one({"_id": programme_id}, {"$set": {"round_until": None}})

    async def in_circles(self, programme_id: str) -> set[str]:
        """Members of the programme's circles, facilitators included."""
        cursor = self._circles.find({"programme_id": programme_id}, {"member_ids": 1})
        return {pid async for doc in cursor for pid in doc["member_ids"]}

    async def add_circle(self, circle: MentoringCircle, events: list[OutboxEntry]) -> None:
        """A new circle with its announcement, in one write."""
        await self._outbox.insert(self._circles, _circle_doc(circle), events)

    async def save_circle(self, circle: MentoringCircle, expected_version: int, events: list[OutboxEntry]) -> None:
        """A changed circle and its events, if nobody changed it meanwhile; its next step scheduled."""
        await self._outbox.save(self._circles, _circle_doc(circle), expected_version=expected_version, events=events)

    async def circle(self, circle_id: str) -> MentoringCircle | None:
        doc = await self._circles.find_one({"_id": circle_id}, {"outbox": 0})
        return _circle(doc) if doc else None

    async def circles(
        self,
        programme_id: str | None = None,
        *,
        institution_id: str | None = None,
        participant_id: str | None = None,
        limit: int = 500,
    ) -> list[MentoringCircle]:
        """Circles by programme, a member's institution or a member; newest first."""
        query: dict[str, Any] = {}
        if programme_id:
            query["programme_id"] = programme_id
        if institution_id:
            query["members.institution_id"] = institution_id
        if participant_id:
            query["member_ids"] = participant_id
        cursor = self._circles.find(query, {"outbox": 0}).sort("formed_at", DESCENDING).limit(limit)
        return [_circle(doc) async for doc in cursor]

    async def claim_due_circles(self, lease: timedelta, limit: int) -> list[MentoringCircle]:
        """Circles whose follow-up is due, each leased to this worker."""
        return [_circle(d) for d in await claim_due(self._circles, DUE, lease, limit)]

    async def save_round(self, report: dict[str, Any]) -> None:
        """A round's report."""
        await self._rounds.insert_one(dict(report, _id=report["round_id"]))

    async def rounds(self, programme_id: str) -> list[dict[str, Any]]:
        """A programme's round reports, newest first."""
        cursor = self._rounds.find({"programme_id": programme_id}, {"_id": 0}).sort("ran_at", DESCENDING)
        return await cursor.to_list()


def _circle_doc(circle: MentoringCircle) -> dict[str, Any]:
    doc = asdict(circle)
    doc["_id"] = doc.pop("circle_id")
    doc["member_ids"] = list(circle.member_ids)  # what "her circles" and "in circles" look up
    doc[DUE] = circle.next_due()
    return doc


def _circle(doc: dict[str, Any]) -> MentoringCircle:
    members = tuple(from_document(CircleMember, m) for m in doc["members"])
    return from_document(MentoringCircle, doc, "circle_id", members=members)


def _member(doc: dict[str, Any]) -> Member:
    return from_document(Member, doc, "participant_id")


def _pair_doc(pair: Pair) -> dict[str, Any]:
    doc = asdict(pair)
    doc["_id"] = doc.pop("pair_id")
    doc["explanation"]["shared_interests"] = list(pair.explanation.shared_interests)
    doc["extend_votes"] = list(pair.extend_votes)
    doc["meetings"] = [asdict(m) | {"held_on": m.held_on.isoformat()} for m in pair.meetings]
    return doc


def _pair(doc: dict[str, Any]) -> Pair:
    return from_document(
        Pair,
        doc,
        "pair_id",
        explanation=from_document(Explanation, doc["explanation"]),
        timing=from_document(Timing, doc["timing"]),
        meetings=tuple(
            from_document(Meeting, m, held_on=date.fromisoformat(m["held_on"])) for m in doc.get("meetings", ())
        ),
    )


def _concern_doc(concern: Concern) -> dict[str, Any]:
    doc = asdict(concern) | {"_id": concern.concern_id}
    del doc["concern_id"]
    return doc


def _concern(doc: dict[str, Any]) -> Concern:
    return from_document(Concern, doc, "concern_id")
