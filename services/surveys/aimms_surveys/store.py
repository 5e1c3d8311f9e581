"""The surveys store: the only code that talks to surveys' database.

Invitations know who was asked; responses know nothing of who answered. Nothing links the two:
a response has a random id, its submission date only, and no field naming an invitation, a
token, a participant, a pair or an institution. A token is looked up by its hash alone.
Answers to sensitive items (special category data) are encrypted on their way in, each bound to
its response and item, and decrypted only to compute reports.
"""

import json
import uuid
from collections.abc import Collection
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from aimms_shared.contracts.registration import Role
from aimms_shared.contracts.surveys import Wave
from aimms_shared.crypto import FieldCipher
from aimms_shared.mongo import claim_due, from_document
from aimms_shared.outbox import Outbox, OutboxEntry
from aimms_surveys.domain.invitations import Invitation, SurveyPolicy
from aimms_surveys.domain.questionnaires import Answer, Questionnaire, QuestionnaireDraft
from aimms_surveys.domain.reports import Response

INVITATIONS = "invitations"
RESPONSES = "responses"
OUTBOX_COLLECTIONS = (INVITATIONS, RESPONSES)
DUE = "due"
SEALED = "sealed_answers"


class SurveysStore:
    """Questionnaires, programmes' survey policies, invitations, their tokens, and anonymous responses."""

    def __init__(self, db: AsyncDatabase, cipher: FieldCipher, outbox: Outbox | None = None) -> None:
        self._outbox = outbox or Outbox()
        self._cipher = cipher
        self._questionnaires = db["questionnaires"]
        self._policies = db["policies"]
        self._invitations = db[INVITATIONS]
        self._tokens = db["tokens"]
        self._responses = db[RESPONSES]
        self._departed = db["departed"]
        # Whether each participant is in the evaluation, and invitations owed to those not yet known here.
        self._evaluation = db["evaluation"]

    async def ensure_indexes(self) -> None:
        """Once per participant, role and wave of a programme; what reports and the scheduler look up."""
        await self._invitations.create_index(
            [("programme_id", ASCENDING), ("wave", ASCENDING), ("role", ASCENDING), ("participant_id", ASCENDING)],
            unique=True,
        )
        await self._invitations.create_index([("participant_id", ASCENDING)])
        await self._invitations.create_index([(DUE, ASCENDING)])
        await self._questionnaires.create_index([("programme_id", ASCENDING), ("wave", ASCENDING)])
        await self._responses.create_index([("programme_id", ASCENDING)])

    # -- questionnaires

    async def seed_questionnaire(self, questionnaire: Questionnaire) -> bool:
        """Store a shipped definition unless that version exists (every instance may try at start)."""
        try:
            await self._questionnaires.insert_one(_questionnaire_doc(questionnaire))
        except DuplicateKeyError:
            return False
        return True

    async def add_questionnaire(self, programme_id: str, wave: Wave, draft: QuestionnaireDraft) -> Questionnaire:
        """A new version, numbered after the latest; two racing revisions get distinct numbers."""
        while True:
            latest = await self.latest_questionnaire(programme_id, wave)
            questionnaire = Questionnaire(
                **draft.model_dump(),
                programme_id=programme_id,
                wave=wave,
                version=(latest.version if latest else 0) + 1,
            )
            try:
                await self._questionnaires.insert_one(_questionnaire_doc(questionnaire))
            except DuplicateKeyError:
                continue
            return questionnaire

    async def questionnaires(self, programme_id: str, wave: Wave | None = None) -> list[Questionnaire]:
        """Every version of a programme's questionnaires (of one wave, when given), oldest first."""
        query: dict[str, Any] = {"programme_id": programme_id} | ({"wave": wave} if wave else {})
        docs = await self._questionnaires.find(query).to_list()
        return sorted((_questionnaire(d) for d in docs), key=lambda q: (q.wave, q.version))

    async def questionnaire(self, programme_id: str, wave: Wave, version: int) -> Questionnaire | None:
        """One version."""
        doc = await self._questionnaires.find_one({"_id": _questionnaire_id(programme_id, wave, version)})
        return _questionnaire(doc) if doc else None

    async def latest_questionnaire(self, programme_id: str, wave: Wave) -> Questionnaire | None:
        """The version new invitations get."""
        versions = await self.questionnaires(programme_id, wave)
        return versions[-1] if versions else None

    # -- policies

    async def policy(self, programme_id: str) -> SurveyPolicy:
        """A programme's survey policy (the defaults until a coordinator sets one)."""
        doc = await self._policies.find_one({"_id": programme_id}, {"_id": 0})
        return SurveyPolicy.model_validate(doc) if doc else SurveyPolicy()

    async def save_policy(self, programme_id: str, policy: SurveyPolicy) -> None:
        """Replace a programme's survey policy."""
        await self._policies.replace_one({"_id": programme_id}, policy.model_dump(), upsert=True)

    # -- who left

    async def mark_departed(self, participant_id: str) -> None:
        """She withdrew or was erased: never invite her again (only her opaque id is kept)."""
        await self._departed.update_one({"_id": participant_id}, {"$set": {"_id": participant_id}}, upsert=True)

    async def has_departed(self, participant_id: str) -> bool:
        """Whether she withdrew or was erased."""
        return await self._departed.find_one({"_id": participant_id}) is not None

    # -- who is in the evaluation

    async def in_evaluation(self, participant_id: str) -> bool | None:
        """Whether she is in the evaluation (None: registration's word on her has not arrived yet)."""
        doc = await self._evaluation.find_one({"_id": participant_id}, {"in_evaluation": 1})
        return doc.get("in_evaluation") if doc else None

    async def owe_invitation(self, participant_id: str, owed: dict[str, Any]) -> bool:
        """Keep an invitation for when her evaluation status arrives; False when it arrived meanwhile."""
        try:
            await self._evaluation.update_one(
                {"_id": participant_id, "in_evaluation": {"$exists": False}}, {"$addToSet": {"owed": owed}}, upsert=True
            )
        except DuplicateKeyError:  # the document exists with a status: nothing is owed any more
            return False
        return True

    async def set_evaluation(self, participant_id: str, in_evaluation: bool) -> list[dict[str, Any]]:
        """Record whether she is in the evaluation; return the invitations owed to her (kept until settled)."""
        before = await self._evaluation.find_one_and_update(
            {"_id": participant_id}, {"$set": {"in_evaluation": in_evaluation}}, upsert=True
        )
        return list(before.get("owed", [])) if before else []

    async def settle_owed(self, participant_id: str, owed: list[dict[str, Any]]) -> None:
        """Owed invitations that were issued (or are no longer owed) are dropped."""
        if owed:
            await self._evaluation.update_one({"_id": participant_id}, {"$pullAll": {"owed": owed}})

    # -- invitations

    async def is_invited(self, programme_id: str, wave: Wave, role: Role, participant_id: str) -> bool:
        """Whether she was already asked this wave in this role."""
        query = {"programme_id": programme_id, "wave": wave, "role": role, "participant_id": participant_id}
        return await self._invitations.find_one(query, {"_id": 1}) is not None

    async def add_token(self, hashed: str, invitation_id: str) -> None:
        """Make a token findable; written before the invitation names it, so no named token is missing."""
        await self._tokens.insert_one({"_id": hashed, "invitation_id": invitation_id})

    async def insert_invitation(self, invitation: Invitation, events: list[OutboxEntry]) -> bool:
        """A new invitation with its event; False when she was already asked (a redelivery)."""
        doc = _invitation_doc(invitation) | {DUE: invitation.next_due()}
        try:
            await self._outbox.insert(self._invitations, doc, events)
        except DuplicateKeyError:
            await self._tokens.delete_many({"_id": {"$in": list(invitation.token_hashes)}})
            return False
        return True

    async def invitation(self, invitation_id: str) -> Invitation | None:
        """An invitation by id."""
        doc = await self._invitations.find_one({"_id": invitation_id}, {"outbox": 0})
        return _invitation(doc) if doc else None

    async def invitation_by_token(self, hashed: str) -> Invitation | None:
        """The invitation a token belongs to, if the invitation still names it."""
        token = await self._tokens.find_one({"_id": hashed})
        invitation = await self.invitation(token["invitation_id"]) if token else None
        return invitation if invitation and hashed in invitation.token_hashes else None

    async def save_invitation(self, invitation: Invitation, expected_version: int, events: list[OutboxEntry]) -> None:
        """Store a changed invitation and its events, if nobody changed it meanwhile; schedule its next step."""
        doc = _invitation_doc(invitation) | {DUE: invitation.next_due()}
        await self._outbox.save(self._invitations, doc, expected_version=expected_version, events=events)

    async def use_invitation(self, invitation_id: str, now: datetime) -> bool:
        """Mark it answered, if still open and unexpired: of two racing submissions only one wins.

        No time is recorded, so the invitation cannot be matched to a response by when it was used.
        """
        result = await self._invitations.update_one(
            {"_id": invitation_id, "status": "open", "expires_at": {"$gt": now}},
            {"$set": {"status": "answered", DUE: None}, "$inc": {"version": 1}},
        )
        return result.modified_count == 1

    async def reopen_invitation(self, invitation_id: str) -> None:
        """Undo `use_invitation` when the response could not be stored: it was taken whole or not at all."""
        await self._invitations.update_one(
            {"_id": invitation_id, "status": "answered"}, {"$set": {"status": "open"}, "$inc": {"version": 1}}
        )

    async def void_open_invitations(self, participant_id: str) -> int:
        """Her unanswered invitations stop working and get no more reminders."""
        result = await self._invitations.update_many(
            {"participant_id": participant_id, "status": "open"},
            {"$set": {"status": "voided", DUE: None}, "$inc": {"version": 1}},
        )
        return result.modified_count

    async def forget_participant(self, participant_id: str) -> None:
        """Erasure: her tokens go, and her invitations keep only what the response rate counts."""
        await self._evaluation.delete_one({"_id": participant_id})
        async for doc in self._invitations.find({"participant_id": participant_id}, {"token_hashes": 1}):
            await self._tokens.delete_many({"_id": {"$in": doc.get("token_hashes", [])}})
            await self._invitations.update_one(
                {"_id": doc["_id"]},
                {
                    "$set": {
                        "participant_id": f"erased-{uuid.uuid4().hex}",
                        "institution_id": None,
                        "token_hashes": [],
                    },
                    "$unset": {"outbox": ""},
                    "$inc": {"version": 1},
                },
            )

    async def claim_due_invitations(self, lease: timedelta, limit: int) -> list[Invitation]:
        """Invitations whose reminder or expiry is due, each leased to this worker."""
        return [_invitation(d) for d in await claim_due(self._invitations, DUE, lease, limit)]

    async def invitation_counts(self, programme_id: str) -> dict[tuple[Wave, Role], int]:
        """Invitations sent per wave and role (counted in the store: it can count)."""
        pipeline = [
            {"$match": {"programme_id": programme_id}},
            {"$group": {"_id": {"wave": "$wave", "role": "$role"}, "n": {"$sum": 1}}},
        ]
        rows = await (await self._invitations.aggregate(pipeline)).to_list()
        return {(r["_id"]["wave"], r["_id"]["role"]): r["n"] for r in rows}

    # -- responses

    async def insert_response(
        self,
        programme_id: str,
        wave: Wave,
        role: Role,
        version: int,
        submitted_on: str,
        answers: dict[str, Answer],
        sensitive: Collection[str],
        events: list[OutboxEntry],
    ) -> None:
        """An anonymous response: a random id, and nothing that names or dates a person more finely than a day."""
        response_id = uuid.uuid4().hex
        await self._outbox.insert(
            self._responses,
            {
                "_id": response_id,
                "programme_id": programme_id,
                "wave": wave,
                "role": role,
                "questionnaire_version": version,
                "submitted_on": submitted_on,
                "answers": {item: answer for item, answer in answers.items() if item not in sensitive},
                SEALED: {
                    item: self._cipher.encrypt(json.dumps(answer), context=f"{response_id}/{item}")
                    for item, answer in answers.items()
                    if item in sensitive
                },
            },
            events,
        )

    async def responses(self, programme_id: str) -> list[Response]:
        """Every response to a programme's questionnaires, sensitive answers decrypted."""
        cursor = self._responses.find(
            {"programme_id": programme_id}, {"wave": 1, "role": 1, "questionnaire_version": 1, "answers": 1, SEALED: 1}
        )
        return [
            Response(d["wave"], d["role"], d["questionnaire_version"], d["answers"] | self._unseal(d))
            async for d in cursor
        ]

    def _unseal(self, doc: dict[str, Any]) -> dict[str, Answer]:
        return {
            item: json.loads(self._cipher.decrypt(sealed, context=f"{doc['_id']}/{item}"))
            for item, sealed in doc.get(SEALED, {}).items()
        }


def _questionnaire_id(programme_id: str, wave: str, version: int) -> str:
    return f"{programme_id}:{wave}:v{version}"


def _questionnaire_doc(questionnaire: Questionnaire) -> dict[str, Any]:
    doc = questionnaire.model_dump(mode="json")
    return doc | {"_id": _questionnaire_id(questionnaire.programme_id, questionnaire.wave, questionnaire.version)}


def _questionnaire(doc: dict[str, Any]) -> Questionnaire:
    return Questionnaire.model_validate({k: v for k, v in doc.items() if k != "_id"})


def _invitation_doc(invitation: Invitation) -> dict[str, Any]:
    doc = asdict(invitation)
    doc["_id"] = doc.pop("invitation_id")
    doc["token_hashes"] = list(invitation.token_hashes)
    return doc


def _invitation(doc: dict[str, Any]) -> Invitation:
    return from_document(Invitation, doc, "invitation_id")
