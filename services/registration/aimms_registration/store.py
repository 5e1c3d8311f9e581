"""The registration store: the only code that talks to registration's database.

Special category fields are encrypted here, on their way into the store, and decrypted on the
way out: no other layer sees ciphertext, and nothing readable reaches the disk.
"""

from dataclasses import asdict
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_registration.domain.credentials import Credential
from aimms_registration.domain.institutions import Institution
from aimms_registration.domain.interests import Interest, email_key
from aimms_registration.domain.page_links import PageLink
from aimms_registration.domain.participants import Consent, Participant, Profile
from aimms_registration.domain.programmes import EligibilityStatement, Programme
from aimms_shared.cache import RecentReads
from aimms_shared.contracts.registration import MatchingPolicy, ProfileQuestion
from aimms_shared.crypto import FieldCipher
from aimms_shared.errors import StateConflict
from aimms_shared.idempotency import IdempotencyKeys
from aimms_shared.mongo import utcnow
from aimms_shared.outbox import Outbox, OutboxEntry

INSTITUTIONS = "institutions"
PROGRAMMES = "programmes"
INTERESTS = "interests"
PARTICIPANTS = "participants"
PAGE_LINKS = "page_links"
# Collections whose documents carry outboxes, for the relay.
OUTBOX_COLLECTIONS = (INSTITUTIONS, PROGRAMMES, INTERESTS, PARTICIPANTS, PAGE_LINKS)


class RegistrationStore:
    """Institutions, programmes, credentials, expressions of interest and participants."""

    def __init__(self, db: AsyncDatabase, cipher: FieldCipher, outbox: Outbox | None = None) -> None:
        self._institutions = db[INSTITUTIONS]
        self._programmes = db[PROGRAMMES]
        self._interests = db[INTERESTS]
        self._participants = db[PARTICIPANTS]
        self._credentials = db["credentials"]
        self._page_links = db[PAGE_LINKS]
        self._cipher = cipher
        # Keys the background tokens that let matching compare self-described backgrounds without seeing them.
        self.background_key = cipher.derived_key("background-token")
        self._outbox = outbox or Outbox()  # none given: a script, whose events a running service publishes
        self._recent_institutions = RecentReads[Institution]()
        self._recent_programmes = RecentReads[Programme]()
        self.idempotency = IdempotencyKeys(db["idempotency_keys"])

    async def ensure_indexes(self) -> None:
        """Uniqueness the rules rely on, and what lists and counts look up."""
        await self._interests.create_index([("programme_id", ASCENDING), ("email_key", ASCENDING)], unique=True)
        await self._participants.create_index([("programme_id", ASCENDING), ("email_key", ASCENDING)], unique=True)
        await self._participants.create_index([("institution_id", ASCENDING)])
        await self._participants.create_index([("email_key", ASCENDING)])
        await self._page_links.create_index([("participant_id", ASCENDING), ("issued_at", ASCENDING)])
        await self._credentials.create_index([("institution_id", ASCENDING)])
        await self.idempotency.ensure_indexes()

    # -- institutions

    async def institution(self, institution_id: str) -> Institution | None:
        """An onboarded institution by id."""
        doc = await self._institutions.find_one({"_id": institution_id})
        return _institution(doc) if doc else None

    async def recent_institution(self, institution_id: str) -> Institution | None:
        """An institution as read within REFERENCE_SECONDS, for deciding a participant's request; changes
        read `institution`, so a stale version is never saved over."""
        return await self._recent_institutions.get(institution_id, lambda: self.institution(institution_id))

    async def institutions(self) -> list[Institution]:
        """Every onboarded institution, by name."""
        return [_institution(d) async for d in self._institutions.find().sort("name", ASCENDING)]

    async def add_institution(self, institution: Institution, events: list[OutboxEntry]) -> None:
        """Store a new institution with its events; refuse a taken id."""
        doc = _institution_doc(institution)
        try:
            await self._outbox.insert(self._institutions, doc, events)
        except DuplicateKeyError:
            raise StateConflict(
                "institution_id", "unique", f"institution '{institution.institution_id}' exists"
            ) from None

    async def save_institution(self, institution: Institution, events: list[OutboxEntry]) -> None:
        """Store a changed institution with its events, if nobody changed it meanwhile."""
        doc = _institution_doc(institution)
        await self._outbox.save(self._institutions, doc, expected_version=institution.version, events=events)
        self._recent_institutions.forget(institution.institution_id)

    # -- programmes

    async def programme(self, programme_id: str) -> Programme | None:
        """A programme by id."""
        doc = await self._programmes.find_one({"_id": programme_id})
        return _programme(doc) if doc else None

    async def recent_programme(self, programme_id: str) -> Programme | None:
        """A programme as read within REFERENCE_SECONDS, for deciding a participant's request."""
        return await self._recent_programmes.get(programme_id, lambda: self.programme(programme_id))

    async def programmes(self) -> list[Programme]:
        """Every programme, by name."""
        return [_programme(d) async for d in self._programmes.find().sort("name", ASCENDING)]

    async def add_programme(self, programme: Programme, events: list[OutboxEntry]) -> None:
        """Store a new programme with its events; refuse a taken id."""
        try:
            await self._outbox.insert(self._programmes, _programme_doc(programme), events)
        except DuplicateKeyError:
            raise StateConflict("programme_id", "unique", f"programme '{programme.programme_id}' exists") from None

    async def save_programme(self, programme: Programme, events: list[OutboxEntry]) -> None:
        """Store a changed programme with its events, if nobody changed it meanwhile."""
        doc = _programme_doc(programme)
        await self._outbox.save(self._programmes, doc, expected_version=programme.version, events=events)
        self._recent_programmes.forget(programme.programme_id)

    # -- credentials

    async def credential(self, client_id: str) -> Credential | None:
        """A credential by client id."""
        doc = await self._credentials.find_one({"_id": client_id})
        return _credential(doc) if doc else None

    async def credentials_of(self, institution_id: str | None) -> list[Credential]:
        """An institution's credentials (None: administrators')."""
        return [_credential(d) async for d in self._credentials.find({"institution_id": institution_id})]

    async def save_credential(self, credential: Credential) -> None:
        """Create or replace a credential."""
        doc = asdict(credential)
        doc["_id"] = doc.pop("client_id")
        doc["scopes"] = list(credential.scopes)
        await self._credentials.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    # -- interests

    async def add_interest(self, interest: Interest, events: list[OutboxEntry]) -> tuple[str, bool]:
        """Store an interest with its events in one write; return (id, created).

        A second expression of interest from the same address for the same programme returns
        the first one's id and raises nothing new, so she is welcomed once.
        """
        doc = {
            "_id": interest.interest_id,
            "name": interest.name,
            "email": interest.email,
            "email_key": interest.email_key,
            "institution_id": interest.institution_id,
            "programme_id": interest.programme_id,
            "expressed_at": interest.expressed_at,
            "declared_institution": interest.declared_institution,
            "version": 1,
        }  # not asdict: its deep copy of the datetime was a tenth of the request
        try:
            await self._outbox.insert(self._interests, doc, events)
        except DuplicateKeyError:
            existing = await self._interests.find_one(
                {"programme_id": interest.programme_id, "email_key": interest.email_key}, {"_id": 1}
            )
            if existing is None:  # the duplicate was on _id itself: ids are random, so this is a bug
                raise
            return existing["_id"], False
        return interest.interest_id, True

    async def interest_of(self, programme_id: str, email: str) -> dict[str, Any] | None:
        """The expression of interest made with this address in a programme, if any."""
        return await self._interests.find_one(
            {"programme_id": programme_id, "email_key": email_key(email)}, {"outbox": 0, "outbox_due": 0}
        )

    async def interest(self, interest_id: str) -> dict[str, Any] | None:
        """An expression of interest (for her subject access export)."""
        return await self._interests.find_one({"_id": interest_id}, {"outbox": 0, "outbox_due": 0})

    # -- participants

    async def participant(self, participant_id: str) -> Participant | None:
        """A participant (erased ones are gone)."""
        doc = await self._participants.find_one({"_id": participant_id, "status": {"$ne": "erased"}})
        return self._participant(doc) if doc else None

    async def participants(
        self, *, institution_id: str | None, programme_id: str | None, published_mentors_only: bool = False
    ) -> list[Participant]:
        """Participants, filtered; erased ones never appear."""
        query: dict[str, Any] = {"status": "active"} if published_mentors_only else {"status": {"$ne": "erased"}}
        if institution_id is not None:
            query["institution_id"] = institution_id
        if programme_id is not None:
            query["programme_id"] = programme_id
        if published_mentors_only:
            query["roles"] = "mentor"
            query["profile.publish_profile"] = True
        return [self._participant(d) async for d in self._participants.find(query).sort("registered_at", ASCENDING)]

    async def participants_by_email(self, email: str) -> list[Participant]:
        """Her registrations under this address, in every programme (erased ones never appear)."""
        query = {"email_key": email_key(email), "status": {"$ne": "erased"}}
        return [self._participant(d) async for d in self._participants.find(query)]

    async def add_participant(self, participant: Participant, events: list[OutboxEntry]) -> None:
        """Store a new participant and her events in one write; refuse a second registration."""
        try:
            await self._outbox.insert(self._participants, self._participant_doc(participant), events)
        except DuplicateKeyError:
            raise StateConflict(
                "email", "one-registration-per-programme", "this address is already registered in the programme"
            ) from None

    async def save_participant(self, participant: Participant, events: list[OutboxEntry]) -> None:
        """Store a changed participant with her events, if nobody changed her record meanwhile."""
        doc = self._participant_doc(participant)
        await self._outbox.save(self._participants, doc, expected_version=participant.version, events=events)

    async def erase_participant(self, participant: Participant, events: list[OutboxEntry]) -> None:
        """Delete everything personal; keep only ids and status (for counts) and the outgoing events."""
        kept = ("_id", "programme_id", "institution_id", "version", "status", "email_key")  # the last two: rewritten
        personal = [k for k in self._participant_doc(participant) if k not in kept]
        update = self._outbox.push(events)
        update["$set"] |= {
            "status": "erased",
            "erased_at": utcnow(),
            "email_key": f"erased:{participant.participant_id}",  # keeps the unique index free
        }
        update |= {"$unset": dict.fromkeys(personal, ""), "$inc": {"version": 1}}
        query = {"_id": participant.participant_id, "version": participant.version}
        if not await self._outbox.update(self._participants, query, update):
            raise StateConflict("participant_id", "concurrent-update", "her record changed meanwhile; retry")
        # The interest she registered after, and any under her present address in the programme.
        await self._interests.delete_many(
            {
                "$or": [
                    {"_id": participant.interest_id},
                    {"programme_id": participant.programme_id, "email_key": email_key(participant.email)},
                ]
            }
        )
        await self.idempotency.forget_subject(participant.participant_id)
        await self._page_links.delete_many({"participant_id": participant.participant_id})

    # -- links to her programme's page

    async def last_page_link_at(self, participant_id: str) -> datetime | None:
        """When her latest link was issued."""
        docs = self._page_links.find({"participant_id": participant_id}).sort("issued_at", DESCENDING).limit(1)
        return next(iter([d["issued_at"] async for d in docs]), None)

    async def add_page_link(self, link: PageLink, events: list[OutboxEntry]) -> None:
        """Store a new link with the event that emails it, in one write."""
        await self._outbox.insert(self._page_links, asdict(link) | {"_id": link.link_id, "used_at": None}, events)

    async def use_page_link(self, link_id: str, now: datetime) -> PageLink | None:
        """The link, marked used in the same write; None when unknown, used or expired."""
        doc = await self._page_links.find_one_and_update(
            {"_id": link_id, "used_at": None, "expires_at": {"$gt": now}}, {"$set": {"used_at": now}}
        )
        return PageLink(**{k: doc[k] for k in PageLink.__dataclass_fields__}) if doc else None

    async def raw_participant(self, participant_id: str) -> dict[str, Any] | None:
        """The stored document as is (subject access export, and tests of encryption at rest)."""
        return await self._participants.find_one({"_id": participant_id}, {"outbox": 0, "outbox_due": 0})

    async def pipeline(self, programme_id: str | None) -> list[dict[str, Any]]:
        """Counts per programme, institution and stage (the store sums; FerretDB can count)."""
        match = {"programme_id": programme_id} if programme_id else {}
        rows = []
        for stage, collection, by_status in (
            ("interested", self._interests, False),
            ("participants", self._participants, True),
        ):
            key = {"programme_id": "$programme_id", "institution_id": "$institution_id"}
            if by_status:
                key["status"] = "$status"
            cursor = await collection.aggregate([{"$match": match}, {"$group": {"_id": key, "n": {"$sum": 1}}}])
            rows += [{**row["_id"], "stage": row["_id"].get("status", stage), "n": row["n"]} async for row in cursor]
        return rows

    # -- mapping

    def _participant_doc(self, p: Participant) -> dict[str, Any]:
        return {
            "_id": p.participant_id,
            "programme_id": p.programme_id,
            "institution_id": p.institution_id,
            "name": p.name,
            "email": p.email,
            "email_key": email_key(p.email),
            "roles": list(p.roles),
            "profile": asdict(p.profile) | {"research_interests": list(p.profile.research_interests)},
            "consents": [asdict(c) for c in p.consents],
            "confirmed_eligibility": list(p.confirmed_eligibility),
            "sensitive": {
                name: self._cipher.encrypt(value, context=f"{p.participant_id}/{name}")
                for name, value in p.sensitive.items()
            },
            "registered_at": p.registered_at,
            "status": p.status,
            "withdrawn_at": p.withdrawn_at,
            "withdrawal_reason": p.withdrawal_reason,
            "excluded_from_evaluation": p.excluded_from_evaluation,
            "interest_id": p.interest_id,
            "version": p.version,
        }

    def _participant(self, doc: dict[str, Any]) -> Participant:
        profile = doc["profile"]
        return Participant(
            participant_id=doc["_id"],
            programme_id=doc["programme_id"],
            institution_id=doc["institution_id"],
            name=doc["name"],
            email=doc["email"],
            roles=tuple(doc["roles"]),
            profile=Profile(**(profile | {"research_interests": tuple(profile["research_interests"])})),
            consents=tuple(Consent(**c) for c in doc["consents"]),
            confirmed_eligibility=tuple(doc["confirmed_eligibility"]),
            sensitive={
                name: self._cipher.decrypt(sealed, context=f"{doc['_id']}/{name}")
                for name, sealed in doc.get("sensitive", {}).items()
            },
            registered_at=doc["registered_at"],
            status=doc["status"],
            withdrawn_at=doc.get("withdrawn_at"),
            withdrawal_reason=doc.get("withdrawal_reason"),
            excluded_from_evaluation=doc.get("excluded_from_evaluation"),
            interest_id=doc.get("interest_id"),
            version=doc["version"],
        )


def _institution_doc(institution: Institution) -> dict[str, Any]:
    doc = asdict(institution) | {"email_domains": list(institution.email_domains)}
    doc["_id"] = doc.pop("institution_id")
    return doc


def _institution(doc: dict[str, Any]) -> Institution:
    return Institution(
        institution_id=doc["_id"],
        name=doc["name"],
        email_domains=tuple(doc.get("email_domains", ())),
        contact_email=doc.get("contact_email", ""),
        registration_url=doc.get("registration_url"),
        active=doc.get("active", True),
        version=doc.get("version", 1),
    )


def _programme_doc(programme: Programme) -> dict[str, Any]:
    doc = asdict(programme)
    doc["_id"] = doc.pop("programme_id")
    for name in ("roles_offered", "seniority_scale", "sensitive_fields"):
        doc[name] = list(doc[name])
    doc["eligibility"] = [asdict(s) for s in programme.eligibility]
    doc["matching"] = programme.matching.model_dump()
    doc["profile_questions"] = [q.model_dump() for q in programme.profile_questions]
    return doc


def _programme(doc: dict[str, Any]) -> Programme:
    fields = {k: v for k, v in doc.items() if k not in ("_id", "outbox", "outbox_due")}
    return Programme(
        **fields
        | {
            "programme_id": doc["_id"],
            "eligibility": tuple(
                EligibilityStatement(s["statement_id"], s["text"], tuple(s.get("roles", ())))
                for s in doc.get("eligibility", ())
            ),
            "roles_offered": tuple(doc["roles_offered"]),
            "seniority_scale": tuple(doc["seniority_scale"]),
            "sensitive_fields": tuple(doc.get("sensitive_fields", ("ethnicity",))),
            "matching": MatchingPolicy.model_validate(doc.get("matching", {})),
            "profile_questions": tuple(ProfileQuestion.model_validate(q) for q in doc.get("profile_questions", ())),
        }
    )


def _credential(doc: dict[str, Any]) -> Credential:
    fields = {k: v for k, v in doc.items() if k != "_id"}
    return Credential(**fields | {"client_id": doc["_id"], "scopes": tuple(doc["scopes"])})
